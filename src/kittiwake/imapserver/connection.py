"""One IMAP connection: the asyncio driver around :class:`kittiwake.imap.ServerSession`.

The protocol core frames commands and literals and keeps the connection
state; this driver does the I/O (TLS, reads with timeouts, streaming file
literals), authenticates, and answers each command from the store
(handlers in ``mailboxes``, ``messages``, ``append``).

Invariants every handler keeps (mox's list, adapted):

1. Store work (SQLite, fsync, parsing) runs in worker threads through the
   store's async API; nothing here blocks the event loop.
2. Changes are broadcast by the store only after commit; a session learns
   of them from its subscription and tells the client through the
   selected-mailbox view, which decides when EXPUNGE may be sent
   (``view.py``).
3. An OK to APPEND is sent only after the message file and its row are
   durable (the store's ``append`` returns then).
4. An exception in one session is logged with its cid, counted in
   ``kittiwake_panic_total{origin="imapserver"}``, answered with BYE, and
   no other session notices.
5. Transcripts go through :class:`kittiwake.log.IMAPTranscript`, so LOGIN
   and AUTHENTICATE arguments show only at traceauth, message data only at
   tracedata.
6. Changes reach the client only through :meth:`IMAPConnection.announce`
   (the selected mailbox's view) and, after NOTIFY SET, ``notify.tell`` (all
   else); both run between commands, at a command's end or during IDLE,
   never in the middle of a response.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
import zlib
from dataclasses import replace
from typing import Any

from kittiwake import log, metrics
from kittiwake.imap import commands as c
from kittiwake.imap import responses as r
from kittiwake.imap.codes import Code
from kittiwake.imap.events import (
    AppendData,
    AppendEnd,
    AppendStart,
    AuthAborted,
    AuthResponse,
    Closed,
    CommandReceived,
    Event,
    IdleDone,
    Rejected,
)
from kittiwake.imap.sections import literal_safe
from kittiwake.imap.server import ServerConfig, ServerSession, State
from kittiwake.imap.values import FileLiteral
from kittiwake.imapserver import append, mailboxes, messages, notify
from kittiwake.imapserver import metrics as m
from kittiwake.imapserver.context import AUTH_MECHANISMS, IMAPContext
from kittiwake.imapserver.state import Answer, HandlerError, PendingAppend, Selected
from kittiwake.listener import handshake_failed, starttls
from kittiwake.sasl import (
    Challenge,
    Failure,
    FailureReason,
    ServerOptions,
    Success,
    connection_channel_bindings,
    new_server,
)
from kittiwake.store import Account, StoreError, Subscription
from kittiwake.store.model import MailboxNotFound, OverQuota

READ_SIZE = 65536
FILE_CHUNK = 256 * 1024
WRITE_VIEW = 64 * 1024  # writes larger than this are handed over as a memoryview

# What this server implements beyond IMAP4rev1/rev2 (each in its handler).
EXTENSIONS = (
    "ENABLE", "IDLE", "SASL-IR", "BINARY", "UNSELECT", "UIDPLUS", "ESEARCH", "SEARCHRES",
    "MOVE", "UTF8=ACCEPT", "LIST-EXTENDED", "LIST-STATUS", "SPECIAL-USE", "CREATE-SPECIAL-USE",
    "CHILDREN", "NAMESPACE", "ID", "MULTIAPPEND", "CONDSTORE", "QRESYNC", "STATUS=SIZE",
    "QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE", "SAVEDATE", "WITHIN", "PREVIEW",
    "SORT", "SORT=DISPLAY", "ESORT", "THREAD=REFERENCES", "THREAD=ORDEREDSUBJECT", "OBJECTID",
    "COMPRESS=DEFLATE", "METADATA", "METADATA-SERVER", "REPLACE", "INPROGRESS", "UIDONLY",
    "NOTIFY",
)

log_ = log.get_logger("imapserver")


def session_config(ctx: IMAPContext, kind: str) -> ServerConfig:
    tls_capable = ctx.tls_context is not None and ctx.tls_ready()
    return ServerConfig(
        ctx.hostname, greeting_text="kittiwake IMAP4rev2 ready",
        max_append=ctx.limits.max_append, max_bad_commands=ctx.limits.bad_commands,
        starttls=tls_capable and kind == "imap",
        auth_mechanisms=tuple(m for m in AUTH_MECHANISMS if not m.endswith("-PLUS")),
        login_requires_tls=not ctx.plaintext_login, extensions=EXTENSIONS)


class IMAPConnection:
    """Drives one accepted TCP connection."""

    def __init__(self, ctx: IMAPContext, kind: str, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, preauth: str | None = None) -> None:
        self.ctx = ctx
        self.preauth = preauth  # an account already authenticated (PREAUTH greeting)
        self.kind = kind
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername") or ("127.0.0.1", 0)
        self.ip = str(peer[0])
        self.cid = log.new_connection_id()
        self.logger = log_
        self.transcript = log.IMAPTranscript(self.logger)
        self.session = ServerSession(session_config(ctx, kind), tls=kind == "imaps")
        self.account: Account | None = None
        self.account_name = ""
        self.sub: Subscription | None = None
        self.selected: Selected | None = None
        self.appends: dict[str, PendingAppend] = {}
        self.sasl: Any = None
        self.sasl_success: Success | None = None
        self.channel_bindings: tuple[Any, ...] = ()
        self.idle_tag: str | None = None
        self.notify: notify.NotifyState | None = None  # after NOTIFY SET (RFC 5465)
        self.saved_uids: list[int] = []  # SEARCHRES "$" (RFC 5182), as UIDs
        self._read_task: asyncio.Task[bytes] | None = None
        if kind == "imaps":
            self._note_tls()

    # --- I/O ---------------------------------------------------------------

    def _note_tls(self) -> None:
        """Channel bindings for SCRAM-PLUS: tls-unique on TLS 1.2 only (see smtpserver)."""
        ssl_object = self.writer.get_extra_info("ssl_object")
        if ssl_object is None:
            return
        version = ssl_object.version()
        self.channel_bindings = () if version == "TLSv1.3" else \
            connection_channel_bindings(
                ssl_object, server_certificate_der=(self.ctx.served_certificate(ssl_object)
                                                    if self.ctx.served_certificate else None))
        if self.channel_bindings:
            self.session.config = replace(self.session.config, auth_mechanisms=AUTH_MECHANISMS)

    async def flush(self) -> None:
        """Write what the session has queued; file literals stream from their files."""
        try:
            await self._flush()
        finally:
            if self._quickack:
                self._set_quickack()  # after the "+" went out (see quick_ack)

    async def _flush(self) -> None:
        pieces = self.session.data_to_send()
        run: list[bytes] = []  # consecutive runs of octets: handed over together
        for piece in pieces:
            if not isinstance(piece, FileLiteral):
                run.append(piece)
                continue
            if run:
                self._write_run(run)
                run = []
                await self.writer.drain()
            await self._copy_file(piece)
            await self.writer.drain()
        if run:
            self._write_run(run)
            await self.writer.drain()
        if pieces and self._deflate is not None:
            # RFC 4978 §4: each response is flushed so the client can act on it.
            self.writer.write(self._deflate.flush(zlib.Z_SYNC_FLUSH))
            await self.writer.drain()

    def _write_run(self, run: list[bytes]) -> None:
        """Write runs of octets; uncompressed, in one call (a FETCH of many bodies
        leaves each body a piece of its own: no copy to join them)."""
        if self.transcript.enabled():
            for piece in run:
                self.transcript.feed(log.Direction.SERVER, piece)
        if self._deflate is not None or len(run) == 1:
            for piece in run:
                self._write(piece)
        else:
            self.writer.writelines(run)

    def _write(self, data: bytes) -> None:
        if self._deflate is not None:
            data = self._deflate.compress(data)
        # A view: what the socket does not take at once is copied into the transport's
        # buffer once (a bytes object would first be sliced, a second copy).
        self.writer.write(memoryview(data) if len(data) > WRITE_VIEW else data)

    async def _copy_file(self, span: FileLiteral) -> None:
        """Copy a span of a message file to the client in chunks (bounded memory).

        A non-binary literal must not contain NUL (RFC 9051 §4.3): such octets
        are replaced (as Dovecot does), which keeps the announced length.
        """
        def read(offset: int, n: int) -> bytes:
            with open(span.path, "rb") as f:
                f.seek(offset)
                return f.read(n)

        done = 0
        while done < span.length:
            n = min(FILE_CHUNK, span.length - done)
            try:
                chunk = await asyncio.to_thread(read, span.offset + done, n)
            except OSError:
                chunk = b""
            if len(chunk) < n:  # the file went away (expunged meanwhile): keep the framing
                chunk += b" " * (n - len(chunk))
            if not span.binary:
                chunk = literal_safe(chunk)
            if self.transcript.enabled():
                self.transcript.feed(log.Direction.SERVER, chunk)
            self._write(chunk)
            await self.writer.drain()
            done += n

    async def _read(self) -> bytes | None:
        """The next input (inflated after COMPRESS, RFC 4978), or None at EOF."""
        if self._pending_input:
            data, self._pending_input = self._pending_input, b""
            return data
        while True:
            raw = await self._read_raw()
            if raw is None or self._inflate is None:
                return raw
            try:
                data = self._inflate.decompress(raw)
            except zlib.error:
                raise ConnectionError("bad DEFLATE data from the client") from None
            if data:
                return data

    def start_compression(self) -> None:
        """COMPRESS DEFLATE accepted (RFC 4978 §3): raw DEFLATE (RFC 1951) both ways."""
        self._inflate = zlib.decompressobj(-15)
        self._deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        leftover = self.session.take_unprocessed()
        self._pending_input = self._inflate.decompress(leftover) if leftover else b""
        self.session.compression_started()

    async def _read_raw(self) -> bytes | None:
        """The next octets, or None at EOF; while idling, changes are announced meanwhile."""
        timeout = self.ctx.limits.idle_timeout if self.account is not None \
            else self.ctx.limits.preauth_timeout
        if self._read_task is None and (
                (self.idle_tag is None and self.notify is None) or self.sub is None):
            # Nothing to tell meanwhile (the usual case, every literal of an APPEND): the
            # read itself under a deadline, no task and no wait set. A read cut off by
            # the deadline loses nothing (the octets stay in the reader's buffer).
            async with asyncio.timeout(timeout):
                data = await self.reader.read(READ_SIZE)
            return data or None
        if self._read_task is None:
            self._read_task = asyncio.ensure_future(self.reader.read(READ_SIZE))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            waits: set[asyncio.Future[Any]] = {self._read_task}
            change_task = None
            # RFC 2177 IDLE, RFC 5465 §3.1 NOTIFY: changes are told without a command.
            if (self.idle_tag is not None or self.notify is not None) and self.sub is not None:
                change_task = asyncio.ensure_future(self.sub.get())
                waits.add(change_task)
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError
            done, _ = await asyncio.wait(waits, timeout=left,
                                         return_when=asyncio.FIRST_COMPLETED)
            if change_task is not None:
                if change_task in done:
                    await self._unprompted(change_task.result())
                else:
                    change_task.cancel()
            if self._read_task in done:
                task, self._read_task = self._read_task, None
                data = task.result()
                return data or None
            if not done:
                raise TimeoutError

    async def _unprompted(self, change: Any) -> None:
        """A change arrived while no command runs (IDLE or NOTIFY): tell what may be told."""
        idle = self.idle_tag is not None
        n = self.notify
        if n is None:
            self.on_change(change)
            self.announce(expunges_allowed=True)
        else:
            self._route(change)
            if n.pushes_selected:
                # RFC 5465 §6.1: "selected" may always send EXPUNGE, "selected-delayed"
                # only when RFC 9051 §7.5.1 allows it (during IDLE, not between commands).
                self.announce(expunges_allowed=idle or not n.plan.delayed)
            else:
                # RFC 5465 §3.2: during IDLE too, only what NOTIFY asked for (as Dovecot).
                self.announce_others()
            await notify.tell(self)
        await self.flush()

    async def run(self) -> None:
        with log.bind(cid=self.cid, service=self.kind, ip=self.ip):
            try:
                await self._run()
            except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
                self.logger.debug("connection ended")
            except TimeoutError:
                self.logger.debug("connection timed out")
                with contextlib.suppress(Exception):
                    self.session.close("autologout: idle too long")
                    await asyncio.wait_for(self.flush(), 2)
            except asyncio.CancelledError:
                self.logger.info("connection closed by shutdown")
                with contextlib.suppress(Exception):
                    self.session.close("server shutting down")
                    await asyncio.wait_for(self.flush(), 1)
            except Exception as exc:
                metrics.panic("imapserver", exc, msg="imap connection failed")
                with contextlib.suppress(Exception):
                    self.writer.write(b"* BYE [SERVERBUG] internal error, closing\r\n")
            finally:
                await self._cleanup()

    async def _cleanup(self) -> None:
        notify.stop(self)
        if self.idle_tag is not None:
            self.idle_tag = None
            m.IDLE_SESSIONS.dec()
        if self._read_task is not None:
            self._read_task.cancel()
        for pending in self.appends.values():
            for spool in pending.spools:
                spool.discard()
        self.appends.clear()
        if self.sub is not None:
            self.sub.close()
        if self.account_name:
            left = self.ctx.sessions_per_account.get(self.account_name, 1) - 1
            if left <= 0:
                self.ctx.sessions_per_account.pop(self.account_name, None)
            else:
                self.ctx.sessions_per_account[self.account_name] = left
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 2)

    async def _run(self) -> None:
        self.logger.debug("connected")
        if self.preauth is not None:
            # RFC 9051 §7.1.4: PREAUTH, the session starts authenticated.
            answer = await self._logged_in(self.preauth, "preauth")
            if answer.status != "OK":
                raise ConnectionError(answer.text)
            self.session.greet(preauth=True, text=f"logged in as {self.preauth}")
        else:
            self.session.greet()
        await self.flush()
        while not self.session.closed:
            data = await self._read()
            if data is not None and self.transcript.enabled():
                self.transcript.feed(log.Direction.CLIENT, data)
            events = self.session.receive(data) if data is not None \
                else self.session.receive_eof()
            while events:
                for event in events:
                    await self._event(event)
                    if self.session.closed:
                        break
                if self.session.closed:
                    break
                events = self.session.receive()
            await self.flush()

    # --- events --------------------------------------------------------------

    async def _event(self, event: Event) -> None:
        match event:
            case CommandReceived(tag=tag, command=command):
                await self._command(tag, command)
            case AppendStart():
                await self._append_start(event)
            case AppendData(data=data):
                pending = self.appends.get(self._append_tag or "")
                if pending is not None:
                    pending.spools[-1].write(data)
            case AppendEnd():
                pass
            case AuthResponse(data=data):
                await self._auth_step(data)
            case AuthAborted():
                self.sasl = None
                self.sasl_success = None
            case IdleDone():
                self.idle_tag = None
                m.IDLE_SESSIONS.dec()
                self.announce(expunges_allowed=True)
                await notify.tell(self)
                self.session.ok()
            case Rejected(tag=tag, reason=reason):
                self.logger.debug("command rejected", tag=tag or "", reason=reason)
                if tag is not None:
                    self._drop_append(tag)
            case Closed(reason=reason):
                self.logger.debug("session closed", reason=str(reason))

    _append_tag: str | None = None
    append_mailbox: str | None = None  # the store name last found to exist by APPEND
    _quickack = False
    _sock: Any = None  # the transport's socket, for TCP_QUICKACK
    _inflate: Any = None  # zlib objects once COMPRESS DEFLATE is on
    _deflate: Any = None
    _pending_input = b""
    _mechanism = "PLAIN"

    async def _command(self, tag: str, command: c.Command) -> None:
        handler = _DISPATCH.get(type(command))
        label = m.command_label(command.NAME)
        if handler is None:
            self.session.bad(f"{command.NAME} is not supported")
            m.COMMANDS.labels(command=label, status="BAD").inc()
            return
        started = time.monotonic()
        try:
            answer = await handler(self, tag, command)
        except HandlerError as exc:
            answer = Answer(exc.status, exc.text, exc.code)
        except MailboxNotFound as exc:
            answer = Answer("NO", str(exc), Code.NONEXISTENT)
        except OverQuota as exc:
            answer = Answer("NO", str(exc), Code.OVERQUOTA)
        except StoreError as exc:
            answer = Answer("NO", str(exc), Code.CANNOT)
        if answer is None:
            return  # the handler answered (idle, enabled, challenge, ...)
        m.COMMANDS.labels(command=label, status=answer.status).inc()
        m.COMMAND_SECONDS.labels(command=label).observe(time.monotonic() - started)
        if self.selected is not None and answer.status != "BAD":
            self.announce(expunges_allowed=_may_expunge(command))
        if self.notify is not None:
            self.announce_others()
            await notify.tell(self)
        if self.session.closed:
            return  # an update ended the session (its mailbox was deleted): BYE was sent
        if answer.status == "OK":
            self.session.ok(answer.text, answer.code)
        elif answer.status == "NO":
            self.session.no(answer.text, answer.code)
        else:
            self.session.bad(answer.text, answer.code)

    # --- changes -------------------------------------------------------------

    def on_change(self, change: Any) -> None:
        sel = self.selected
        if sel is None:
            return
        if change.kind in ("mailbox-removed", "mailbox-renamed") \
                and change.mailbox_id == sel.mailbox_id:
            if change.kind == "mailbox-removed":
                self.session.close("the selected mailbox was deleted")
            else:
                sel.name = change.mailbox
            return
        sel.view.apply(change)

    def _route(self, change: Any) -> None:
        """To the selected mailbox's view, or (NOTIFY on) to the backlog for notify.tell;
        a rename or deletion of the selected mailbox goes to both."""
        n = self.notify
        sel = self.selected
        if n is None:
            self.on_change(change)
            return
        if sel is not None and change.mailbox_id == sel.mailbox_id:
            self.on_change(change)
            if change.kind in ("added", "expunged", "flags"):
                return
        n.backlog.append(change)

    def announce_others(self) -> None:
        """Take pending changes while the selected mailbox's updates must wait (NOTIFY on,
        its messages not pushed): they are routed, its own stay in its view."""
        if self.sub is not None:
            for change in self.sub.pending():
                self._route(change)

    def announce(self, *, expunges_allowed: bool) -> None:
        """Tell the client what changed in the selected mailbox (RFC 9051 §7.5.1)."""
        if self.sub is not None:
            for change in self.sub.pending():
                self._route(change)
        sel = self.selected
        if sel is None or self.session.closed:
            return
        n = self.notify
        flags = True
        if n is not None and n.pushes_selected:
            assert n.plan.selected is not None
            flags = "FlagChange" in n.plan.selected  # RFC 5465 §5.1
            if not n.plan.delayed:
                expunges_allowed = True  # RFC 5465 §6.1 "selected"
        before = sel.view.max_uid
        updates = sel.view.announce(expunges_allowed=expunges_allowed,
                                    qresync=sel.qresync or self.session.uid_only, flags=flags)
        messages.send_updates(self, updates)
        if n is not None and n.pushes_selected and n.plan.fetch and sel.view.max_uid > before:
            # New messages: fetched with the MessageNew attributes by notify.tell (§5.2).
            uids = sel.view.uids
            i = len(uids)
            while i > 0 and uids[i - 1] > before:
                i -= 1
            n.new_uids.extend(uids[i:])

    # --- authentication (RFC 9051 §6.2) --------------------------------------

    def _sasl_options(self) -> ServerOptions:
        return ServerOptions(get_credentials=self.ctx.credentials, hostname=self.ctx.hostname,
                             channel_bindings=self.channel_bindings)

    async def login(self, username: str, password: bytes) -> Answer | None:
        """LOGIN (RFC 9051 §6.2.3), checked like AUTHENTICATE PLAIN."""
        self._mechanism = "PLAIN"
        mech = new_server("PLAIN", self._sasl_options())
        response = b"\0" + username.encode("utf-8") + b"\0" + password
        step = await asyncio.to_thread(mech.start, response)
        return await self._auth_outcome(step)

    async def authenticate(self, mechanism: str, initial: bytes | None) -> Answer | None:
        mechanism = mechanism.upper()
        self._mechanism = mechanism
        if mechanism not in self.session.config.auth_mechanisms:
            return Answer("NO", f"mechanism {mechanism} is not offered", Code.CANNOT)
        try:
            self.sasl = new_server(mechanism, self._sasl_options())
        except Exception:
            return Answer("NO", f"mechanism {mechanism} is not supported", Code.CANNOT)
        step = await asyncio.to_thread(self.sasl.start, initial)
        return await self._auth_answer(step)

    async def _auth_step(self, data: bytes) -> None:
        if self.sasl_success is not None:
            success, self.sasl_success = self.sasl_success, None
            answer = await self._logged_in(success.username, success.mechanism)
        elif self.sasl is None:
            answer = Answer("BAD", "no authentication in progress")
        else:
            step = await asyncio.to_thread(self.sasl.step, data)
            answer = await self._auth_answer(step)
        if answer is not None:
            self._answer(answer)

    def _answer(self, answer: Answer) -> None:
        {"OK": self.session.ok, "NO": self.session.no, "BAD": self.session.bad}[
            answer.status](answer.text, answer.code)

    async def _auth_answer(self, step: Any) -> Answer | None:
        if isinstance(step, Challenge):
            self.session.challenge(step.data)
            return None
        if isinstance(step, Failure) and step.reason == FailureReason.MALFORMED:
            self.sasl = None
            return Answer("BAD", "malformed authentication data")
        return await self._auth_outcome(step)

    async def _auth_outcome(self, step: Success | Failure) -> Answer | None:
        """The login limiter sees each outcome before the client (see kittiwake.limits.login)."""
        self.sasl = None
        username = step.username or None
        limiter = self.ctx.login_limiter
        if limiter is not None and not self.ctx.localserve:
            account = None if username is None else \
                self.ctx.account_for_login(username) or username
            attempt = await limiter.before_attempt(self.ip, account)
            if attempt.refused:
                m.LOGINS.labels(mechanism=m.mechanism_label(self._mechanism),
                                result="refused").inc()
                self.logger.info("login refused: too many failures", user=username or "",
                                 limit=attempt.reason)
                return Answer("NO", "authentication failed", Code.AUTHENTICATIONFAILED)
            limiter.record(attempt, ok=isinstance(step, Success))
        mechanism = m.mechanism_label(self._mechanism)
        m.LOGINS.labels(mechanism=mechanism,
                        result="badcreds" if isinstance(step, Failure) else "ok").inc()
        if isinstance(step, Failure):
            self.logger.info("authentication failed", user=username or "",
                             reason=str(step.reason))
            return Answer("NO", "authentication failed", Code.AUTHENTICATIONFAILED)
        if step.server_final:
            self.sasl_success = step
            self.session.challenge(step.server_final)
            return None
        return await self._logged_in(step.username, step.mechanism)

    async def _logged_in(self, username: str, mechanism: str) -> Answer:
        name = self.ctx.account_for_login(username)
        if name is None:
            return Answer("NO", "authentication failed", Code.AUTHENTICATIONFAILED)
        open_now = self.ctx.sessions_per_account.get(name, 0)
        if open_now >= self.ctx.limits.max_per_account and not self.ctx.localserve:
            return Answer("NO", "too many open sessions for this account", Code.LIMIT)
        self.ctx.sessions_per_account[name] = open_now + 1
        self.account_name = name
        self.account = await self.ctx.store.account(
            name, self.ctx.quota_of(name), self.ctx.mailboxes_of(name),
            quota_messages=self.ctx.message_quota_of(name))
        self.sub = self.ctx.store.changes.subscribe(
            name, limit=self.ctx.limits.max_unread_changes,
            stale_after=self.ctx.limits.unread_changes_seconds,
            on_overflow=self._changes_overflowed)
        self.logger.info("authenticated", account=name, mechanism=mechanism)
        return Answer("OK", "logged in", r.ResponseCode.capability(self._caps_after_login()))

    def _changes_overflowed(self) -> None:
        """The client stopped reading while changes piled up (store.changes): end the
        session rather than hold them; it resynchronises when it reconnects."""
        self.logger.info("session closed: changes piled up unread",
                         limit=self.ctx.limits.max_unread_changes)
        m.CHANGE_OVERFLOWS.inc()
        transport = self.writer.transport
        if not transport.is_closing():
            with contextlib.suppress(Exception):
                transport.write(b"* BYE too many changes waiting unread; reconnect\r\n")
            transport.abort()

    def _caps_after_login(self) -> list[str]:
        state = self.session.state
        self.session.state = State.AUTHENTICATED
        try:
            return self.session.capabilities()
        finally:
            self.session.state = state

    async def start_tls(self) -> None:
        """STARTTLS (RFC 9051 §6.2.1): OK, handshake, then a fresh session state."""
        self.session.ok("begin TLS negotiation now")
        await self.flush()
        if self._read_task is not None:
            self._read_task.cancel()
            self._read_task = None
        assert self.ctx.tls_context is not None
        try:
            await starttls(self.reader, self.writer, self.ctx.tls_context)
        except (ssl.SSLError, ConnectionError, OSError) as exc:
            self.logger.info("tls handshake failed", error=str(exc),
                             reason=handshake_failed(self.kind, exc))
            raise ConnectionError("TLS handshake failed") from None
        self.session.tls_started()
        self._sock = None  # a new transport
        self._note_tls()
        self.logger.debug("tls started")

    # --- APPEND data -----------------------------------------------------------

    def quick_ack(self) -> None:
        """ACK the client's next segments at once (Linux TCP_QUICKACK, reset by the kernel).

        Many clients send a literal and its closing CRLF in two writes; with Nagle
        on their side the CRLF waits for our ACK of the literal, which the kernel
        would delay by up to 40 ms, since no reply can go out before the command ends.
        """
        self._quickack = True

    def _set_quickack(self) -> None:
        self._quickack = False
        sock = self._sock
        if sock is None:  # looked up once (uvloop makes a new socket object each time)
            sock = self._sock = self.writer.get_extra_info("socket")
        if sock is not None and hasattr(socket, "TCP_QUICKACK"):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)

    async def _append_start(self, event: AppendStart) -> None:
        await append.append_start(self, event)

    def _drop_append(self, tag: str) -> None:
        pending = self.appends.pop(tag, None)
        if pending is not None:
            for spool in pending.spools:
                spool.discard()
        if self._append_tag == tag:
            self._append_tag = None


def _may_expunge(command: c.Command) -> bool:
    """RFC 9051 §7.5.1: no EXPUNGE during FETCH, STORE or SEARCH (the UID forms may)."""
    if isinstance(command, c.Fetch | c.Store | c.Search | c.Sort | c.Thread):
        return command.uid
    return True


# --- commands of any state ----------------------------------------------------

async def _capability(conn: IMAPConnection, tag: str, cmd: c.Capability) -> Answer:
    conn.session.send(r.capability(conn.session.capabilities()))
    return Answer()


async def _noop(conn: IMAPConnection, tag: str, cmd: c.Command) -> Answer:
    return Answer()


async def _logout(conn: IMAPConnection, tag: str, cmd: c.Logout) -> Answer:
    return Answer()


async def _id(conn: IMAPConnection, tag: str, cmd: c.Id) -> Answer:
    """ID (RFC 2971 §3.1): name and version, nothing that helps an attacker more."""
    from kittiwake import __version__

    if cmd.params:
        conn.logger.debug("client id", client=" ".join(f"{k}={v}" for k, v in cmd.params))
    conn.session.send(r.id_response([("name", "kittiwake"), ("version", __version__)]))
    return Answer()


async def _starttls(conn: IMAPConnection, tag: str, cmd: c.StartTLS) -> Answer | None:
    if conn.ctx.tls_context is None or not conn.ctx.tls_ready() or conn.kind != "imap" \
            or conn.session.tls:
        return Answer("BAD", "STARTTLS is not available here")
    await conn.start_tls()
    return None


async def _login(conn: IMAPConnection, tag: str, cmd: c.Login) -> Answer | None:
    return await conn.login(cmd.username, cmd.password)


async def _authenticate(conn: IMAPConnection, tag: str, cmd: c.Authenticate) -> Answer | None:
    return await conn.authenticate(cmd.mechanism, cmd.initial_response)


async def _enable(conn: IMAPConnection, tag: str, cmd: c.Enable) -> None:
    """ENABLE (RFC 5161): what we know; unknown names are ignored (§3.1)."""
    known = {"CONDSTORE", "QRESYNC", "UTF8=ACCEPT", "IMAP4REV2", "UIDONLY"}
    conn.session.enabled([x for x in cmd.capabilities if x.upper() in known])
    return None


async def _compress(conn: IMAPConnection, tag: str, cmd: c.Compress) -> Answer | None:
    """COMPRESS DEFLATE (RFC 4978): the OK goes out plain, everything after compressed."""
    if conn._deflate is not None:
        return Answer("NO", "compression is already on", Code.COMPRESSIONACTIVE)
    if cmd.mechanism.upper() != "DEFLATE":
        return Answer("BAD", f"compression mechanism {cmd.mechanism} is not supported")
    conn.session.ok("DEFLATE active")
    await conn.flush()
    conn.start_compression()
    return None


async def _idle(conn: IMAPConnection, tag: str, cmd: c.Idle) -> None:
    """IDLE (RFC 2177): updates are sent as they happen until DONE."""
    conn.session.idle()
    conn.idle_tag = tag
    m.IDLE_SESSIONS.inc()
    conn.announce(expunges_allowed=True)
    return None


_HANDLERS: dict[type[c.Command], Any] = {
    c.Capability: _capability, c.Noop: _noop, c.Check: _noop, c.Logout: _logout, c.Id: _id,
    c.StartTLS: _starttls, c.Login: _login, c.Authenticate: _authenticate,
    c.Enable: _enable, c.Idle: _idle, c.Compress: _compress, c.Notify: notify.notify_command,
}

# Every command's handler, looked up once per command (the groups' own tables first).
_DISPATCH: dict[type[c.Command], Any] = {
    **_HANDLERS, **append.HANDLERS, **messages.HANDLERS, **mailboxes.HANDLERS}
