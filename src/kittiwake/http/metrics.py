"""Metrics of the HTTP(S) content server, all ``kittiwake_http_*``.

Label values are known in advance and start at 0 (DESIGN.md "Metrics"):
``route`` is the name of a route of :mod:`kittiwake.http.app` (``other``
for an unknown host or path), never a host name, path or address;
``status`` is the HTTP status code answered.
"""

from __future__ import annotations

from kittiwake import metrics

ROUTES = ("mta-sts", "autoconfig", "autodiscover", "mobileconfig", "other")
STATUSES = ("200", "400", "404", "405", "413", "429", "500")

REQUESTS = metrics.counter(
    "http_requests",
    "HTTP requests answered by the content server (MTA-STS, autoconfig, ...), by route"
    " and status code.",
    {"route": ROUTES, "status": STATUSES})

REQUEST_SECONDS = metrics.histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request of the content server, by route.",
    ["route"], buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                        2.5, 10))
metrics.preinit(REQUEST_SECONDS, route=ROUTES)

PROFILES_REFUSED = metrics.counter(
    "http_profile_requests_refused",
    "Requests for a .mobileconfig profile refused because the client asked too often.")
