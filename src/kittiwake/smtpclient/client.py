"""The asyncio SMTP client for outgoing delivery and relaying (RFC 5321, RFC 3207, RFC 4954).

A thin driver around the sans-I/O pieces: :class:`ReplyParser` for replies (through
:class:`~kittiwake.smtpclient.replycache.ReplyReader`),
:class:`Capabilities` for EHLO, :func:`plan_delivery`/:class:`Transaction`
for MAIL transactions (PIPELINING, BDAT, LIMITS), ``kittiwake.sasl`` for
AUTH. Every line both ways goes through :class:`kittiwake.log.SMTPTranscript`,
which hides credentials below traceauth and message data below tracedata.

Written here rather than taken from aiosmtplib because delivery needs what
it lacks: the whole peer certificate chain for DANE, REQUIRETLS, per-
recipient results with the exact remote replies, pipelining error semantics
(a 550 to MAIL followed by a close is a 550), and transcript redaction.

Usage::

    async with await Client.connect("mx.example.org", 25, local_hostname="mail.example.com",
                                    tls=TLSMode.OPPORTUNISTIC) as c:
        result = await c.deliver("alice@example.com", ["bob@example.org"], message)
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import enum
import os
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import BinaryIO, TypeVar

from kittiwake import log
from kittiwake.dns import Resolver
from kittiwake.sasl import (
    ChannelBinding,
    ClientError,
    UnknownMechanism,
    choose_client_mechanism,
    new_client,
)
from kittiwake.smtp import Address, MalformedReply, Reply, Ret
from kittiwake.smtpclient.capabilities import Capabilities
from kittiwake.smtpclient.errors import (
    AuthError,
    ConnectError,
    ConnectionLost,
    ProtocolError,
    ReplyError,
    SMTPClientError,
    SMTPTimeout,
    TLSError,
    TLSRejection,
    tlsrpt_result_of_verify_code,
)
from kittiwake.smtpclient.replycache import ReplyReader
from kittiwake.smtpclient.results import (
    CommandReply,
    DeliveryResult,
    RecipientResult,
    Stage,
)
from kittiwake.smtpclient.stream import CHUNK_SIZE, DotStuffer, MessageSource
from kittiwake.smtpclient.tlsinfo import TLSInfo, tls_info
from kittiwake.smtpclient.transaction import Recipient, Send, Transaction, plan_delivery

__all__ = ["Client", "TLSMode", "TLSVerify", "Timeouts", "unverified_context"]

READ_SIZE = 65536
T = TypeVar("T")


class TLSMode(enum.StrEnum):
    """How :meth:`Client.connect` sets up TLS."""

    NONE = "none"  # plain text only
    STARTTLS = "starttls"  # RFC 3207; TLSError when not offered or failing
    IMPLICIT = "implicit"  # TLS from the first byte (RFC 8314, port 465)
    OPPORTUNISTIC = "opportunistic"  # STARTTLS when offered; TLSError if it fails


@dataclass(frozen=True)
class Timeouts:
    """Seconds per stage; defaults are RFC 5321 §4.5.3.2's minimums (connect: ours)."""

    connect: float = 30.0
    greeting: float = 300.0  # §4.5.3.2.1 initial 220
    command: float = 300.0  # §4.5.3.2.2-4 MAIL, RCPT (and EHLO, STARTTLS, AUTH, ...)
    data_start: float = 120.0  # §4.5.3.2.4 DATA initiation (354)
    data_block: float = 180.0  # §4.5.3.2.5 each block of data must make progress
    data_end: float = 600.0  # §4.5.3.2.6 reply to "." (and to BDAT LAST)

    @classmethod
    def uniform(cls, seconds: float) -> Timeouts:
        return cls(seconds, seconds, seconds, seconds, seconds, seconds)


# Called after every TLS handshake; returns None to accept, or why the server is
# rejected (DANE, MTA-STS): text, or a TLSRejection that also names the RFC 8460
# result type. The connection is then closed with a TLSError.
TLSVerify = Callable[[TLSInfo], "str | TLSRejection | None"]


