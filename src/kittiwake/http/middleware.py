"""Middleware of the content server: ids, metrics, panics, security headers.

One middleware, :func:`observe`, wraps every request, in this order:

1. binds ``cid`` (one per HTTP connection, kept across keep-alive requests)
   and ``rid`` (one per request) into the log context, so every line a
   handler writes carries them;
2. runs the handler; an :class:`aiohttp.web.HTTPException` it raises is
   turned into its response; any other exception is a bug: it is logged with
   its traceback, counted in ``kittiwake_panic_total{origin="http"}``
   (:func:`kittiwake.metrics.panic`) and answered 500, and the connection
   and every other request go on;
3. adds security headers (the content is plain text, XML and profiles,
   never HTML for a browser), counts the request by route and status in
   :mod:`kittiwake.http.metrics` and logs one line.

The route name for metrics is put on the request by the dispatcher under
:data:`ROUTE_KEY`; requests that reach none count as ``other``.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable

from aiohttp import web

from kittiwake import log
from kittiwake.http import metrics as http_metrics
from kittiwake.metrics import panic

logger = log.get_logger("http")

# request[ROUTE_KEY]: the route name, for metrics (typed keys since aiohttp 3.12).
ROUTE_KEY: web.RequestKey[str] | str = (
    web.RequestKey("kittiwake_route", str) if hasattr(web, "RequestKey") else "kittiwake.route")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Every response (RFC 9110 leaves these to the application; OWASP's secure headers):
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",  # a policy or profile is never run as a script
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
# Over HTTPS only (RFC 6797 §7.2: not over plain HTTP). No includeSubDomains: the
# domain's other hosts (a website) are not ours to decide for.
HSTS = "max-age=31536000"

_connection_ids: weakref.WeakKeyDictionary[object, str] = weakref.WeakKeyDictionary()


def connection_id(request: web.Request) -> str:
    """The id of the connection the request came on (new for a new connection)."""
    transport = request.transport  # one per connection (aiohttp's handler takes no weakref)
    if transport is None:
        return log.new_connection_id()
    # uvloop's TLS transport takes no weakref either: then the connection's SSLObject
    # (one per connection, a plain Python object) stands for it.
    for key in (transport, transport.get_extra_info("ssl_object")):
        if key is None:
            continue
        try:
            cid = _connection_ids.get(key)
            if cid is None:
                cid = _connection_ids[key] = log.new_connection_id()
            return cid
        except TypeError:
            continue
    return log.new_connection_id()


def _from_exception(exc: web.HTTPException) -> web.Response:
    response = web.Response(status=exc.status, reason=exc.reason, text=exc.text,
                            content_type="text/plain")
    for name, value in exc.headers.items():
        if name.lower() not in ("content-type", "content-length"):
            response.headers[name] = value
    return response


def _internal_error() -> web.Response:
    return web.Response(status=500, text="internal error: the server's log has the details\n")


def make_observe(clock: Callable[[], float]) -> Callable[[web.Request, Handler],
                                                           Awaitable[web.StreamResponse]]:
    """The middleware, measuring durations with ``clock`` (seconds)."""

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = clock()
        with log.bind(cid=connection_id(request), rid=log.new_connection_id()):
            response: web.StreamResponse
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                response = _from_exception(exc)
            except ConnectionResetError:
                # The client went away while we read its body: no bug, nobody to answer.
                logger.debug("http client gone", method=request.method, path=request.path)
                raise
            except Exception as exc:
                panic("http", exc, "http handler failed", method=request.method,
                      path=request.path)
                response = _internal_error()
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            if request.secure:
                response.headers.setdefault("Strict-Transport-Security", HSTS)
            route = request.get(ROUTE_KEY, "other")
            elapsed = clock() - started
            http_metrics.REQUESTS.labels(route=route, status=str(response.status)).inc()
            http_metrics.REQUEST_SECONDS.labels(route=route).observe(elapsed)
            logger.info("http request", method=request.method, host=request.host,
                        path=request.path, status=response.status, route=route,
                        remote=request.remote, ms=round(elapsed * 1000, 1))
            return response

    return observe
