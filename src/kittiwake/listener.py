"""A TCP listener on some IPs that runs each connection in a task of its own.

:class:`Listener` does what every service (SMTP, IMAP) needs around its
sessions: take its listening sockets from :data:`SOCKETS`, do the TLS
handshake of implicit-TLS services (RFC 8314 §3.3) and count the failures,
keep the tasks of open sessions, and on close stop accepting, give the
sessions ``grace`` seconds, then cancel the rest. Subclasses implement
:meth:`Listener.serve`, which owns one connection.

**TLS before any stream reads.** An implicit-TLS connection is accepted as a
bare socket and handed to the loop with its TLS context
(``connect_accepted_socket(ssl=...)``), so the TLS layer sees the client's
first byte. Accepting it as a stream and then calling ``start_tls`` loses
whatever the stream protocol already read, and the ClientHello of an
implicit-TLS client is there at once: under uvloop (which starts reading as
soon as the connection is made, before the session task runs) that happened
to nearly every handshake, which then hung until its timeout (uvloop issue
707, CPython gh-142352, fixed only in newer CPython). For STARTTLS,
:func:`starttls` upgrades a stream after the server's go-ahead and refuses
a client that sent anything after the command (its ClientHello too early,
or plain text that must not be acted on: RFC 3207 §4.2, RFC 9051 §6.2.1).

**Listening sockets outlive the listeners.** :class:`ListenSockets` binds
each address once per process and keeps the socket: ``kittiwake serve``
started as root binds every port there before it drops to its user, and
``kittiwake restart`` hands the same sockets to the new program across
``exec`` (the kernel keeps queueing connections meanwhile, so none is
refused). A listener serves a duplicate of the socket; closing the listener
stops accepting without closing the kernel socket. Any service that
listens (the HTTP listeners too) takes its sockets from
``SOCKETS.socket(ip, port)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
from collections.abc import Callable

from kittiwake import metrics
from kittiwake.log import get_logger

logger = get_logger("server")

__all__ = ["SOCKETS", "ListenSockets", "Listener", "SentBeforeHandshake", "handshake_failed",
           "starttls"]

# Environment variable naming inherited listening sockets: "IP,PORT,FD;IP,PORT,FD".
INHERIT_ENV = "KITTIWAKE_LISTEN_FDS"

STREAM_LIMIT = 1 << 20  # the StreamReader's buffer limit for one connection
TLS_SERVICES = ("smtp", "submission", "submissions", "imap", "imaps", "https")
HANDSHAKE_TIMEOUT = 30.0  # seconds for a TLS handshake, implicit TLS and STARTTLS
HANDSHAKE_FAILURE_REASONS = ("timeout", "closed", "version", "cipher", "certificate",
                             "plaintext", "other")

TLS_HANDSHAKE_FAILURES = metrics.counter(
    "tls_handshake_failures",
    "TLS handshakes (implicit TLS and STARTTLS) that failed, by service and reason: timeout,"
    " closed (the client went away), version (no common TLS version), cipher (no common"
    " cipher or group), certificate (the client rejected our certificate), plaintext"
    " (the client spoke without TLS), other.",
    {"service": TLS_SERVICES, "reason": HANDSHAKE_FAILURE_REASONS})


class SentBeforeHandshake(ConnectionError):
    """The client sent bytes after STARTTLS before it could have seen the go-ahead."""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, SentBeforeHandshake):
        return "plaintext"
    if isinstance(exc, ConnectionAbortedError) and "longer than" in str(exc):
        return "timeout"  # both loops' SSLProtocol: "SSL handshake is taking longer than N s"
    if isinstance(exc, ssl.SSLError):
        text = f"{exc.reason or ''} {exc}".upper()
        if "HTTP_REQUEST" in text:
            return "plaintext"
        if "VERSION" in text or "PROTOCOL" in text:
            return "version"
        if "CIPHER" in text or "GROUP" in text or "KEY_SHARE" in text or "SIGALG" in text \
                or "SIGNATURE" in text:
            return "cipher"
        if "CERTIFICATE" in text or "UNKNOWN_CA" in text:
            return "certificate"
        if "EOF" in text:
            return "closed"
        return "other"
    if isinstance(exc, (ConnectionError, EOFError, asyncio.IncompleteReadError)):
        return "closed"
    return "other"


def handshake_failed(service: str, exc: BaseException) -> str:
    """Count a failed TLS handshake of ``service`` and return its reason label."""
    reason = _reason(exc)
    label = service if service in TLS_SERVICES else "https"
    TLS_HANDSHAKE_FAILURES.labels(service=label, reason=reason).inc()
    return reason


async def starttls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   context: ssl.SSLContext, timeout: float = HANDSHAKE_TIMEOUT) -> None:
    """Upgrade a stream to TLS as the server, after the go-ahead reply was written.

    SentBeforeHandshake when the client sent anything after its STARTTLS
    command that the stream already holds: plain text pipelined after
    STARTTLS must never be read as if it came through TLS (RFC 3207 §4.2,
    CVE-2011-0411), and a ClientHello sent before the go-ahead would be lost
    to the TLS layer (the handshake would hang). Raises what ``start_tls``
    raises (ssl.SSLError, ConnectionError, OSError, TimeoutError) otherwise.
    """
    await writer.drain()
    # No await between this check and start_tls taking the transport (its own
    # drain returns at once now), so nothing can arrive into the buffer between.
    if reader._buffer:  # type: ignore[attr-defined]  # the stream's read-ahead (no API)
        raise SentBeforeHandshake(f"{len(reader._buffer)} bytes sent"  # type: ignore[attr-defined]
                                  " after STARTTLS, before the TLS handshake")
    await writer.start_tls(context, ssl_handshake_timeout=timeout)


async def accept_forever(listening: socket.socket, service: str,
                         accepted: Callable[[socket.socket, tuple[str, int]], None]) -> None:
    """Accept on a non-blocking listening socket until cancelled, handing each new
    socket and its peer to ``accepted`` (which must not block). An accept error
    (EMFILE and the like) is logged and retried after 0.1 s, never spun on."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            sock, peer = await loop.sock_accept(listening)
        except OSError as exc:
            logger.warning("accept failed", service=service, error=str(exc))
            await asyncio.sleep(0.1)
            continue
        accepted(sock, peer)


