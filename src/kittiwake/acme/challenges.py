"""Pending ACME challenge answers, shared by the ACME client and the HTTP listeners.

The ACME order flow (a worker thread) puts an answer here before it tells
the authority to validate, and removes it afterwards; the listeners (event
loop) look answers up per request:
- http-01 (RFC 8555 §8.3): ``GET /.well-known/acme-challenge/TOKEN`` on port 80
  answers the key authorization as ``text/plain``.
- tls-alpn-01 (RFC 8737 §3): a TLS connection to port 443 that offers the
  ``acme-tls/1`` ALPN protocol for a name gets the challenge certificate of
  that name (the listener finds it with :meth:`Challenges.tls_alpn01_context`
  after peeking at the ClientHello, see :mod:`kittiwake.acme.clienthello`).

Thread-safe: one lock around each dictionary operation.
"""

from __future__ import annotations

import ssl
import threading


class Challenges:
    """The answers to the challenges being validated right now."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._http01: dict[str, str] = {}
        self._tls_alpn01: dict[str, ssl.SSLContext] = {}

    def set_http01(self, token: str, key_authorization: str) -> None:
        with self._lock:
            self._http01[token] = key_authorization

    def remove_http01(self, token: str) -> None:
        with self._lock:
            self._http01.pop(token, None)

    def http01(self, token: str) -> str | None:
        """The key authorization to answer for ``token``, or None (404)."""
        with self._lock:
            return self._http01.get(token)

    def set_tls_alpn01(self, name: str, context: ssl.SSLContext) -> None:
        """A server context holding the challenge certificate of ``name`` and
        offering only the ``acme-tls/1`` ALPN protocol."""
        with self._lock:
            self._tls_alpn01[name.lower().rstrip(".")] = context

    def remove_tls_alpn01(self, name: str) -> None:
        with self._lock:
            self._tls_alpn01.pop(name.lower().rstrip("."), None)

    def tls_alpn01_context(self, server_name: str | None) -> ssl.SSLContext | None:
        """The context to hand a connection that offered ``acme-tls/1`` for this name.

        None: no challenge pending for the name; RFC 8737 §3 then wants the
        handshake refused (the listener closes the connection)."""
        if not server_name:
            return None
        with self._lock:
            return self._tls_alpn01.get(server_name.lower().rstrip("."))
