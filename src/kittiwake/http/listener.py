"""The transport of the HTTP (port 80) and HTTPS (port 443) listeners.

Port 80 (:class:`HTTPListener`) answers ACME http-01 challenges (RFC 8555
§8.3: ``GET /.well-known/acme-challenge/TOKEN``, the key authorization as
``text/plain``) and redirects everything else to HTTPS; behind a web server
that terminates TLS (``reverse_proxied``) it serves the content application
instead of redirecting.

Port 443 (:class:`HTTPSListener`) accepts TCP itself and peeks at the TLS
ClientHello (``MSG_PEEK``: nothing is consumed) before ``ssl`` sees the
connection, because Python's ``ssl`` has no ClientHello callback and the SNI
callback does not see the ALPN list. A client offering ``acme-tls/1`` gets
the tls-alpn-01 challenge certificate of its server name (RFC 8737 §3) and
the connection is closed after the handshake; every other client gets the
normal server context and the content application.

The parts that know ACME are given as arguments (the layer rules keep
``http`` from importing ``acme``): the pending answers
(:class:`ChallengeAnswers`, e.g. :class:`kittiwake.acme.challenges.Challenges`)
and the ClientHello parser (:data:`HelloParser`, e.g.
:func:`kittiwake.acme.clienthello.parse_client_hello`).

Invariants against slow and malformed clients:
- every connection holds a slot of the process's :class:`ConnectionSlots`
  from accept to close (refused at once when none is free);
- the ClientHello must be complete within ``hello_seconds``, the TLS
  handshake within ``handshake_seconds``, and each request head within
  ``head_seconds`` of the connection or of the previous response (slowloris);
- header lines, fields and counts are bounded by aiohttp's parser limits,
  bodies by ``max_body``; bytes on 443 that are no ClientHello close the
  connection without an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from kittiwake.http import listener_metrics as m
from kittiwake.limits import ConnectionSlots
from kittiwake.limits.connections import Refusal
from kittiwake.listener import SOCKETS, accept_forever
from kittiwake.log import get_logger

logger = get_logger("http")

CHALLENGE_PREFIX = "/.well-known/acme-challenge/"
MAX_PEEK = 1 << 16


class ChallengeAnswers(Protocol):
    """The ACME challenge answers being validated right now."""

    def http01(self, token: str) -> str | None: ...

    def tls_alpn01_context(self, server_name: str | None) -> ssl.SSLContext | None: ...


class HelloView(Protocol):
    """What the HTTPS listener needs of a parsed ClientHello."""

    @property
    def server_name(self) -> str | None: ...

    @property
    def wants_acme_challenge(self) -> bool: ...


HelloParser = Callable[[bytes], "HelloView | None"]
"""Parse the bytes so far: the hello, None while incomplete; ValueError when not TLS."""

ContentFactory = Callable[[], web.Application]
"""Builds the content application (MTA-STS policy, autoconfig, ...) for one listener."""

TLSContextSource = Callable[[], "ssl.SSLContext | None"]
"""The current server context (it changes when certificates are renewed); None: none yet."""


@dataclass(frozen=True)
class TransportLimits:
    """Deadlines and sizes against slow and malformed clients."""

    hello_seconds: float = 10.0
    handshake_seconds: float = 10.0
    head_seconds: float = 20.0
    keepalive_seconds: float = 60.0
    max_line_size: int = 8190
    max_field_size: int = 8190
    max_headers: int = 64
    max_body: int = 64 * 1024


def not_found_app() -> web.Application:
    """Content until there is some: 404 for everything."""
    return web.Application()


class _AiohttpLog:
    """aiohttp's server log: a malformed request is the client's doing (debug, counted), any
    other error reaching aiohttp is a panic (traceback, ``kittiwake_panic_total``)."""

    def __init__(self, service: str) -> None:
        self.service = service

    def exception(self, msg: str, *args: object, exc_info: Any = None, **kw: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(exc, HttpProcessingError):
            m.REQUESTS.labels(service=self.service, kind="bad-request").inc()
            logger.debug("bad request", service=self.service, error=str(exc))
            return
        from kittiwake.metrics import panic

        if exc is not None:
            panic("http", exc, "unhandled error in an HTTP handler", service=self.service)

    def debug(self, msg: str, *args: object, **kw: Any) -> None:
        if logger.is_enabled("debug"):
            logger.debug("aiohttp", service=self.service, detail=msg % args if args else msg)

    def warning(self, msg: str, *args: object, **kw: Any) -> None:
        logger.warn("aiohttp", service=self.service, detail=msg % args if args else msg)

    error = warning
    info = debug


class _Connection(asyncio.Protocol):
    """Wraps aiohttp's request handler: holds the slot, arms the request-head deadline."""

    def __init__(self, owner: _Listener, inner: asyncio.Protocol, release: Callable[[], None]
                 ) -> None:
        self.owner = owner
        self.inner = inner
        self.release = release
        self.transport: asyncio.BaseTransport | None = None
        self.deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.owner._connections[transport] = self
        self.arm()
        self.inner.connection_made(transport)

    def arm(self) -> None:
        self.disarm()
        self.deadline = asyncio.get_running_loop().call_later(
            self.owner.limits.head_seconds, self._too_slow)

    def disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _too_slow(self) -> None:
        self.deadline = None
        if self.transport is not None and not self.transport.is_closing():
            m.SLOW_CLOSED.labels(service=self.owner.name).inc()
            self.transport.abort()  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self.disarm()
        if self.transport is not None:
            self.owner._connections.pop(self.transport, None)
        self.release()
        self.inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class _Listener:
    """Accepts TCP on ``ips``:``port``; subclasses decide what each connection gets."""

    def __init__(self, name: str, ips: list[str], port: int, content: ContentFactory | None,
                 slots: ConnectionSlots | None, limits: TransportLimits, backlog: int) -> None:
        self.name = name
        self.ips = ips
        self.port = port
        self.limits = limits
        self.backlog = backlog
        self.slots = slots or ConnectionSlots()
        self._content = content
        self._sockets: list[socket.socket] = []
        self._accepting: list[asyncio.Task[None]] = []
        self._handshakes: set[asyncio.Task[None]] = set()
        self._connections: dict[asyncio.BaseTransport, _Connection] = {}
        self._runner: web.AppRunner | None = None
        self._bound: list[str] = []
        self._keys: list[tuple[str, int]] = []

    def _app(self) -> web.Application:
        raise NotImplementedError

    async def start(self) -> None:
        app = self._app()
        app.middlewares.insert(0, self._head_deadline)
        app._client_max_size = self.limits.max_body
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False,
            keepalive_timeout=self.limits.keepalive_seconds,
            max_line_size=self.limits.max_line_size, max_field_size=self.limits.max_field_size,
            max_headers=self.limits.max_headers, logger=_AiohttpLog(self.name))
        await self._runner.setup()
        loop = asyncio.get_running_loop()
        try:
            for ip in self.ips:
                # From the process's listening sockets: bound before serve drops root,
                # and handed on to the next program at a restart (kittiwake.listener).
                listening = SOCKETS.socket(ip, self.port, self.backlog)
                self._keys.append((ip, int(listening.getsockname()[1])))
                sock = listening.dup()
                sock.setblocking(False)
                self._sockets.append(sock)
                host, port = sock.getsockname()[:2]
                self._bound.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        except OSError:
            await self.close(0)
            raise
        for sock in self._sockets:
            self._accepting.append(loop.create_task(self._accept_loop(sock)))

    @property
    def bound_port(self) -> int:
        """The port actually bound (for port 0 in tests)."""
        return int(self._sockets[0].getsockname()[1])

    def addresses(self) -> list[str]:
        return list(self._bound)

    async def close(self, grace: float) -> None:
        for task in self._accepting:
            task.cancel()
        for sock in self._sockets:
            sock.close()
        for ip, port in self._keys:
            SOCKETS.release(ip, port)
        self._keys.clear()
        for task in list(self._handshakes):
            task.cancel()
        if self._runner is not None:
            server = self._runner.server
            if server is not None:
                with contextlib.suppress(Exception):
                    await server.shutdown(grace)
            await self._runner.cleanup()
            self._runner = None

    async def _accept_loop(self, listening: socket.socket) -> None:
        loop = asyncio.get_running_loop()

        def accepted(sock: socket.socket, peer: tuple[str, int]) -> None:
            slot = self.slots.acquire(str(peer[0]))
            if isinstance(slot, Refusal):
                m.REFUSED.labels(service=self.name, limit=slot.value).inc()
                sock.close()
                return
            task = loop.create_task(self._guarded(sock, slot.release))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

        await accept_forever(listening, self.name, accepted)

    async def _connection(self, sock: socket.socket, release: Callable[[], None]) -> None:
        raise NotImplementedError

    async def _guarded(self, sock: socket.socket, release: Callable[[], None]) -> None:
        """The top of a connection before aiohttp owns it: an error ends only this one."""
        try:
            await self._connection(sock, release)
        except asyncio.CancelledError:  # closing: drop the half-accepted connection
            sock.close()
            release()
            raise
        except Exception as exc:
            from kittiwake.metrics import panic

            panic("http", exc, "unhandled error accepting a connection", service=self.name)
            sock.close()
            release()

    async def _serve_http(self, sock: socket.socket, release: Callable[[], None],
                          context: ssl.SSLContext | None) -> bool:
        """Hand ``sock`` (TLS when ``context``) to the aiohttp application; False if the
        handshake failed (the socket is closed and the slot released then)."""
        assert self._runner is not None and self._runner.server is not None
        server = self._runner.server
        loop = asyncio.get_running_loop()
        try:
            await loop.connect_accepted_socket(
                lambda: _Connection(self, server(), release), sock, ssl=context,
                ssl_handshake_timeout=self.limits.handshake_seconds if context else None)
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as exc:
            logger.debug("connection failed", service=self.name, error=str(exc))
            sock.close()
            release()
            return False
        return True

    @web.middleware
    async def _head_deadline(self, request: web.Request,
                             handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                             ) -> web.StreamResponse:
        """The head arrived: stop its deadline; re-arm it for the next request after."""
        connection = self._connections.get(request.transport) if request.transport else None
        if connection is not None:
            connection.disarm()
        try:
            return await handler(request)
        finally:
            if connection is not None and connection.transport is not None \
                    and not connection.transport.is_closing():
                connection.arm()