def unverified_context() -> ssl.SSLContext:
    """A client context that accepts any certificate (opportunistic TLS, RFC 7435;
    DANE/MTA-STS then verify through ``tls_verify``). TLS 1.2 at least."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


async def _resolve(resolver: Resolver | None, host: str, port: int) -> list[str]:
    """The addresses of ``host`` from kittiwake's resolver, IPv6 first."""
    from kittiwake.dns import DNSTemporaryError, InvalidName, default_resolver

    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        # RFC 6761 §6.3: localhost names are the loopback address, without asking
        # the DNS (IPv4 first, as /etc/hosts usually lists it).
        return ["127.0.0.1", "::1"]
    try:
        answer = await (resolver or default_resolver()).ips(host)
    except (DNSTemporaryError, InvalidName) as exc:
        raise ConnectError(f"connecting to {host} port {port}: address lookup failed: {exc}",
                           stage=Stage.CONNECT) from None
    if not answer.records:
        raise ConnectError(f"connecting to {host} port {port}: {host} has no address"
                           f" ({answer.status})", stage=Stage.CONNECT)
    return [str(a) for a in answer.records]


async def _open(remote: str, port: int, timeout: float, *, ip: str | None = None,
                sock: socket.socket | None = None) -> tuple[asyncio.StreamReader,
                                                            asyncio.StreamWriter]:
    where = f"{remote} [{ip}]" if ip is not None and ip != remote.strip("[]") else remote
    try:
        if sock is not None:
            return await asyncio.wait_for(
                asyncio.open_connection(sock=sock, limit=1 << 20), timeout)
        return await asyncio.wait_for(asyncio.open_connection(ip, port, limit=1 << 20), timeout)
    except TimeoutError:
        raise ConnectError(f"connecting to {where} port {port}: timed out after "
                           f"{timeout:g}s", stage=Stage.CONNECT) from None
    except OSError as exc:
        raise ConnectError(f"connecting to {where} port {port}: {exc.strerror or exc}",
                           stage=Stage.CONNECT) from None


