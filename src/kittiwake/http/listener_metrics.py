"""Metrics of the HTTP and HTTPS listeners' transport, all ``kittiwake_http_listener_*``.

Requests by service (``http``, ``https``) and what was answered
(``acme-challenge``, ``acme-unknown``: no such token, ``redirect``,
``content``, ``bad-request``: refused by the parser's limits or syntax);
TLS connections on the HTTPS port by outcome; connections refused by the
connection limits; connections closed for a slow request head (slowloris).
"""

from __future__ import annotations

from kittiwake import metrics

SERVICES = ("http", "https")
REQUEST_KINDS = ("acme-challenge", "acme-unknown", "redirect", "content", "bad-request")
# ok: handshake done, content served; acme-challenge: tls-alpn-01 answered; acme-unknown: a
# client offering acme-tls/1 for a name without a pending challenge; not-tls: bytes that are
# no ClientHello; no-certificate: none obtained yet; timeout: no ClientHello in time;
# failed: the TLS handshake failed.
HANDSHAKE_RESULTS = ("ok", "acme-challenge", "acme-unknown", "not-tls", "no-certificate",
                     "timeout", "failed")

REQUESTS = metrics.counter(
    "http_listener_requests",
    "HTTP requests on the http/https listeners, by service and what was answered.",
    {"service": SERVICES, "kind": REQUEST_KINDS})

HANDSHAKES = metrics.counter(
    "http_listener_tls_handshakes",
    "Connections on the https listener, by the outcome of the ClientHello and handshake.",
    {"result": HANDSHAKE_RESULTS})

REFUSED = metrics.counter(
    "http_listener_connections_refused",
    "Connections refused by the connection limits, by service and limit.",
    {"service": SERVICES, "limit": ("per-ip", "total")})

SLOW_CLOSED = metrics.counter(
    "http_listener_slow_requests_closed",
    "Connections closed because the request head did not arrive in time, by service.",
    {"service": SERVICES})