def _close_cleanly(sock: socket.socket) -> None:
    """Close with a FIN, not a reset: read away what the client sent that we leave unread."""
    try:
        while sock.recv(MAX_PEEK):
            pass
    except OSError:  # BlockingIOError once drained; a reset peer
        pass
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


async def _readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(sock.fileno(), wake)
    try:
        await ready
    finally:
        loop.remove_reader(sock.fileno())


def _challenge_response(answers: ChallengeAnswers, service: str, path: str) -> web.Response:
    """RFC 8555 §8.3: the key authorization of the token, as text/plain; 404 when unknown."""
    token = path[len(CHALLENGE_PREFIX):]
    answer = answers.http01(token) if token and "/" not in token else None
    if answer is None:
        m.REQUESTS.labels(service=service, kind="acme-unknown").inc()
        return web.Response(status=404, text="no such ACME challenge\n")
    m.REQUESTS.labels(service=service, kind="acme-challenge").inc()
    logger.info("acme http-01 challenge answered", token=token)
    return web.Response(text=answer, content_type="text/plain")


def _redirect_host(request: web.Request, fallback: str) -> str:
    """The Host of the request when it is a plain host name, else the listener's name."""
    host = (request.host or "").rsplit(":", 1)[0] if not (request.host or "").startswith("[") \
        else ""
    if host and len(host) <= 253 and all(c.isalnum() or c in ".-" for c in host):
        return host.lower()
    return fallback