class ListenSockets:
    """The process's listening sockets by (ip, port): bound once, kept, passed on at exec."""

    def __init__(self) -> None:
        self._sockets: dict[tuple[str, int], socket.socket] = {}
        self._inherited = False
        self.holding = False  # set for a restart: closed listeners keep their sockets
        self._claimed: set[tuple[str, int]] = set()

    def socket(self, ip: str, port: int, backlog: int = 1024) -> socket.socket:
        """The listening socket for ``ip``:``port``, bound now if not yet; OSError if taken.

        Port 0 binds a new socket on a free port each time (tests).
        """
        self._inherit()
        sock = self._sockets.get((ip, port)) if port else None
        if sock is not None:
            self._claimed.add((ip, port))
        else:
            family = socket.AF_INET6 if ":" in ip else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind((ip, port))
                sock.listen(backlog)
            except OSError:
                sock.close()
                raise
            sock.setblocking(False)
            key = (ip, int(sock.getsockname()[1]))
            self._sockets[key] = sock
            self._claimed.add(key)
        return sock

    def close_unclaimed(self) -> None:
        """Close sockets bound or inherited that no service took (e.g. a port removed)."""
        for key in [k for k in self._sockets if k not in self._claimed]:
            self._sockets.pop(key).close()

    def release(self, ip: str, port: int) -> None:
        """Close the socket of a listener that closed, unless :attr:`holding` (restart)."""
        if self.holding:
            return
        sock = self._sockets.pop((ip, port), None)
        self._claimed.discard((ip, port))
        if sock is not None:
            sock.close()

    def _inherit(self) -> None:
        """Adopt the sockets a previous program of this process passed on (restart)."""
        if self._inherited:
            return
        self._inherited = True
        spec = os.environ.pop(INHERIT_ENV, "")
        for item in filter(None, spec.split(";")):
            ip, port, fd = item.rsplit(",", 2)
            sock = socket.socket(fileno=int(fd))
            sock.set_inheritable(False)
            sock.setblocking(False)
            self._sockets[(ip, int(port))] = sock

    def pass_on(self) -> dict[str, str]:
        """Make the sockets survive ``exec``; the environment entry that names them."""
        items = []
        for (ip, port), sock in self._sockets.items():
            sock.set_inheritable(True)
            items.append(f"{ip},{port},{sock.fileno()}")
        return {INHERIT_ENV: ";".join(items)}

    def close_all(self) -> None:
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()


