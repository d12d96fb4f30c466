"""One SMTP connection: the asyncio driver around :class:`kittiwake.smtp.ServerSession`.

The protocol object decides syntax and sequencing; this driver decides
policy (who may relay, which recipients exist, rate limits, authentication)
and does the I/O: TLS, reading with timeouts, delivering, writing replies.
Every line is logged through an SMTP transcript, so credentials and message
data show only at traceauth and tracedata. An unexpected exception ends this
connection only, logged and counted in ``kittiwake_panic_total{origin="smtpserver"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import replace
from typing import Any

from kittiwake import log, metrics
from kittiwake.config.lookup import AccountRecipient, AliasRecipient
from kittiwake.listener import handshake_failed, starttls
from kittiwake.message.received import address_literal
from kittiwake.sasl import connection_channel_bindings
from kittiwake.smtp import (
    Address,
    Auth,
    AuthAborted,
    AuthResponse,
    BdatEnd,
    Close,
    DataChunk,
    DataEnd,
    DataStart,
    Ehlo,
    Helo,
    MailFrom,
    MessageRejected,
    Quit,
    RcptTo,
    Reply,
    Reset,
    ServerConfig,
    ServerSession,
    StartTLS,
)
from kittiwake.smtpserver import incoming, localserve_rules, pipeline, submission
from kittiwake.smtpserver import metrics as smtp_metrics
from kittiwake.smtpserver.auth import AuthStep, Exchange
from kittiwake.smtpserver.context import ServerContext
from kittiwake.smtpserver.deliver import LocalDelivery
from kittiwake.smtpserver.pipeline import Transaction
from kittiwake.smtpserver.spool import HeaderTooLarge, Spool, reserve_for

READ_SIZE = 65536
AUTH_MECHANISMS = ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-1",
                   "CRAM-MD5", "PLAIN", "LOGIN")

MESSAGES = metrics.counter("smtpserver_messages", "Messages received, by service and result",
                           {"service": ("smtp", "submission", "submissions"),
                            "result": ("delivered", "rejected", "failed")})
LOGINS_LIMITED = metrics.counter("smtpserver_logins_limited",
                                 "AUTH attempts the login limiter delayed or refused",
                                 {"result": ("delayed", "refused")})


def session_config(ctx: ServerContext, kind: str) -> ServerConfig:
    """What a listener of this kind offers (RFC 6409 for submission)."""
    is_submission = kind in ("submission", "submissions")
    listener = ctx.listener
    no_starttls = bool(listener and kind == "smtp" and listener.smtp.no_starttls)
    require_tls = bool(listener and kind == "smtp" and listener.smtp.require_starttls)
    plaintext_auth = ctx.localserve or bool(
        listener and kind == "submission" and listener.submission.no_require_starttls)
    starttls = ctx.tls_context is not None and ctx.tls_ready() and kind != "submissions" \
        and not no_starttls
    key = (ctx.hostname, ctx.limits.max_message_size, ctx.limits.max_recipients, kind,
           starttls, plaintext_auth, require_tls, ctx.localserve)
    config = _CONFIGS.get(key)
    if config is not None:
        return config
    mechanisms = AUTH_MECHANISMS if (is_submission or ctx.localserve) else ()
    if kind != "submissions":
        # -PLUS needs TLS channel binding; they are offered again once TLS is on.
        mechanisms = tuple(m for m in mechanisms if not m.endswith("-PLUS"))
    config = ServerConfig(
        hostname=ctx.hostname,
        max_message_size=ctx.limits.max_message_size,
        max_recipients=ctx.limits.max_recipients,
        starttls=starttls,
        auth_mechanisms=mechanisms,
        auth_requires_tls=not plaintext_auth,
        require_auth=is_submission,
        require_tls=require_tls,
        dsn=True,  # RFC 3461: parameters are carried to the queue and its notices
    )
    if len(_CONFIGS) >= 64:  # a new hostname or limit after a reload: start afresh
        _CONFIGS.clear()
    _CONFIGS[key] = config
    return config


# ServerConfig is frozen: one per distinct set of inputs, not one per connection.
_CONFIGS: dict[tuple[Any, ...], ServerConfig] = {}
_LOGGER = log.get_logger("smtpserver")


class ReadDeadline:
    """The read timeouts of one connection (RFC 5321 §4.5.3.2) with one timer, not one
    per read.

    :meth:`reading` is called before each read with its timeout, :meth:`idle` after
    it. The timer is armed once and, when it fires early (the deadline moved on
    with the reads since), re-armed for the deadline then current; it fires for
    real only while a read is waiting past its deadline, and then ends that read
    with :class:`TimeoutError` (``StreamReader.set_exception``), as a timeout
    around the read would. While the connection works on a command no read is
    waiting and nothing fires.
    """

    __slots__ = ("_armed", "_deadline", "_handle", "_loop", "_reader", "_reading")

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self._loop = asyncio.get_running_loop()
        self._deadline = 0.0
        self._armed = 0.0  # when the timer fires
        self._handle: asyncio.TimerHandle | None = None
        self._reading = False

    def reading(self, timeout: float) -> None:
        self._deadline = deadline = self._loop.time() + timeout
        self._reading = True
        if self._handle is None or deadline < self._armed:
            self._arm(deadline)

    def idle(self) -> None:
        self._reading = False

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _arm(self, when: float) -> None:
        self.cancel()
        self._armed = when
        self._handle = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._handle = None
        if not self._reading:
            return  # armed again by the next read
        if self._loop.time() < self._deadline:
            self._arm(self._deadline)
            return
        self._reader.set_exception(TimeoutError("read timed out"))


class SMTPConnection:
    """Drives one accepted TCP connection."""

    def __init__(self, ctx: ServerContext, kind: str, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.ctx = ctx
        self.kind = kind
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername") or ("127.0.0.1", 0)
        self.ip = str(peer[0])
        self.cid = log.new_connection_id()
        self.logger = _LOGGER
        self.transcript = log.SMTPTranscript(self.logger)
        self.session = ServerSession(session_config(ctx, kind), tls=kind == "submissions")
        self.account: str | None = None
        self.sasl: Exchange | None = None  # the AUTH exchange in progress
        self.sasl_success: AuthStep | None = None  # sent SCRAM's final data, awaiting ""
        self.tx = Transaction()
        self.tls_version: str | None = None
        self.tls_cipher: str | None = None
        self.channel_bindings: tuple[Any, ...] = ()
        self.dnsbl_checked = False
        self.bdat_left = 0  # bytes of a BDAT chunk still to come (for the transcript)
        self.blocklisted: Reply | None = None
        self.hang_for: float | None = None  # localserve "timeout": stop answering this long
        self.auth_mechanism = ""  # of the AUTH in progress, for the metrics
        self.auth_requested = ""  # the mechanism as the client named it
        if kind == "submissions":
            self._note_tls()

    # --- I/O ---------------------------------------------------------------

    def _served_certificate(self, ssl_object: ssl.SSLObject) -> bytes | None:
        served = self.ctx.served_certificate
        return served(ssl_object) if served is not None else None

    def _note_tls(self) -> None:
        """Record TLS details; decide which channel bindings SCRAM-PLUS can use.

        TLS 1.3 needs tls-exporter (RFC 9266), which Python's ssl cannot
        produce; tls-unique is unsafe there. So -PLUS is offered only on
        TLS 1.2 (tls-unique, RFC 5929); on TLS 1.3 clients use plain SCRAM
        with the "y" flag, which is then correct (RFC 5802 §6).
        """
        ssl_object = self.writer.get_extra_info("ssl_object")
        if ssl_object is None:
            return
        self.tls_version = ssl_object.version()
        cipher = ssl_object.cipher()
        self.tls_cipher = cipher[0] if cipher else None
        smtp_metrics.TLS_HANDSHAKES.labels(version=self.tls_version or "unknown",
                                           cipher=self.tls_cipher or "unknown").inc()
        self.channel_bindings = () if self.tls_version == "TLSv1.3" else \
            connection_channel_bindings(ssl_object,
                                        server_certificate_der=self._served_certificate(ssl_object))
        config = self.session.config
        if not self.channel_bindings:
            self.session.config = replace(config, auth_mechanisms=tuple(
                m for m in config.auth_mechanisms if not m.endswith("-PLUS")))
        elif config.auth_mechanisms:
            self.session.config = replace(config, auth_mechanisms=AUTH_MECHANISMS)

    async def _flush(self) -> None:
        smtp_metrics.count_replies(self.session.replies)
        out = self.session.data_to_send()
        if out:
            if self.transcript.enabled():
                for line in out.split(b"\r\n")[:-1]:
                    self.transcript.server(line.decode("utf-8", "replace"))
            self.writer.write(out)
            await self.writer.drain()

    async def run(self) -> None:
        with log.bind(cid=self.cid, service=self.kind, ip=self.ip):
            try:
                await self._run()
            except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, TimeoutError):
                self.logger.debug("connection ended")
            except asyncio.CancelledError:
                # The server is shutting down and the grace time is over: say so
                # (421, RFC 5321 §3.8) and end this connection's task normally, so
                # that asyncio does not log the cancellation as an error.
                self.logger.info("connection closed by shutdown")
                with contextlib.suppress(Exception):
                    self.session.close()
                    await asyncio.wait_for(self._flush(), 1)
            except Exception as exc:
                metrics.panic("smtpserver", exc, msg="smtp connection failed")
                with contextlib.suppress(Exception):
                    self.writer.write(Reply(421, "4.3.0", ["internal error, closing"]).to_bytes())
            finally:
                self._auth_drop()
                self.tx.discard()  # a message cut off by the connection's end
                self.writer.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.writer.wait_closed(), 2)

    async def _run(self) -> None:
        if self.logger.is_enabled(log.INFO):  # the port costs a getsockname call
            # None when the client is gone already (a reset before the greeting).
            sockname = self.writer.get_extra_info("sockname")
            self.logger.info("connection", port=sockname[1] if sockname else None)
        if not self.ctx.localserve and not self.ctx.connection_rate.take(self.ip):
            smtp_metrics.CONNECTIONS.labels(service=self.kind, result="refused").inc()
            smtp_metrics.RATE_LIMITED.labels(kind="connection-rate").inc()
            self.session.greet(Reply(421, "4.7.0", ["too many connections from your network,"
                                                    " try again later"]))
            await self._flush()
            return
        metrics.child(smtp_metrics.CONNECTIONS, self.kind, "accepted").inc()
        self.session.greet()
        await self._flush()
        deadline = ReadDeadline(self.reader)
        try:
            await self._serve(deadline)
        finally:
            deadline.cancel()

    async def _serve(self, deadline: ReadDeadline) -> None:
        read = self.reader.read
        while not self.session.closed:
            limits = self.ctx.limits
            deadline.reading(limits.data_timeout if self.session.in_transaction
                             else limits.command_timeout)
            try:
                data = await read(READ_SIZE)
            except TimeoutError:
                self.session.close(Reply(421, "4.4.2", ["timeout, closing connection"]))
                with contextlib.suppress(TimeoutError):  # drain re-raises the reader's error
                    await self._flush()
                return
            finally:
                deadline.idle()
            if data:
                self._log_client(data)
                events = self.session.receive(data)
            else:
                events = self.session.receive_eof()
            while events:
                for event in events:
                    if await self._handle(event):
                        await self._flush()
                        return
                events = self.session.receive()
            await self._flush()
            if not data:
                return

    def _log_client(self, data: bytes) -> None:
        """Log what the client sent; message data shows only at tracedata.

        DATA bodies follow a 354 (the transcript counts them itself); a BDAT
        chunk follows its command in the same read, so its size is tracked here.
        """
        if not self.transcript.enabled():
            return
        if self.session.state.name == "DATA":
            self.transcript.data("C", data)
            return
        pos = 0
        while pos < len(data):
            if self.bdat_left:
                chunk = data[pos:pos + self.bdat_left]
                self.transcript.data("C", chunk)
                self.bdat_left -= len(chunk)
                pos += len(chunk)
                continue
            end = data.find(b"\r\n", pos)
            line = data[pos:] if end < 0 else data[pos:end]
            pos = len(data) if end < 0 else end + 2
            if line:
                self.transcript.client(line.decode("utf-8", "replace"))
                words = line.split()
                if len(words) >= 2 and words[0].upper() == b"BDAT" and words[1].isdigit():
                    self.bdat_left = int(words[1])

    # --- events ------------------------------------------------------------

    async def _handle(self, event: Any) -> bool:
        """Answer one event; True when the connection should end."""
        ended = await self._answer(event)
        if self.hang_for is not None:
            await self._flush()  # replies to the commands before this one
            await self._hang(self.hang_for)
            return True
        return ended

    async def _hang(self, timeout: float) -> None:
        """Do not answer (localserve "timeout"): read and drop input until the client
        gives up and closes, or ``timeout`` passes (then 421, as for an idle client)."""
        self.logger.info("localserve: not answering, as the address asked", timeout=timeout)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            try:
                data = await asyncio.wait_for(self.reader.read(READ_SIZE), left)
            except TimeoutError:
                break
            if not data:
                self.logger.info("localserve: client gave up waiting")
                self.session.receive_eof()
                return
            self._log_client(data)
        self.session.close(Reply(421, "4.4.2", ["timeout, closing connection"]))

    async def _answer(self, event: Any) -> bool:
        """Act on one event; True when the connection should end."""
        s = self.session
        match event:
            case Ehlo() | Helo():
                s.accept()
            case StartTLS():
                await self._starttls()
            case Auth(mechanism=mech, initial=initial):
                await self._auth_start(mech, initial)
            case AuthResponse(data=data):
                await self._auth_step(data)
            case AuthAborted():
                self._auth_drop()
            case MailFrom(path=path, params=params):
                await self._dnsbl()
                await self._mail_from(path, params)
            case RcptTo(path=path, params=params):
                await self._rcpt_to(path)
                if path is not None:
                    self.tx.rcpt_params[str(path)] = params
            case DataStart():
                self._new_spool()
                s.accept()
            case DataChunk(data=chunk):
                spool = self.tx.spool
                if spool is None:  # the first BDAT chunk
                    spool = self._new_spool()
                spool.write(chunk)
                if spool.needs_file:  # a big message: to its file from now on
                    await asyncio.to_thread(spool.open)
            case MessageRejected():
                self._reset()
                metrics.child(MESSAGES, self.kind, "rejected").inc()
            case DataEnd():
                await self._message()
            case BdatEnd(last=last):
                if last:
                    await self._message()
                else:
                    s.accept()
            case Reset():
                self._reset()
            case Quit() | Close():
                return True
            case _ if getattr(event, "needs_reply", False):
                s.accept()
        return False

    async def _starttls(self) -> None:
        if self.ctx.tls_context is None or not self.ctx.tls_ready():
            self.session.reject(Reply(454, "4.7.0", ["TLS not available"]))
            return
        self.session.accept()
        await self._flush()
        try:
            await starttls(self.reader, self.writer, self.ctx.tls_context)
        except (ssl.SSLError, ConnectionError, OSError) as exc:
            self.logger.info("tls handshake failed", error=str(exc),
                             reason=handshake_failed(self.kind, exc))
            raise ConnectionError("TLS handshake failed") from None
        self.session.tls_started()
        self._note_tls()
        self.logger.debug("tls started", version=self.tls_version, cipher=self.tls_cipher)

    # --- AUTH (RFC 4954) -----------------------------------------------------

    async def _auth_start(self, mechanism: str, initial: bytes | None) -> None:
        self.auth_mechanism = smtp_metrics.mechanism_label(mechanism)
        self.auth_requested = mechanism
        self._auth_drop()
        self.sasl = self.ctx.auth_exchange(self.ip, mechanism, self.channel_bindings)
        await self._auth_answer(await self.sasl.start(initial))

    async def _auth_step(self, data: bytes) -> None:
        if self.sasl_success is not None:
            # RFC 4954 §4: the client answers the final server data with an empty line.
            success, self.sasl_success = self.sasl_success, None
            self._auth_ok(success)
            return
        if self.sasl is None:
            self.session.reject(Reply(503, "5.5.1", ["no authentication in progress"]))
            return
        await self._auth_answer(await self.sasl.step(data))

    def _auth_drop(self) -> None:
        """End the exchange in progress, if any (AUTH aborted, connection closed)."""
        if self.sasl is not None:
            self.sasl.close()
            self.sasl = None

    async def _auth_answer(self, step: AuthStep) -> None:
        """Answer one step of the exchange (:mod:`.auth`: the SASL mechanism and the
        login limiter's verdict, in this process or the server's)."""
        if step.final:
            self.sasl = None
        mechanism = self.auth_mechanism or "other"
        if step.delay > 0 and step.kind != "refused":
            LOGINS_LIMITED.labels(result="delayed").inc()
        match step.kind:
            case "challenge":
                self.session.auth_challenge(step.data)
            case "unsupported":
                smtp_metrics.AUTH.labels(mechanism=mechanism, result="unsupported").inc()
                self.session.reject(Reply(504, "5.5.4", [
                    f"mechanism {self.auth_requested} not supported"]))
            case "unavailable":
                self.session.reject(Reply(454, "4.7.0", ["temporary authentication failure,"
                                                         " try again later"]))
            case "malformed":
                smtp_metrics.AUTH.labels(mechanism=mechanism, result="malformed").inc()
                self.session.reject(Reply(501, "5.5.2", ["malformed authentication data"]))
            case "refused":
                LOGINS_LIMITED.labels(result="refused").inc()
                smtp_metrics.RATE_LIMITED.labels(kind="login").inc()
                smtp_metrics.AUTH.labels(mechanism=mechanism, result="refused").inc()
                self.logger.info("login refused: too many failures", user=step.username,
                                 limit=step.reason, delay=round(step.delay, 2))
                self.session.reject(Reply(535, "5.7.8", ["authentication failed"]))
            case "failed":
                smtp_metrics.AUTH.labels(mechanism=mechanism, result="badcreds").inc()
                self.logger.info("authentication failed", user=step.username,
                                 reason=step.reason)
                self.session.reject(Reply(535, "5.7.8", ["authentication failed"]))
            case "ok":
                smtp_metrics.AUTH.labels(mechanism=mechanism, result="ok").inc()
                if step.data:
                    self.sasl_success = step
                    self.session.auth_challenge(step.data)
                else:
                    self._auth_ok(step)

    def _auth_ok(self, success: AuthStep) -> None:
        self.sasl = None
        self.account = success.account
        self.logger.info("authenticated", account=self.account or "",
                         mechanism=success.mechanism)
        self.session.accept()

    # --- MAIL and RCPT -------------------------------------------------------

    async def _mail_from(self, path: Address | None, params: Any) -> None:
        mailfrom = str(path) if path is not None else ""
        if self.ctx.localserve and path is not None:
            trig = localserve_rules.trigger(path.localpart)
            if trig and trig.stage == "mailfrom":
                self._trigger(trig.reply, self.ctx.limits.command_timeout)
                return
        if self.blocklisted is not None:
            self.session.reject(self.blocklisted)
            return
        if self.account is not None and not self.ctx.localserve and \
                self.kind in ("submission", "submissions"):
            refusal = submission.check_mailfrom(self.ctx, self.account, mailfrom)
            if refusal is not None:
                self.session.reject(refusal)
                return
        if not self.ctx.localserve and self.kind == "smtp" and \
                not await self.ctx.message_allowed(self.ip):
            smtp_metrics.RATE_LIMITED.labels(kind="message-rate").inc()
            self.session.reject(Reply(452, "4.7.0", ["too many messages from your network,"
                                                     " try again later"]))
            return
        self.tx = Transaction(mailfrom=mailfrom, smtputf8=params.smtputf8,
                              requiretls=params.requiretls, ret=params.ret,
                              envid=params.envid)
        self.session.accept()

    async def _dnsbl(self) -> None:
        """RFC 5782: refuse mail from addresses listed in the configured block lists."""
        zones = self.ctx.listener.smtp.dnsbl_zones if self.ctx.listener else []
        if self.kind != "smtp" or not zones or self.dnsbl_checked:
            return
        self.dnsbl_checked = True
        from kittiwake import dnsbl

        for result in await dnsbl.check_all(self.ctx.resolver, self.ip, list(zones)):
            if result.status is dnsbl.Status.FAIL:
                self.logger.info("dnsbl listed", zone=result.zone, reason=result.reason)
                smtp_metrics.DNSBL_HITS.labels(zone=result.zone).inc()
                self.blocklisted = Reply(554, "5.7.1", [
                    f"your address {self.ip} is listed in {result.zone}: {result.reason}"[:400]])
                return

    def _trigger(self, reply: Reply | None, timeout: float) -> None:
        """Answer with a localserve failure, or (None) stop answering for ``timeout``."""
        if reply is None:
            self.hang_for = timeout
            return
        self.session.reject(reply)

    async def _rcpt_to(self, path: Address | None) -> None:
        s = self.session
        if path is None:
            s.reject(Reply(501, "5.1.3", ["recipient required"]))
            return
        address = str(path)
        if self.ctx.localserve:
            trig = localserve_rules.trigger(path.localpart)
            if trig and trig.stage == "rcptto":
                self._trigger(trig.reply, self.ctx.limits.command_timeout)
                return
            if self.kind in ("submission", "submissions"):
                # Submitted mail goes through the queue, which delivers it back to our
                # SMTP port: failure addresses then exercise the queue and its DSNs.
                self.tx.remote.append(address)
                self.tx.rcpts.append(address)
                s.accept()
                return
            if trig and trig.stage == "data" and self.tx.data_trigger is False:
                self.tx.data_trigger = trig.reply
            account = next(iter(self.ctx.domains.accounts), None)
            if account is None:
                s.reject(Reply(550, "5.1.1", ["no account configured"]))
                return
            dest = next(iter(self.ctx.domains.accounts[account].destinations.values()))
            self.tx.local.append(LocalDelivery(address, AccountRecipient(account, address, dest)))
            self.tx.rcpts.append(address)
            s.accept()
            return
        if self.tx.mailfrom == "" and self.tx.rcpts:
            # A null reverse-path is for notifications to one recipient (RFC 5321 §4.5.5).
            s.reject(Reply(550, "5.5.3", ["only one recipient for a null sender"]))
            return
        found = self.ctx.index.lookup(path.localpart, path.domain) if path.domain else None
        is_postmaster = path.is_postmaster or (
            path.localpart.lower() == "postmaster" and bool(path.domain)
            and self.ctx.index.is_local_domain(path.domain))
        if found is None and is_postmaster:
            found = self._postmaster(address)
        if isinstance(found, AccountRecipient):
            self.tx.local.append(LocalDelivery(address, found))
            fate = f"account {found.account}"
        elif isinstance(found, AliasRecipient):
            if not found.post_public and self.kind == "smtp":
                allowed = {a.lower() for a in found.member_addresses}
                if self.tx.mailfrom.lower() not in allowed:
                    self._refuse(address, Reply(550, "5.7.1",
                                                ["only members may post to this list"]))
                    return
            if not found.members:
                # Defence in depth: config test refuses aliases without local members;
                # an alias that expands to no account must never get a 250.
                self._refuse(address, Reply(550, "5.1.1", [f"no such user here: {address}"]),
                             why=f"alias {found.alias} has no local member")
                return
            self.tx.local.extend(LocalDelivery(address, m) for m in found.members)
            fate = "alias " + ",".join(m.account for m in found.members)
        elif self.kind in ("submission", "submissions") and self.account is not None:
            if path.domain and self.ctx.index.is_local_domain(path.domain):
                self._refuse(address, Reply(550, "5.1.1", [f"no such user here: {address}"]))
                return
            self.tx.remote.append(address)
            fate = "queue"
        elif path.domain and self.ctx.index.is_local_domain(path.domain):
            self._refuse(address, Reply(550, "5.1.1", [f"no such user here: {address}"]))
            return
        else:
            # No open relay: unauthenticated mail is only for our domains.
            self._refuse(address, Reply(550, "5.7.1", ["relaying denied: we accept mail only"
                                                       " for our own domains"]))
            return
        self.logger.info("rcpt accepted", rcpt=address, to=fate)
        self.tx.rcpts.append(address)
        s.accept()

    def _refuse(self, address: str, reply: Reply, why: str = "") -> None:
        text = " ".join(x for x in (reply.enhanced, *reply.lines) if x)
        self.logger.info("rcpt refused", rcpt=address, code=reply.code, reason=why or text)
        self.session.reject(reply)

    def _postmaster(self, address: str) -> AccountRecipient | None:
        """RFC 5321 §4.5.1: postmaster@ our domains, and bare <postmaster>, must be accepted."""
        from kittiwake.config.domains import Destination
        from kittiwake.config.load import postmaster_account

        name = postmaster_account(self.ctx.postmaster_account, self.ctx.domains)
        if name is None:
            return None
        destinations = self.ctx.domains.accounts[name].destinations
        destination = next((d for key, d in destinations.items() if not key.startswith("@")),
                           None) or Destination()
        return AccountRecipient(name, address, destination)

    # --- the message ---------------------------------------------------------

    def _conn(self) -> incoming.Connection:
        return incoming.Connection(
            ip=self.ip, helo=self.session.helo_name or address_literal(self.ip),
            hostname=self.ctx.hostname, tls_version=self.tls_version,
            tls_cipher=self.tls_cipher, authenticated=self.session.authenticated,
            smtputf8=self.tx.smtputf8, esmtp=self.session.esmtp, session_id=self.cid)

    def _sender(self) -> pipeline.Sender:
        return pipeline.Sender(self.kind, self.account, self._conn())

    def _new_spool(self) -> Spool:
        """A spool for the message; its file is created in a worker thread (creating a
        file waits for the file system's journal when the disk is busy): when the
        message outgrows the spool's memory buffer, or by ``finish``."""
        self.tx.discard()
        sender = self._sender()
        spool = self.tx.spool = Spool(
            self.ctx.spool_directory,
            lambda head: pipeline.body_hashes_needed(self.ctx, sender, head), open_file=False)
        return spool

    def _reset(self) -> None:
        self.tx.discard()
        self.tx = Transaction()

    async def _message(self) -> None:
        tx = self.tx
        if tx.data_trigger is None:  # localserve "timeout" after the data
            self._reset()
            self._trigger(None, self.ctx.limits.data_timeout)
            return
        spool = tx.spool or self._new_spool()  # none: BDAT 0 LAST, an empty message
        tx.spool = None
        try:
            message = spool.finish_in_memory(reserve_for(self.ctx.spool_directory)) or \
                await asyncio.to_thread(spool.finish)
        except HeaderTooLarge:
            reply = Reply(552, "5.3.4", ["message header section too large"])
        else:
            try:
                with metrics.child(smtp_metrics.DELIVERY_SECONDS, self.kind).time():
                    reply = await pipeline.process(self.ctx, self._sender(), tx, message,
                                                   self.logger)
            finally:
                message.discard_soon()  # the store and the queue hold their own links
        self._reset()
        if reply.code < 400:
            metrics.child(MESSAGES, self.kind, "delivered").inc()
            smtp_metrics.TODAY.add(self.kind)
            self.session.accept(reply.lines[0] if reply.lines else None)
        else:
            metrics.child(MESSAGES, self.kind,
                          "rejected" if reply.code >= 500 else "failed").inc()
            self.session.reject(reply)