class HTTPListener(_Listener):
    """Port 80: ACME http-01, then redirects to HTTPS (or the content, when reverse proxied)."""

    def __init__(self, ips: list[str], port: int, challenges: ChallengeAnswers, hostname: str,
                 *, https_port: int = 443, reverse_proxied_content: ContentFactory | None = None,
                 slots: ConnectionSlots | None = None,
                 limits: TransportLimits = TransportLimits(), backlog: int = 1024) -> None:
        super().__init__("http", ips, port, reverse_proxied_content, slots, limits, backlog)
        self.challenges = challenges
        self.hostname = hostname
        self.https_port = https_port

    def _app(self) -> web.Application:
        if self._content is not None:
            app = self._content()
            app.middlewares.insert(0, self._challenge_or_content)
            return app
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._challenge_or_redirect)
        return app

    async def _connection(self, sock: socket.socket, release: Callable[[], None]) -> None:
        await self._serve_http(sock, release, None)

    async def _challenge_or_redirect(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith(CHALLENGE_PREFIX) and request.method in ("GET", "HEAD"):
            return _challenge_response(self.challenges, self.name, request.path)
        m.REQUESTS.labels(service=self.name, kind="redirect").inc()
        host = _redirect_host(request, self.hostname)
        port = "" if self.https_port == 443 else f":{self.https_port}"
        # 301 for GET/HEAD; 308 keeps the method and body of others (RFC 9110 §15.4.2, 7538).
        status = 301 if request.method in ("GET", "HEAD") else 308
        return web.Response(status=status, headers={"Location": f"https://{host}{port}"
                                                                f"{request.rel_url}"})

    @web.middleware
    async def _challenge_or_content(
            self, request: web.Request,
            handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path.startswith(CHALLENGE_PREFIX) and request.method in ("GET", "HEAD"):
            return _challenge_response(self.challenges, self.name, request.path)
        m.REQUESTS.labels(service=self.name, kind="content").inc()
        return await handler(request)


class HTTPSListener(_Listener):
    """Port 443: tls-alpn-01 for clients offering ``acme-tls/1``, else TLS and the content."""

    def __init__(self, ips: list[str], port: int, challenges: ChallengeAnswers,
                 parse_hello: HelloParser, tls: TLSContextSource, *,
                 content: ContentFactory | None = None, slots: ConnectionSlots | None = None,
                 limits: TransportLimits = TransportLimits(), backlog: int = 1024) -> None:
        super().__init__("https", ips, port, content or not_found_app, slots, limits, backlog)
        self.challenges = challenges
        self.parse_hello = parse_hello
        self.tls = tls

    def _app(self) -> web.Application:
        assert self._content is not None
        app = self._content()
        app.middlewares.insert(0, self._count)
        return app

    @web.middleware
    async def _count(self, request: web.Request,
                     handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                     ) -> web.StreamResponse:
        m.REQUESTS.labels(service=self.name, kind="content").inc()
        return await handler(request)

    async def _connection(self, sock: socket.socket, release: Callable[[], None]) -> None:
        try:
            hello = await asyncio.wait_for(self._peek_hello(sock), self.limits.hello_seconds)
        except TimeoutError:
            return self._drop(sock, release, "timeout")
        except (ValueError, OSError):
            return self._drop(sock, release, "not-tls")
        if hello.wants_acme_challenge:
            context = self.challenges.tls_alpn01_context(hello.server_name)
            if context is None:
                return self._drop(sock, release, "acme-unknown", hello.server_name)
            await self._answer_challenge(sock, release, context, hello.server_name)
            return
        context = self.tls()
        if context is None:
            return self._drop(sock, release, "no-certificate", hello.server_name)
        ok = await self._serve_http(sock, release, context)
        m.HANDSHAKES.labels(result="ok" if ok else "failed").inc()

    def _drop(self, sock: socket.socket, release: Callable[[], None], result: str,
              server_name: str | None = None) -> None:
        m.HANDSHAKES.labels(result=result).inc()
        logger.debug("https connection closed", result=result, server_name=server_name)
        _close_cleanly(sock)
        release()

    async def _peek_hello(self, sock: socket.socket) -> HelloView:
        """Wait until the ClientHello is complete in the socket buffer, without reading it."""
        loop = asyncio.get_running_loop()
        seen = -1
        while True:
            await _readable(loop, sock)
            data = sock.recv(MAX_PEEK, socket.MSG_PEEK)
            if not data:
                raise ValueError("connection closed before a ClientHello")
            hello = self.parse_hello(data)
            if hello is not None:
                return hello
            if len(data) == seen:
                # Level-triggered readiness stays set while the bytes sit unread: wait a
                # little for the rest of the hello (the hello deadline bounds this).
                await asyncio.sleep(0.02)
            seen = len(data)

    async def _answer_challenge(self, sock: socket.socket, release: Callable[[], None],
                                context: ssl.SSLContext, server_name: str | None) -> None:
        """RFC 8737 §3: the handshake with the challenge certificate, then close."""
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.connect_accepted_socket(
                asyncio.Protocol, sock, ssl=context,
                ssl_handshake_timeout=self.limits.handshake_seconds)
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as exc:
            logger.info("acme tls-alpn-01 handshake failed", server_name=server_name,
                        error=str(exc))
            sock.close()
            release()
            m.HANDSHAKES.labels(result="failed").inc()
            return
        m.HANDSHAKES.labels(result="acme-challenge").inc()
        logger.info("acme tls-alpn-01 challenge answered", server_name=server_name)
        transport.close()
        release()