SOCKETS = ListenSockets()


class Listener:
    """Accepts on ``ips``:``port``; :meth:`serve` handles each connection."""

    def __init__(self, name: str, ips: list[str], port: int, backlog: int = 1024,
                 handshake_timeout: float = HANDSHAKE_TIMEOUT) -> None:
        self.name = name
        self.ips = ips
        self.port = port
        self.backlog = backlog
        self.handshake_timeout = handshake_timeout
        self._servers: list[asyncio.Server] = []
        self._tls_sockets: list[socket.socket] = []
        self._accepting: list[asyncio.Task[None]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._bound: list[str] = []
        self._keys: list[tuple[str, int]] = []

    async def listen(self, tls: ssl.SSLContext | None = None) -> None:
        """Accept on every address, TLS first when ``tls`` is given; OSError when one is taken."""
        loop = asyncio.get_running_loop()
        for ip in self.ips:
            listening = SOCKETS.socket(ip, self.port, self.backlog)
            self._keys.append((ip, int(listening.getsockname()[1])))
            sock = listening.dup()
            if tls is not None:
                sock.setblocking(False)
                self._tls_sockets.append(sock)
                self._note_bound(sock)
                self._accepting.append(loop.create_task(self._accept_tls(sock, tls)))
                continue
            try:
                server = await asyncio.start_server(self._accept, sock=sock, limit=STREAM_LIMIT,
                                                    backlog=self.backlog)
            except BaseException:
                sock.close()
                raise
            self._servers.append(server)
            for bound in server.sockets:
                self._note_bound(bound)

    def _note_bound(self, sock: socket.socket) -> None:
        host, port = sock.getsockname()[:2]
        self._bound.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self.serve(reader, writer)
        finally:
            self._tasks.discard(task)

    async def _accept_tls(self, listening: socket.socket, context: ssl.SSLContext) -> None:
        """Accept bare sockets; each gets a task that does the handshake, then :meth:`serve`."""
        loop = asyncio.get_running_loop()

        def accepted(sock: socket.socket, _peer: tuple[str, int]) -> None:
            task = loop.create_task(self._serve_tls(sock, context))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        await accept_forever(listening, self.name, accepted)

    async def _serve_tls(self, sock: socket.socket, context: ssl.SSLContext) -> None:
        """RFC 8314 §3.3: the TLS handshake first (counted when it fails), then the session."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=STREAM_LIMIT, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        try:
            transport, _ = await loop.connect_accepted_socket(
                lambda: protocol, sock, ssl=context, ssl_handshake_timeout=self.handshake_timeout)
        except (ssl.SSLError, ConnectionError, OSError, TimeoutError, EOFError) as exc:
            handshake_failed(self.name, exc)
            sock.close()
            return
        except BaseException:
            sock.close()
            raise
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        await self.serve(reader, writer)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    def open_sessions(self) -> int:
        """Connections being served (refused ones are gone at once)."""
        return len(self._tasks)

    async def close(self, grace: float) -> None:
        for server in self._servers:
            server.close()
        for accepting in self._accepting:
            accepting.cancel()
        if self._accepting:  # their sock_accept stops watching the socket before it closes
            await asyncio.wait(self._accepting, timeout=1)
        for sock in self._tls_sockets:
            sock.close()
        self._accepting.clear()
        self._tls_sockets.clear()
        if self._tasks:
            _done, pending = await asyncio.wait(list(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1)
        for ip, port in self._keys:
            SOCKETS.release(ip, port)
        self._keys.clear()

    def addresses(self) -> list[str]:
        """Where it listens, for the start-up log (e.g. "127.0.0.1:25")."""
        return list(self._bound)