async def _open_first(remote: str, ips: Sequence[str], port: int,
                      timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to the first address that answers; one error naming all when none does."""
    problems: list[str] = []
    for ip in ips:
        try:
            return await _open(remote, port, timeout, ip=ip)
        except ConnectError as exc:
            problems.append(str(exc))
    if len(problems) == 1:
        raise ConnectError(problems[0], stage=Stage.CONNECT)
    raise ConnectError("; ".join(problems), stage=Stage.CONNECT)


def _read_cached(path: str | os.PathLike[str], offset: int, size: int, *, whole: bool = False
                 ) -> tuple[BinaryIO | None, bytes] | None:
    """Open and read the first ``size`` bytes only if they are in the page cache
    (``preadv2`` with RWF_NOWAIT, Linux 4.14+): then the event loop does not wait
    for a thread. None when the read would block (or the system cannot say).

    The file comes back open at the next byte to read, unless ``whole`` (the
    ``size`` bytes are all the caller wants) and they were all read: then it is
    closed already and None is returned in its place (one file object less per
    message; most messages are one chunk)."""
    nowait = getattr(os, "RWF_NOWAIT", None)
    if nowait is None or size <= 0:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None  # the thread path reports it
    try:
        buffer = bytearray(size)
        got = os.preadv(fd, [buffer], offset, nowait)
        if got <= 0:
            os.close(fd)
            return None
        if whole and got == size:
            os.close(fd)
            return None, bytes(buffer)
        os.lseek(fd, offset + got, os.SEEK_SET)
        handle = open(fd, "rb", buffering=0)  # noqa: SIM115 - closed by the caller
    except OSError:  # EAGAIN: not cached; EOPNOTSUPP: no RWF_NOWAIT on this file system
        os.close(fd)
        return None
    return handle, bytes(memoryview(buffer)[:got])


def _open_range(path: str | os.PathLike[str], offset: int, size: int
                ) -> tuple[BinaryIO, bytes]:
    """Open the file at ``offset`` and read its first ``size`` bytes (one thread hop)."""
    handle = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the caller
    try:
        if offset:
            handle.seek(offset)
        return handle, handle.read(size)
    except BaseException:
        handle.close()
        raise


def _b64(data: bytes) -> str:
    # RFC 4954 §4: an empty initial response is sent as "=".
    return base64.b64encode(data).decode("ascii") if data else "="


class Client:
    """One SMTP session with a server. Create with :meth:`connect`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 remote: str, local_hostname: str, timeouts: Timeouts,
                 logger: log.Logger | None = None) -> None:
        self.reader = reader
        self.writer = writer
        self.remote = remote  # for messages: "mx.example.org" or "[192.0.2.1]"
        self.local_hostname = local_hostname
        self.timeouts = timeouts
        self.logger = logger or log.get_logger("smtpclient")
        self.transcript = log.SMTPTranscript(self.logger)
        self.capabilities: Capabilities | None = None
        self.tls: TLSInfo | None = None
        self.greeting: Reply | None = None
        self.authenticated: str | None = None  # the SASL mechanism that succeeded
        self.replies: list[CommandReply] = []  # session-level replies (not transactions)
        self.closed = False
        self.transactions = 0  # MAIL transactions started (RFC 9422 MAILMAX)
        self._parser = ReplyReader()
        self._replies: deque[Reply] = deque()
        self._needs_rset = False

    # --- setup -----------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int = 25,
        *,
        local_hostname: str,
        timeouts: Timeouts | float | None = None,
        tls: TLSMode | str = TLSMode.NONE,
        tls_context: ssl.SSLContext | None = None,
        tls_server_name: str | None = None,
        tls_verify: TLSVerify | None = None,
        sock: socket.socket | None = None,
        logger: log.Logger | None = None,
        remote_name: str | None = None,
        ehlo: bool = True,
        resolver: Resolver | None = None,
        addresses: Sequence[str] | None = None,
    ) -> Client:
        """Connect, read the greeting and (with ``ehlo``) do EHLO and the TLS of ``tls``.

        ``host`` is an IP address (``[...]`` allowed) or a name. A name is
        resolved by kittiwake's own ``resolver`` (default
        :func:`kittiwake.dns.default_resolver`: ``KITTIWAKE_DNS``, resolv.conf),
        never by the system resolver, and its addresses are tried in turn,
        IPv6 first (RFC 5321 §5.1); the name stays the TLS server name (SNI)
        and the name certificates are verified for. ``addresses``: already
        resolved addresses of ``host`` to try instead (DANE callers that
        looked them up themselves).
        ``sock``: an already connected socket (SOCKS proxy, own source address);
        ``host`` then only names the server. ``tls_context``: default is a
        verifying context (``ssl.create_default_context()``) for STARTTLS and
        IMPLICIT and :func:`unverified_context` for OPPORTUNISTIC.
        ``tls_server_name``: SNI and name to verify (default ``host`` unless an
        IP). ``tls_verify``: extra check after the handshake (DANE, MTA-STS).
        ``remote_name``: how errors and local reasons name the server
        (default ``host``).

        Raises ConnectError, SMTPTimeout, ConnectionLost, ProtocolError,
        ReplyError (greeting or EHLO refused: 554 is permanent) and TLSError.
        """
        mode = TLSMode(tls)
        if timeouts is None:
            timeouts = Timeouts()
        elif not isinstance(timeouts, Timeouts):
            timeouts = Timeouts.uniform(float(timeouts))
        if host.startswith("[") and host.endswith("]") and _is_ip(host[1:-1]):
            host = host[1:-1]  # an address literal (RFC 5321 §4.1.3)
        remote = remote_name or (f"[{host}]" if _is_ip(host) else host)
        if sock is not None:
            reader, writer = await _open(remote, port, timeouts.connect, sock=sock)
        else:
            targets = [host] if _is_ip(host) else list(addresses) if addresses is not None \
                else await _resolve(resolver, host, port)
            reader, writer = await _open_first(remote, targets, port, timeouts.connect)
        client = cls(reader, writer, remote=remote, local_hostname=local_hostname,
                     timeouts=timeouts, logger=logger)
        server_name = tls_server_name or (None if _is_ip(host) else host)
        try:
            if mode is TLSMode.IMPLICIT:
                await client._handshake(server_name, tls_context or ssl.create_default_context(),
                                        tls_verify, Stage.TLS)
            await client._read_greeting()
            if ehlo:
                await client.ehlo()
                if mode in (TLSMode.STARTTLS, TLSMode.OPPORTUNISTIC):
                    caps = client.capabilities
                    if caps is not None and caps.starttls:
                        ctx = tls_context or (unverified_context() if mode is
                                              TLSMode.OPPORTUNISTIC else
                                              ssl.create_default_context())
                        try:
                            await client.starttls(server_name, ctx, verify=tls_verify)
                        except TLSError as exc:
                            # RFC 3207 §4: after a refusal (454) the session may go
                            # on in plain text, if policy allows.
                            if exc.handshake or mode is TLSMode.STARTTLS:
                                raise
                        else:
                            await client.ehlo()
                    elif mode is TLSMode.STARTTLS:
                        raise TLSError(f"STARTTLS required but not offered by {remote}",
                                       stage=Stage.STARTTLS, handshake=False)
        except TLSError as exc:
            if not exc.handshake:
                await client.quit()  # the plain session is fine: end it politely
            await client.close()
            raise
        except BaseException:
            await client.close()
            raise
        return client

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc is None and not self.closed:
            await self.quit()
        await self.close()

    async def _read_greeting(self) -> None:
        reply = await self._read_reply(Stage.GREETING, self.timeouts.greeting)
        self.greeting = reply
        self.replies.append(CommandReply(Stage.GREETING, "", reply))
        if reply.code != 220:
            # RFC 5321 §3.1: 554 instead of 220: the server will not talk to us;
            # the client should send QUIT and wait for the reply.
            await self.quit()
            raise ReplyError(f"{self.remote} refused the session: {reply}",
                             stage=Stage.GREETING, temporary=reply.code < 500, reply=reply)

    async def ehlo(self) -> Capabilities:
        """EHLO (RFC 5321 §4.1.1.1), falling back to HELO when EHLO is not known."""
        reply = await self._command(f"EHLO {self.local_hostname}", Stage.EHLO)
        if reply.code == 250:
            self.capabilities = Capabilities.from_ehlo(reply)
            return self.capabilities
        if reply.code in (500, 501, 502, 504, 550):
            # RFC 5321 §3.2: a server that does not support EHLO answers 500/502.
            helo = await self._command(f"HELO {self.local_hostname}", Stage.HELO)
            if helo.code == 250:
                self.capabilities = Capabilities.from_helo(helo)
                return self.capabilities
            reply = helo
        raise ReplyError(f"{self.remote} refused EHLO/HELO: {reply}", stage=Stage.EHLO,
                         temporary=reply.code < 500, reply=reply,
                         command=f"EHLO {self.local_hostname}")

    async def starttls(self, server_hostname: str | None = None,
                       ssl_context: ssl.SSLContext | None = None, *,
                       verify: TLSVerify | None = None) -> TLSInfo:
        """STARTTLS (RFC 3207) and the handshake (``ssl_context`` default:
        :func:`unverified_context`). Call :meth:`ehlo` next: capabilities are
        forgotten (RFC 3207 §4.2). ``verify`` is a :data:`TLSVerify` callback.

        Raises TLSError: ``handshake=False`` when the server answered other than
        220 (the plain session stays usable), ``handshake=True`` when the
        handshake or ``verify`` failed (the connection is closed).
        """
        reply = await self._command("STARTTLS", Stage.STARTTLS)
        if reply.code != 220:
            raise TLSError(f"{self.remote} refused STARTTLS: {reply}", stage=Stage.STARTTLS,
                           handshake=False, reply=reply, command="STARTTLS")
        if self._parser.pending or self._replies or self.reader._buffer:  # type: ignore[attr-defined]
            # RFC 3207 §5 / CVE-2011-0411: nothing may be read before the handshake.
            await self.close()
            raise TLSError(f"{self.remote} sent data after 220 to STARTTLS",
                           stage=Stage.STARTTLS)
        await self._handshake(server_hostname, ssl_context or unverified_context(), verify,
                              Stage.STARTTLS)
        assert self.tls is not None
        return self.tls

    async def _handshake(self, server_name: str | None, ctx: ssl.SSLContext,
                         verify: TLSVerify | None, stage: Stage) -> None:
        try:
            await self.writer.start_tls(ctx, server_hostname=server_name,
                                        ssl_handshake_timeout=self.timeouts.command)
        except (ssl.SSLError, ssl.CertificateError, OSError, TimeoutError, EOFError) as exc:
            await self.close()
            reason = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) \
                or str(exc) or type(exc).__name__
            result_type = tlsrpt_result_of_verify_code(exc.verify_code) \
                if isinstance(exc, ssl.SSLCertVerificationError) else None
            raise TLSError(f"TLS handshake with {self.remote} failed: {reason}",
                           stage=stage, tlsrpt_result_type=result_type) from None
        ssl_object = self.writer.get_extra_info("ssl_object")
        verified = ctx.verify_mode != ssl.CERT_NONE
        self.tls = tls_info(ssl_object, server_name, verified)
        self.capabilities = None  # RFC 3207 §4.2: forget what was said in plain text
        self.logger.debug("tls established", remote=self.remote, version=self.tls.version,
                          cipher=self.tls.cipher, chain=len(self.tls.chain_der))
        if verify is not None:
            problem = verify(self.tls)
            if problem:
                # RFC 7672 §2.2: an unauthenticated server gets QUIT, nothing else.
                await self.quit()
                raise TLSError(f"TLS certificate of {self.remote} rejected: {problem}",
                               stage=stage,
                               tlsrpt_result_type=problem.tlsrpt_result_type
                               if isinstance(problem, TLSRejection) else None)

    # --- AUTH --------------------------------------------------------------------

    def _plus_binding(self) -> ChannelBinding | None:
        """A binding for -PLUS: tls-exporter (RFC 9266) or, on TLS 1.2, tls-unique."""
        if self.tls is None:
            return None
        for cb in self.tls.channel_bindings:
            if cb.type in ("tls-exporter", "tls-unique"):
                return cb
        return None

    async def auth(self, username: str, password: str,
                   mechanisms: Collection[str] | None = None, *,
                   authzid: str | None = None) -> str:
        """AUTH (RFC 4954) with the strongest mechanism both sides allow; returns its name.

        Order: SCRAM-SHA-256-PLUS, SCRAM-SHA-256, SCRAM-SHA-1-PLUS, SCRAM-SHA-1,
        CRAM-MD5, PLAIN, LOGIN; PLAIN/LOGIN only over TLS, -PLUS only with channel
        binding data. ``mechanisms`` restricts the choice (configuration). SCRAM's
        server signature must verify (RFC 5802 §5.1). Raises AuthError.
        """
        caps = self.capabilities
        offered = caps.auth if caps else ()
        cb = self._plus_binding()
        name = choose_client_mechanism(offered, self.tls is not None, cb is not None, mechanisms)
        if name is None:
            allowed = f"; allowed: {', '.join(mechanisms)}" if mechanisms is not None else ""
            raise AuthError(f"no usable AUTH mechanism at {self.remote} (offered: "
                            f"{', '.join(offered) or 'none'}{allowed}"
                            f"{'' if self.tls else '; PLAIN/LOGIN need TLS'})",
                            stage=Stage.AUTH, temporary=False)
        binding = cb
        if not name.endswith("-PLUS") and any(o.endswith("-PLUS") for o in offered):
            # RFC 5802 §6: "y" says "the server does not do channel binding"; the
            # server offered -PLUS, so say "n" (we chose not to / cannot bind).
            binding = None
        try:
            mech = new_client(name, username, password, authzid=authzid,
                              channel_binding=binding)
        except (UnknownMechanism, ValueError) as exc:
            raise AuthError(f"cannot use {name}: {exc}", stage=Stage.AUTH,
                            temporary=False) from None
        command = f"AUTH {name}"
        ir = mech.initial_response()
        line = command if ir is None else f"{command} {_b64(ir)}"
        reply = await self._command(line, Stage.AUTH, record=command)
        try:
            while reply.code == 334:
                try:
                    challenge = base64.b64decode(reply.lines[0].strip(), validate=True)
                except (binascii.Error, ValueError):
                    await self._send_line("*")
                    reply = await self._read_reply(Stage.AUTH, self.timeouts.command)
                    raise AuthError(f"{self.remote} sent a malformed AUTH challenge",
                                    stage=Stage.AUTH, reply=reply, command=command) from None
                try:
                    # SCRAM's PBKDF2 can take a while: keep the loop free.
                    response = await asyncio.to_thread(mech.respond, challenge)
                except ClientError as exc:
                    await self._send_line("*")  # RFC 4954 §4: cancel the exchange
                    reply = await self._read_reply(Stage.AUTH, self.timeouts.command)
                    raise AuthError(f"AUTH {name} with {self.remote}: {exc}", stage=Stage.AUTH,
                                    temporary=False, reply=reply, command=command) from None
                await self._send_line(base64.b64encode(response).decode("ascii"))
                reply = await self._read_reply(Stage.AUTH, self.timeouts.command)
            self.replies.append(CommandReply(Stage.AUTH, command, reply))
            if reply.code != 235:
                raise AuthError(f"AUTH {name} refused by {self.remote}: {reply}",
                                stage=Stage.AUTH, temporary=reply.code < 500, reply=reply,
                                command=command)
            try:
                mech.finish(None)
            except ClientError as exc:
                # The server said yes without knowing the password: not our server.
                await self.close()
                raise AuthError(f"AUTH {name} with {self.remote}: {exc}", stage=Stage.AUTH,
                                temporary=False, reply=reply, command=command) from None
        finally:
            self.transcript.in_auth = False
        self.authenticated = name
        return name

    # --- mail --------------------------------------------------------------------

    async def deliver(
        self,
        mailfrom: str | Address | None,
        recipients: Sequence[str | Address | Recipient],
        data: bytes | MessageSource,
        *,
        smtputf8: bool = False,
        eightbit: bool = False,
        binarymime: bool = False,
        requiretls: bool = False,
        strict: bool = False,
        chunking: bool = False,
        ret: Ret | None = None,
        envid: str | None = None,
        auth_identity: str | None = None,
    ) -> DeliveryResult:
        """Send one message to ``recipients``; never raises for remote or connection trouble.

        ``mailfrom``: "" / None for the null reverse-path. ``recipients``: addresses
        or :class:`Recipient` with DSN NOTIFY/ORCPT. ``data``: the message, CRLF
        line ends (bare LF is converted for DATA): bytes, or a
        :class:`MessageSource` (prefix plus a file range) that is read from
        the file in chunks while it is sent. ``smtputf8``: the message
        needs SMTPUTF8 (also implied by a non-ASCII local-part). ``eightbit``:
        8-bit body (BODY=8BITMIME when offered; without 8BITMIME sent anyway
        unless ``strict``). ``binarymime``: BODY=BINARYMIME via BDAT.
        ``chunking``: use BDAT whenever CHUNKING is offered. ``requiretls``: RFC
        8689, refused locally unless TLS is active and REQUIRETLS offered.
        ``ret``/``envid``: DSN MAIL parameters (RFC 3461), sent when DSN is offered.

        The result has one :class:`RecipientResult` per recipient, in order.
        Recipients are split into several transactions when RCPTMAX is smaller
        (RFC 9422); connection failures make the undecided ones temporary.
        """
        caps = self.capabilities or Capabilities()
        plan = plan_delivery(caps, remote=self.remote, tls=self.tls is not None,
                             mailfrom=mailfrom, recipients=recipients, data=data,
                             smtputf8=smtputf8, eightbit=eightbit, binarymime=binarymime,
                             requiretls=requiretls, strict=strict, chunking=chunking, ret=ret,
                             envid=envid, auth=auth_identity)
        result = DeliveryResult(dsn_relayed=plan.dsn_relayed)
        decided: dict[int, RecipientResult] = dict(plan.refused)
        for tx in plan.transactions(data, caps.pipelining, reset=self.transactions > 0):
            reason = None
            if self.closed:
                reason = f"connection to {self.remote} closed before the transaction"
            elif caps.mailmax is not None and self.transactions >= caps.mailmax:
                # RFC 9422 §4.2: no more transactions on this session.
                reason = f"{self.remote} allows {caps.mailmax} transactions per session"
            if reason is not None:
                tx.abort(reason, Stage.LOCAL)
            else:
                await self._run(tx)
                result.transactions += 1
            decided.update(tx.results())
            result.replies.extend(tx.replies)
        result.recipients = [decided[i] for i in sorted(decided)]
        return result

    async def _run(self, tx: Transaction) -> None:
        try:
            if self._needs_rset and not tx.reset:
                reply = await self._command("RSET", Stage.RSET)
                if reply.code != 250:
                    raise ReplyError(f"{self.remote} refused RSET: {reply}", stage=Stage.RSET,
                                     reply=reply, command="RSET")
            self._needs_rset = True
            self.transactions += 1
            while not tx.done:
                send = tx.to_send()
                if send is not None:
                    await self._write(send)
                    continue
                stage, _command = tx.waiting_for()
                if stage in (Stage.DATA_END, Stage.BDAT):
                    timeout = self.timeouts.data_end
                elif stage is Stage.DATA:
                    timeout = self.timeouts.data_start
                else:
                    timeout = self.timeouts.command
                reply = await self._read_reply(stage, timeout)
                tx.receive(reply)
            self._needs_rset = tx.needs_reset
        except SMTPClientError as exc:
            if not self.closed:
                await self.close()
            if not tx.decided:
                # RFC 3463: X.5.0 for garbage from the server, X.4.2 "bad connection" else.
                tx.abort(str(exc), exc.stage,
                         status="4.5.0" if isinstance(exc, ProtocolError) else "4.4.2")
            # else: only optional replies were due (e.g. after 550 to MAIL the server
            # closed): the recipients keep the server's own answer.

    async def rset(self) -> Reply:
        """RSET (RFC 5321 §4.1.1.5)."""
        reply = await self._command("RSET", Stage.RSET)
        self._needs_rset = reply.code != 250
        return reply

    async def noop(self) -> Reply:
        return await self._command("NOOP", Stage.RSET)

    async def quit(self) -> None:
        """QUIT and close; errors are ignored (RFC 5321 §4.1.1.10)."""
        if not self.closed:
            with contextlib.suppress(SMTPClientError):
                await self._command("QUIT", Stage.QUIT, timeout=min(self.timeouts.command, 30))
        await self.close()

    async def close(self) -> None:
        """Close the connection without QUIT."""
        self.closed = True
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 5)

    # --- I/O -----------------------------------------------------------------------

    async def _command(self, line: str, stage: Stage, *, record: str | None = None,
                       timeout: float | None = None) -> Reply:
        await self._send_line(line)
        reply = await self._read_reply(stage, timeout or self.timeouts.command)
        if stage is not Stage.AUTH:
            self.replies.append(CommandReply(stage, record or line, reply))
        return reply

    async def _send_line(self, line: str) -> None:
        await self._write(Send((line + "\r\n").encode("utf-8"), (line,)))

    async def _write(self, send: Send) -> None:
        if self.closed:
            raise ConnectionLost(f"connection to {self.remote} is closed", stage=Stage.CONNECT)
        logging = self.transcript.enabled()  # else every line would be classified for nothing
        if logging:
            for cmd in send.commands:
                self.transcript.client(cmd)
        stage = send.expects[0][0] if send.expects else Stage.CONNECT
        if send.body and logging:
            self.transcript.data(log.Direction.CLIENT, send.body)
            if not send.commands:
                self.transcript.client(".")
        if send.data:
            self._put(send.data, stage)
        if send.stream is not None:
            await self._stream(send.stream, send.stuff, stage)
            if send.stuff and logging:
                self.transcript.client(".")
        elif send.body:
            await self._drain(stage)
        # Commands are not drained here: with PIPELINING the replies are read
        # while the transport sends (RFC 2920 §3.1: avoid a write/read deadlock).

    def _put(self, data: bytes, stage: Stage) -> None:
        try:
            self.writer.write(data)
        except (OSError, RuntimeError) as exc:
            self.closed = True
            self.writer.close()
            raise ConnectionLost(f"writing to {self.remote}: {exc}", stage=stage) from None

    async def _stream(self, source: MessageSource, stuff: bool, stage: Stage) -> None:
        """Send ``source``: its prefix, then its file range in chunks of CHUNK_SIZE,
        each written and drained before the next is read (bounded memory). The
        end of the data goes out with the last chunk (one write for most messages)."""
        stuffer = DotStuffer() if stuff else None
        file = source.file
        left = file.length if file is not None else 0
        handle = None
        try:
            chunk = source.prefix
            if file is not None:
                # The first chunk comes with the open, and goes out with the prefix.
                cached = _read_cached(file.path, file.offset, min(CHUNK_SIZE, left),
                                      whole=left <= CHUNK_SIZE)
                handle, first = cached if cached is not None else await self._read_file(
                    stage, _open_range, file.path, file.offset, min(CHUNK_SIZE, left))
                chunk = chunk + first if chunk else first
                left -= len(first)
            while True:
                if self.transcript.enabled():
                    self.transcript.data(log.Direction.CLIENT, chunk)
                out = stuffer.feed(chunk) if stuffer is not None else chunk
                last = left <= 0 or handle is None
                if last and stuffer is not None:
                    out += stuffer.finish()
                self._put(out, stage)
                await self._drain(stage)
                if last:
                    return
                assert handle is not None
                chunk = await self._read_file(stage, handle.read, min(CHUNK_SIZE, left))
                if not chunk:
                    # The file is shorter than promised (the BDAT size was sent already).
                    await self.close()
                    raise ConnectionLost(f"message file for {self.remote} ended {left}"
                                         " bytes early", stage=stage)
                left -= len(chunk)
        finally:
            if handle is not None:
                handle.close()

    async def _read_file(self, stage: Stage, fn: Callable[..., T], *args: object) -> T:
        """Run a file operation in a worker thread; an OSError ends the session."""
        try:
            return await asyncio.to_thread(fn, *args)
        except OSError as exc:
            await self.close()
            raise ConnectionLost(f"reading the message for {self.remote}: {exc}",
                                 stage=stage) from None

    async def _drain(self, stage: Stage) -> None:
        """Wait for the message data to go out; each data_block period must make progress."""
        transport = self.writer.transport
        last = transport.get_write_buffer_size()
        while True:
            try:
                if transport.get_write_buffer_size() == 0 and not transport.is_closing():
                    return  # all handed to the kernel already: nothing to wait for
                async with asyncio.timeout(self.timeouts.data_block):
                    await self.writer.drain()
                return
            except TimeoutError:
                now = transport.get_write_buffer_size()
                if now >= last:
                    await self.close()
                    raise SMTPTimeout(f"sending data to {self.remote}: no progress in "
                                      f"{self.timeouts.data_block:g}s", stage=stage) from None
                last = now
            except (OSError, RuntimeError) as exc:
                await self.close()
                raise ConnectionLost(f"sending data to {self.remote}: {exc}",
                                     stage=stage) from None

    async def _read_reply(self, stage: Stage, timeout: float) -> Reply:
        deadline = time.monotonic() + timeout
        while not self._replies:
            if self.closed:
                raise ConnectionLost(f"connection to {self.remote} is closed", stage=stage)
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                # asyncio.timeout, not wait_for: no extra task per read (3.11).
                async with asyncio.timeout(remaining):
                    data = await self.reader.read(READ_SIZE)
            except TimeoutError:
                await self.close()
                raise SMTPTimeout(f"no reply from {self.remote} to {stage} within "
                                  f"{timeout:g}s", stage=stage) from None
            except (OSError, ssl.SSLError, EOFError) as exc:
                await self.close()
                raise ConnectionLost(f"reading from {self.remote} ({stage}): {exc}",
                                     stage=stage) from None
            if not data:
                await self.close()
                raise ConnectionLost(f"{self.remote} closed the connection while a reply to "
                                     f"{stage} was due", stage=stage)
            try:
                replies = self._parser.feed(data)
            except MalformedReply as exc:
                await self.close()
                raise ProtocolError(f"{self.remote} sent a malformed reply: {exc}",
                                    stage=stage) from None
            logging = self.transcript.enabled()
            for reply in replies:
                if logging:
                    for raw in reply.to_bytes().split(b"\r\n")[:-1]:
                        self.transcript.server(raw)
                self._replies.append(reply)
        return self._replies.popleft()

