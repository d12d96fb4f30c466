"""SMTP server protocol state machine, sans-I/O (RFC 5321 with its extensions).

:class:`ServerSession` is fed the bytes a client sends and hands back typed
events (see ``events``); the driver decides on each command event and
answers it; the session formats replies and keeps the protocol state:
sequencing (RFC 5321 §4.1.4, 503 5.5.1), PIPELINING (RFC 2920), DATA with
dot-unstuffing and limits (RFC 5321 §4.5.2, §4.5.3.1), BDAT (RFC 3030),
SIZE (RFC 1870), STARTTLS (RFC 3207), AUTH exchanges (RFC 4954), SMTPUTF8
(RFC 6531), REQUIRETLS (RFC 8689) and LIMITS (RFC 9422). No sockets, no
asyncio, no clock.

Driver loop::

    session = ServerSession(config)
    session.greet()
    write(session.data_to_send())
    while not session.closed:
        events = session.receive(await read())
        while events:
            for event in events:
                ...  # answer every event with event.needs_reply exactly once
            events = session.receive()      # commands buffered behind it
        write(session.data_to_send())      # replies of a pipelined group together

``receive()`` stops after the first event that needs a reply; calling
``receive()`` (no data) after answering continues with buffered input.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from enum import StrEnum

from kittiwake.smtp.address import Address
from kittiwake.smtp.command import (
    AuthCommand,
    BdatCommand,
    CommandError,
    DataCommand,
    EhloCommand,
    ExpnCommand,
    HeloCommand,
    HelpCommand,
    MailCommand,
    NoopCommand,
    QuitCommand,
    RcptCommand,
    RsetCommand,
    StartTLSCommand,
    VrfyCommand,
    decode_base64_line,
    parse_command,
)
from kittiwake.smtp.data import DataDecoder, DataError
from kittiwake.smtp.events import (
    Auth,
    AuthAborted,
    AuthResponse,
    BdatEnd,
    BdatStart,
    Close,
    CloseReason,
    DataChunk,
    DataEnd,
    DataStart,
    Ehlo,
    Event,
    Helo,
    MailFrom,
    MessageRejected,
    Quit,
    RcptTo,
    Reset,
    StartTLS,
)
from kittiwake.smtp.params import Body, MailParams, RcptParams
from kittiwake.smtp.reply import Reply

__all__ = ["ServerConfig", "ServerSession", "SessionError", "State"]


class State(StrEnum):
    """Where the session is in the RFC 5321 §4.1.4 command sequence."""

    GREETING = "greeting"  # greet() not called yet
    REJECTED = "rejected"  # greeted with 554: only QUIT is served (RFC 5321 §3.1)
    CONNECTED = "connected"  # greeted (or TLS just started), no EHLO/HELO yet
    READY = "ready"  # EHLO/HELO done, no transaction
    MAIL = "mail"  # MAIL FROM accepted
    RCPT = "rcpt"  # at least one RCPT TO accepted
    DATA = "data"  # reading message data after 354
    BDAT = "bdat"  # reading a BDAT chunk
    AUTH = "auth"  # waiting for a SASL response line (after 334)
    STARTTLS = "starttls"  # 220 sent for STARTTLS, waiting for tls_started()
    CLOSED = "closed"


class SessionError(RuntimeError):
    """The driver used the session wrongly (a bug in the driver, not in the input)."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """What the session offers and enforces. Limits of None are unlimited."""

    hostname: str
    greeting_text: str = "ESMTP"
    max_message_size: int | None = 50 * 1024 * 1024  # RFC 1870 SIZE
    max_recipients: int = 1000  # RFC 5321 §4.5.3.1.8 (>= 100); LIMITS RCPTMAX
    max_transactions: int | None = None  # LIMITS MAILMAX (RFC 9422 §4.2)
    # RFC 5321 §4.5.3.1.4: 512 octets, raised by extensions' parameters.
    max_command_line: int = 2048
    max_auth_line: int = 12288  # RFC 4954 §4: AUTH lines up to 12288 octets
    max_data_line: int | None = 1000  # RFC 5321 §4.5.3.1.6, incl. CRLF
    max_errors: int = 10  # then 421 and close
    pipelining: bool = True  # RFC 2920
    eightbitmime: bool = True  # RFC 6152
    smtputf8: bool = True  # RFC 6531
    starttls: bool = False  # RFC 3207: offered before TLS when the driver can do TLS
    chunking: bool = True  # RFC 3030 CHUNKING
    binarymime: bool = True  # RFC 3030 BINARYMIME (needs chunking)
    enhanced_status_codes: bool = True  # RFC 2034
    requiretls: bool = True  # RFC 8689: offered once TLS is active
    dsn: bool = False  # RFC 3461
    limits: bool = True  # RFC 9422 LIMITS
    auth_mechanisms: tuple[str, ...] = ()  # RFC 4954, e.g. ("SCRAM-SHA-256", "PLAIN")
    auth_requires_tls: bool = True  # offer/accept AUTH only over TLS
    require_auth: bool = False  # submission: MAIL needs AUTH first (530 5.7.0)
    require_tls: bool = False  # MAIL needs STARTTLS first (530 5.7.0)


_NO_MAIL_PARAMS = MailParams()
_NO_RCPT_PARAMS = RcptParams()
# The usual positive replies, built once (a Reply checks and cleans its text).
_OK = Reply(250, "2.0.0", ("OK",))
_MAIL_OK = Reply(250, "2.1.0", ("OK",))
_RCPT_OK = Reply(250, "2.1.5", ("OK",))
_DATA_GO_AHEAD = Reply(354, None, ("end data with <CR><LF>.<CR><LF>",))


class ServerSession:
    """One SMTP server connection's protocol state. See module docstring."""

    def __init__(self, config: ServerConfig, *, tls: bool = False) -> None:
        self.config = config
        self.tls = tls
        self.state = State.GREETING
        self.helo_name: str | None = None
        self.esmtp = False
        self.authenticated = False
        self.errors = 0
        self.transactions = 0
        self.early_talker = False  # client sent data before the greeting
        self.pending: Event | None = None
        self._in = bytearray()
        self._out = bytearray()
        self._discard_input = False
        self._skip_line = False  # discarding an overlong line up to its LF
        # (verb, reply code) of every reply to a command, for the driver's
        # metrics; the driver empties it. ``verb`` is the client's word, upper-cased.
        self.replies: list[tuple[str, int]] = []
        self.verb = ""
        self._reset_transaction()

    # --- transaction state, readable by the driver ---

    def _reset_transaction(self) -> None:
        self.mail_from: Address | None = None
        self.mail_params: MailParams | None = None
        self.recipients: list[Address] = []
        self._decoder: DataDecoder | None = None
        self._bdat_used = False
        self._bdat_remaining = 0
        self._bdat_size = 0
        self._bdat_last = False
        self._bdat_total = 0
        self._bdat_reply: Reply | None = None  # reply due after an invalid BDAT's bytes
        self._bdat_error: DataError | None = None
        self._bdat_prev = State.READY

    @property
    def closed(self) -> bool:
        return self.state == State.CLOSED

    @property
    def in_transaction(self) -> bool:
        return self.mail_params is not None

    def capabilities(self) -> list[str]:
        """EHLO keywords currently offered (RFC 5321 §4.1.1.1)."""
        c = self.config
        caps: list[str] = []
        if c.pipelining:
            caps.append("PIPELINING")
        # RFC 1870 §4: "SIZE" SP max; 0 means no fixed maximum.
        caps.append(f"SIZE {c.max_message_size or 0}")
        if c.eightbitmime:
            caps.append("8BITMIME")
        if c.enhanced_status_codes:
            caps.append("ENHANCEDSTATUSCODES")
        if c.smtputf8:
            caps.append("SMTPUTF8")
        if c.starttls and not self.tls:
            caps.append("STARTTLS")
        # RFC 8689 §4.1: REQUIRETLS is only offered over TLS.
        if c.requiretls and self.tls:
            caps.append("REQUIRETLS")
        if c.chunking:
            caps.append("CHUNKING")
            if c.binarymime:
                caps.append("BINARYMIME")
        if c.dsn:
            caps.append("DSN")
        if c.limits:
            limits = [f"RCPTMAX={c.max_recipients}"]
            if c.max_transactions is not None:
                limits.append(f"MAILMAX={c.max_transactions}")
            caps.append("LIMITS " + " ".join(limits))
        if self._auth_offered():
            caps.append("AUTH " + " ".join(c.auth_mechanisms))
        return caps

    def _auth_offered(self) -> bool:
        c = self.config
        return bool(c.auth_mechanisms) and (self.tls or not c.auth_requires_tls)

    # --- output ---

    def data_to_send(self) -> bytes:
        """Bytes to write to the client; clears the outgoing buffer."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def _send(self, reply: Reply) -> None:
        self._out += reply.to_bytes(enhanced=self.config.enhanced_status_codes)
        if self.verb:
            self.replies.append((self.verb, reply.code))

    def _error(self, reply: Reply, events: list[Event]) -> None:
        """Send an error reply the session decided on; too many -> 421 and close."""
        self._send(reply)
        self.errors += 1
        if self.errors >= self.config.max_errors:
            self._close(Reply(421, "4.7.0", (f"{self.config.hostname} too many errors",)),
                        CloseReason.TOO_MANY_ERRORS, events)

    def _close(self, reply: Reply | None, reason: CloseReason, events: list[Event]) -> None:
        if reply is not None:
            self._send(reply)
        self.state = State.CLOSED
        self.pending = None
        self._in.clear()
        events.append(Close(reason, reply))

    # --- driver calls ---

    def greet(self, reply: Reply | None = None) -> None:
        """Queue the connection greeting (RFC 5321 §4.3.1): default ``220 hostname
        ESMTP``. With a 554 reply the session only serves QUIT afterwards (§3.1);
        with 421 it closes. Bytes received before the greeting are kept
        (``early_talker`` is set); call ``receive()`` afterwards to process them."""
        if self.state != State.GREETING:
            raise SessionError("greet() called twice")
        if reply is None:
            reply = Reply(220, None, (f"{self.config.hostname} {self.config.greeting_text}",))
        self._send(reply)
        if reply.code == 220:
            self.state = State.CONNECTED
        elif reply.code == 421:
            self.state = State.CLOSED
        else:
            self.state = State.REJECTED

    def close(self, reply: Reply | None = None) -> None:
        """Driver-initiated end (shutdown, timeout): queue 421 and close."""
        if self.state == State.CLOSED:
            return
        if reply is None:
            reply = Reply(421, "4.3.2", (f"{self.config.hostname} service shutting down",))
        self.verb = ""  # not an answer to a command
        self._close(reply, CloseReason.SHUTDOWN, [])

    def receive_eof(self) -> list[Event]:
        """The client closed its side; returns [Close(EOF)] unless already closed."""
        if self.state == State.CLOSED:
            return []
        events: list[Event] = []
        self._close(None, CloseReason.EOF, events)
        return events

    def tls_started(self) -> None:
        """The TLS handshake after STARTTLS finished. RFC 3207 §4.2: the session
        is reset to the state before EHLO; the client must EHLO again."""
        if self.state != State.STARTTLS:
            raise SessionError("tls_started() without an accepted STARTTLS")
        self.tls = True
        self.state = State.CONNECTED
        self.helo_name = None
        self.esmtp = False
        self.authenticated = False
        self._discard_input = False
        self._in.clear()
        self._reset_transaction()

    def accept(self, text: str | None = None) -> None:
        """Answer the pending event positively with its usual reply."""
        ev = self.pending
        h = self.config.hostname
        if isinstance(ev, Helo):
            r = Reply(250, None, (f"{h} {text}" if text else h,))
        elif isinstance(ev, Ehlo):
            first = f"{h} {text}" if text else h
            r = Reply(250, None, (first, *self.capabilities()))
        elif isinstance(ev, MailFrom):
            r = Reply(250, "2.1.0", (text,)) if text else _MAIL_OK
        elif isinstance(ev, RcptTo):
            r = Reply(250, "2.1.5", (text,)) if text else _RCPT_OK
        elif isinstance(ev, DataStart):
            r = Reply(354, None, (text,)) if text else _DATA_GO_AHEAD
        elif isinstance(ev, DataEnd):
            r = Reply(250, "2.0.0", (text,)) if text else _OK
        elif isinstance(ev, BdatEnd):
            default = "OK" if ev.last else f"{ev.size} octets received"
            r = Reply(250, "2.0.0", (text or default,))
        elif isinstance(ev, StartTLS):
            r = Reply(220, "2.0.0", (text or "ready to start TLS",))
        elif isinstance(ev, (Auth, AuthResponse)):
            r = Reply(235, "2.7.0", (text or "authentication successful",))
        else:
            raise SessionError("accept() without a pending event")
        self.reply(r)

    def reject(self, reply: Reply) -> None:
        """Answer the pending event with an error reply (4xx/5xx)."""
        if reply.code < 400:
            raise SessionError(f"reject() with positive reply {reply.code}")
        self.reply(reply)

    def auth_challenge(self, data: bytes) -> None:
        """Send a SASL challenge (``334 base64``, RFC 4954 §4) for the pending AUTH."""
        if not isinstance(self.pending, (Auth, AuthResponse)):
            raise SessionError("auth_challenge() without a pending AUTH")
        self.pending = None
        self.state = State.AUTH
        self._out += b"334 " + base64.b64encode(data) + b"\r\n"

    def reply(self, reply: Reply) -> None:
        """Answer the pending event with this reply; state follows its code."""
        ev = self.pending
        if ev is None:
            raise SessionError("reply() without a pending event")
        self.pending = None
        ok = reply.code < 400
        if isinstance(ev, (Helo, Ehlo)):
            if ok:
                self._reset_transaction()
                self.helo_name = ev.name
                self.esmtp = isinstance(ev, Ehlo)
                self.state = State.READY
        elif isinstance(ev, MailFrom):
            if ok:
                self.mail_from = ev.path
                self.mail_params = ev.params
                self.transactions += 1
                self.state = State.MAIL
        elif isinstance(ev, RcptTo):
            if ok:
                self.recipients.append(ev.path)
                self.state = State.RCPT
        elif isinstance(ev, DataStart):
            if reply.code == 354:
                self.state = State.DATA
                self._decoder = DataDecoder(max_line=self.config.max_data_line,
                                            max_size=self.config.max_message_size)
        elif isinstance(ev, DataEnd):
            self._end_transaction()
        elif isinstance(ev, BdatEnd):
            if ev.last or not ok:
                self._end_transaction()
        elif isinstance(ev, StartTLS):
            if reply.code == 220:
                self.state = State.STARTTLS
            else:
                self._discard_input = False
        elif isinstance(ev, (Auth, AuthResponse)):
            if reply.code == 235:
                self.authenticated = True
            self.state = State.AUTH if reply.code == 334 else State.READY
        self._send(reply)
        if reply.code == 421:
            # RFC 5321 §3.8: 421 means the service is closing the channel.
            self.state = State.CLOSED
            self._in.clear()

    def _end_transaction(self) -> None:
        self._reset_transaction()
        self.state = State.READY

    # --- input ---

    def receive(self, data: bytes = b"") -> list[Event]:
        """Add client bytes and return the events they complete.

        Stops after an event that needs a reply; answer it, then call
        ``receive()`` without data for the commands buffered behind it.
        Returns [] while a reply is pending or after the session closed.
        """
        if self.state == State.CLOSED:
            return []
        if self._discard_input or self.state == State.STARTTLS:
            # RFC 3207 §5 / STARTTLS command injection: nothing sent in plain
            # text after STARTTLS may be acted on.
            return []
        self._in += data
        if self.state == State.GREETING:
            if data:
                self.early_talker = True
            return []
        events: list[Event] = []
        while self.pending is None and self.state != State.CLOSED and not self._discard_input:
            if self.state == State.DATA:
                if not self._read_data(events):
                    break
            elif self.state == State.BDAT:
                if not self._read_bdat(events):
                    break
            elif not self._read_line(events):
                break
        return events

    def _read_data(self, events: list[Event]) -> bool:
        dec = self._decoder
        assert dec is not None
        payload, consumed, done = dec.feed(self._in)
        if consumed:
            del self._in[:consumed]
        if payload:
            events.append(DataChunk(payload))
        if done:
            if dec.error is not None:
                self._reject_message(dec.error, events)
            else:
                self.pending = DataEnd(dec.size)
                events.append(self.pending)
            return True
        return consumed > 0

    def _reject_message(self, error: DataError, events: list[Event]) -> None:
        size = self.config.max_message_size
        if error == DataError.TOO_BIG:
            # RFC 1870 §6: 552 message size exceeds fixed maximum.
            r = Reply(552, "5.3.4", (f"message exceeds the maximum size of {size} octets",))
        elif error == DataError.LINE_TOO_LONG:
            # RFC 5321 §4.5.3.1.6 / §4.2.4: 500 line too long.
            r = Reply(500, "5.5.2", (
                f"line too long (at most {self.config.max_data_line} octets including CRLF)",))
        else:
            # RFC 5321 §2.3.8: CR and LF only as CRLF (SMTP smuggling defence).
            r = Reply(550, "5.6.0", ("bare CR or LF in message data; lines must end in CRLF",))
        self._end_transaction()
        self._send(r)
        events.append(MessageRejected(r, error))

    def _read_bdat(self, events: list[Event]) -> bool:
        n = min(self._bdat_remaining, len(self._in))
        if n:
            chunk = bytes(self._in[:n])
            del self._in[:n]
            self._bdat_remaining -= n
            if self._bdat_reply is None and self._bdat_error is None:
                self._bdat_total += n
                limit = self.config.max_message_size
                if limit is not None and self._bdat_total > limit:
                    self._bdat_error = DataError.TOO_BIG
                else:
                    events.append(DataChunk(chunk))
        if self._bdat_remaining:
            return False
        # RFC 3030 §3: the reply to BDAT comes after its octets were read.
        self.state = self._bdat_prev
        if self._bdat_reply is not None:
            reply, self._bdat_reply = self._bdat_reply, None
            self._error(reply, events)
        elif self._bdat_error is not None:
            self._reject_message(self._bdat_error, events)
        else:
            self.pending = BdatEnd(self._bdat_size, self._bdat_last, self._bdat_total)
            events.append(self.pending)
        return True

    def _read_line(self, events: list[Event]) -> bool:
        buf = self._in
        if self.state == State.AUTH or buf[:5].upper() == b"AUTH ":
            limit = self.config.max_auth_line
        else:
            limit = self.config.max_command_line
        nl = buf.find(b"\n")
        if nl < 0:
            if len(buf) > limit:
                # RFC 5321 §4.5.3.1.4: too long; skip it, reply when it ends.
                self._skip_line = True
                buf.clear()
            return False
        line = bytes(buf[:nl])
        del buf[: nl + 1]
        if line.endswith(b"\r"):
            line = line[:-1]
        if self._skip_line or len(line) + 2 > limit:
            self._skip_line = False
            if self.state == State.AUTH:
                self.state = State.READY
            self._error(Reply(500, "5.5.2", ("line too long",)), events)
            return True
        if self.state == State.AUTH:
            self._auth_line(line, events)
        else:
            self._command(line, events)
        return True

    def _auth_line(self, line: bytes, events: list[Event]) -> None:
        self.state = State.READY
        if line == b"*":
            # RFC 4954 §4: "*" cancels; the server replies 501.
            r = Reply(501, "5.0.0", ("authentication cancelled",))
            self._send(r)
            events.append(AuthAborted(r))
            return
        try:
            data = decode_base64_line(line.decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            r = Reply(501, "5.5.2", ("invalid base64 in response",))
            events.append(AuthAborted(r))
            self._error(r, events)
            return
        self.pending = AuthResponse(data)
        events.append(self.pending)

    def _command(self, line: bytes, events: list[Event]) -> None:
        words = line.split(None, 1)
        self.verb = words[0].decode("ascii", "replace").upper() if words else "?"
        params = self.mail_params
        try:
            cmd = parse_command(line, smtputf8=self.config.smtputf8,
                                rcpt_utf8=bool(params and params.smtputf8))
        except CommandError as e:
            # A BDAT with a bad size: its bytes will be read as commands and fail,
            # and the error count closes the session if the client keeps on.
            if self.state == State.REJECTED and e.verb != "QUIT":
                self._error(Reply(503, "5.5.1", ("no service, send QUIT",)), events)
            else:
                self._error(e.reply, events)
            return
        if self.state == State.REJECTED and not isinstance(cmd, QuitCommand):
            # RFC 5321 §3.1: after a 554 greeting, 503 to everything but QUIT.
            if isinstance(cmd, BdatCommand):
                self._start_bdat(cmd, Reply(503, "5.5.1", ("no service, send QUIT",)), events)
            else:
                self._error(Reply(503, "5.5.1", ("no service, send QUIT",)), events)
            return
        self._dispatch(cmd, events)

    def _dispatch(self, cmd: object, events: list[Event]) -> None:
        c = self.config
        h = c.hostname
        if isinstance(cmd, EhloCommand):
            self.pending = Ehlo(cmd.name)
        elif isinstance(cmd, HeloCommand):
            self.pending = Helo(cmd.name)
        elif isinstance(cmd, MailCommand):
            self._mail(cmd, events)
        elif isinstance(cmd, RcptCommand):
            self._rcpt(cmd, events)
        elif isinstance(cmd, DataCommand):
            if not self.in_transaction:
                self._error(Reply(503, "5.5.1", ("need MAIL command",)), events)
            elif self._bdat_used:
                # RFC 3030 §2: DATA and BDAT are not mixed in one transaction.
                self._error(Reply(503, "5.5.1", ("BDAT in progress, DATA not allowed",)), events)
            elif self.mail_params is not None and self.mail_params.body == Body.BINARYMIME:
                # RFC 3030 §3: BINARYMIME messages must be sent with BDAT.
                self._error(Reply(503, "5.5.1", ("BODY=BINARYMIME requires BDAT",)), events)
            elif not self.recipients:
                # RFC 2920 §3.1: DATA after all RCPTs failed.
                self._error(Reply(554, "5.5.1", ("no valid recipients",)), events)
            else:
                self.pending = DataStart()
        elif isinstance(cmd, BdatCommand):
            self._bdat(cmd, events)
        elif isinstance(cmd, RsetCommand):
            self._reset_transaction()
            if self.state in (State.MAIL, State.RCPT):
                self.state = State.READY
            self._send(_OK)
            events.append(Reset())
        elif isinstance(cmd, NoopCommand):
            self._send(_OK)
        elif isinstance(cmd, QuitCommand):
            self._send(Reply(221, "2.0.0", (f"{h} closing connection",)))
            self.state = State.CLOSED
            self._in.clear()
            events.append(Quit())
        elif isinstance(cmd, (VrfyCommand, ExpnCommand)):
            # RFC 5321 §3.5.3: 252, no verification (no address harvesting).
            self._send(Reply(252, "2.5.0", ("cannot verify, send some mail",)))
        elif isinstance(cmd, HelpCommand):
            self._send(Reply(214, "2.0.0", ("see https://www.rfc-editor.org/rfc/rfc5321",)))
        elif isinstance(cmd, StartTLSCommand):
            if not c.starttls or self.tls:
                if self.tls:
                    self._error(Reply(503, "5.5.1", ("already using TLS",)), events)
                else:
                    self._error(Reply(502, "5.5.1", ("STARTTLS not available",)), events)
                return
            # RFC 3207 §4 and CVE-2011-0411 class bugs: whatever was pipelined
            # after STARTTLS is thrown away, unread.
            self._in.clear()
            self._discard_input = True
            self.pending = StartTLS()
        elif isinstance(cmd, AuthCommand):
            self._auth(cmd, events)
        if self.pending is not None:
            events.append(self.pending)

    def _mail(self, cmd: MailCommand, events: list[Event]) -> None:
        c = self.config
        p = cmd.params
        if self.state == State.CONNECTED:
            self._error(Reply(503, "5.5.1", ("send EHLO/HELO first",)), events)
        elif not self.esmtp and p != _NO_MAIL_PARAMS:
            # RFC 5321 §4.1.1.2 / RFC 1869: parameters only after EHLO.
            self._error(Reply(555, "5.5.4", ("parameters need EHLO",)), events)
        elif self.in_transaction:
            self._error(Reply(503, "5.5.1", ("nested MAIL command",)), events)
        elif c.require_tls and not self.tls:
            self._error(Reply(530, "5.7.0", ("must issue a STARTTLS command first",)), events)
        elif c.require_auth and not self.authenticated:
            self._error(Reply(530, "5.7.0", ("authentication required",)), events)
        elif c.max_transactions is not None and self.transactions >= c.max_transactions:
            self._error(Reply(452, "4.5.3", ("too many transactions in this session",)),
                        events)
        elif p.size is not None and c.max_message_size and p.size > c.max_message_size:
            self._error(Reply(552, "5.3.4", (
                f"message size exceeds the maximum of {c.max_message_size} octets",)), events)
        elif p.body == Body.EIGHT_BIT_MIME and not c.eightbitmime:
            self._error(Reply(555, "5.5.4", ("BODY=8BITMIME not supported",)), events)
        elif p.body == Body.BINARYMIME and not (c.chunking and c.binarymime):
            self._error(Reply(555, "5.5.4", ("BODY=BINARYMIME not supported",)), events)
        elif p.smtputf8 and not c.smtputf8:
            self._error(Reply(555, "5.5.4", ("SMTPUTF8 not supported",)), events)
        elif p.requiretls and not (c.requiretls and self.tls):
            # RFC 8689 §4.1: REQUIRETLS only on a TLS-protected session.
            self._error(Reply(530, "5.7.10", ("REQUIRETLS needs a TLS session",)), events)
        elif (p.ret is not None or p.envid is not None) and not c.dsn:
            self._error(Reply(555, "5.5.4", ("DSN parameters not supported",)), events)
        else:
            self.pending = MailFrom(cmd.path, p)

    def _rcpt(self, cmd: RcptCommand, events: list[Event]) -> None:
        c = self.config
        if not self.in_transaction:
            self._error(Reply(503, "5.5.1", ("need MAIL command",)), events)
        elif self._bdat_used:
            self._error(Reply(503, "5.5.1", ("RCPT not allowed after BDAT",)), events)
        elif not self.esmtp and cmd.params != _NO_RCPT_PARAMS:
            self._error(Reply(555, "5.5.4", ("parameters need EHLO",)), events)
        elif len(self.recipients) >= c.max_recipients:
            # RFC 5321 §4.5.3.1.10 / RFC 9422 RCPTMAX: 452 too many recipients.
            # Not counted as an error: the client is expected to send the rest later.
            self._send(Reply(452, "4.5.3", ("too many recipients",)))
        elif (cmd.params.notify is not None or cmd.params.orcpt is not None) and not c.dsn:
            self._error(Reply(555, "5.5.4", ("DSN parameters not supported",)), events)
        else:
            self.pending = RcptTo(cmd.path, cmd.params)

    def _bdat(self, cmd: BdatCommand, events: list[Event]) -> None:
        err: Reply | None = None
        if not self.config.chunking:
            err = Reply(502, "5.5.1", ("BDAT not available",))
        elif not self.in_transaction:
            err = Reply(503, "5.5.1", ("need MAIL command",))
        elif not self.recipients:
            err = Reply(554, "5.5.1", ("no valid recipients",))
        self._start_bdat(cmd, err, events)

    def _start_bdat(self, cmd: BdatCommand, err: Reply | None, events: list[Event]) -> None:
        # RFC 3030 §3: the chunk is read even when the command fails.
        self._bdat_remaining = cmd.size
        self._bdat_size = cmd.size
        self._bdat_last = cmd.last
        self._bdat_reply = err
        self._bdat_prev = self.state
        if err is None:
            self._bdat_used = True
            events.append(BdatStart(cmd.size, cmd.last))
        self.state = State.BDAT

    def _auth(self, cmd: AuthCommand, events: list[Event]) -> None:
        c = self.config
        if not c.auth_mechanisms:
            self._error(Reply(502, "5.5.1", ("AUTH not available",)), events)
        elif not self._auth_offered():
            # RFC 4954 §6: 538 encryption required for requested authentication mechanism.
            self._error(Reply(538, "5.7.11", ("AUTH requires TLS",)), events)
        elif not self.esmtp or self.state != State.READY:
            self._error(Reply(503, "5.5.1", ("AUTH needs EHLO and no transaction",)), events)
        elif self.authenticated:
            # RFC 4954 §4: no second AUTH after a successful one.
            self._error(Reply(503, "5.5.1", ("already authenticated",)), events)
        elif cmd.mechanism not in {m.upper() for m in c.auth_mechanisms}:
            self._error(Reply(504, "5.5.4", ("unrecognized authentication type",)), events)
        else:
            self.pending = Auth(cmd.mechanism, cmd.initial)
