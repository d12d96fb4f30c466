"""IMAP server connection core, sans-I/O (RFC 9051, RFC 3501 and extensions).

:class:`ServerSession` is fed the octets a client sends and hands back typed
events (``kittiwake.imap.events``); the driver acts on each command and
answers it; the session frames lines and literals, enforces limits, keeps
the connection state (RFC 9051 §3) and formats the tagged replies. No
sockets, no store, no clock.

Driver loop::

    session = ServerSession(ServerConfig("mail.example.org"))
    session.greet()
    write(session.data_to_send())
    while not session.closed:
        events = session.receive(await read())
        while events:
            for event in events:
                ...  # answer each event with needs_reply exactly once
            events = session.receive()      # input buffered behind it
        write(session.data_to_send())      # bytes and FileLiteral pieces

Rules the session keeps (easy to break, so written here):

- A synchronising literal ``{n}`` is only invited (``+``) after its size was
  checked, so a refused literal is never sent (RFC 9051 §4.3, RFC 7888 §3).
  A refused non-synchronising literal ``{n+}`` is read and dropped.
- APPEND/REPLACE message literals are never buffered: they leave as
  ``AppendData`` chunks. Every other literal is bounded by
  ``max_literal`` and a whole command by ``max_command``.
- Nothing read after STARTTLS (before ``tls_started()``) or after COMPRESS
  is acted on as plain text (command injection, RFC 9051 §6.2.1).
- ``max_bad_commands`` BAD replies in a row end the session with BYE.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from enum import StrEnum

from kittiwake.imap import commands as c
from kittiwake.imap import responses as r
from kittiwake.imap.codes import Code
from kittiwake.imap.encode import Piece
from kittiwake.imap.events import (
    AppendData,
    AppendEnd,
    AppendStart,
    AuthAborted,
    AuthResponse,
    Closed,
    CloseReason,
    CommandReceived,
    Event,
    IdleDone,
    Rejected,
)
from kittiwake.imap.parser import (
    MESSAGE_PLACEHOLDER,
    AppendProbe,
    CommandError,
    parse_command,
    probe_append,
    read_tag,
)
from kittiwake.imap.responses import ResponseCode

__all__ = ["ALLOWED", "ServerConfig", "ServerSession", "SessionError", "State"]



# Queued runs of octets are joined up to this size (ServerSession.send).
MERGE_MAX = 4096

class State(StrEnum):
    """Connection states of RFC 9051 §3."""

    NOT_AUTHENTICATED = "not-authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


class _Mode(StrEnum):
    """What the input is, beyond the connection state."""

    GREETING = "greeting"  # greet() not called yet
    COMMAND = "command"  # command lines and their small literals
    LITERAL = "literal"  # the octets of a small literal
    APPEND_DATA = "append-data"  # streaming a message literal
    DISCARD = "discard"  # dropping a refused non-synchronising literal
    AUTH = "auth"  # a SASL response line after "+ challenge"
    IDLE = "idle"  # waiting for DONE (RFC 2177)
    STARTTLS = "starttls"  # waiting for tls_started()
    STOPPED = "stopped"  # COMPRESS accepted: the driver takes the rest


_A = State.AUTHENTICATED
_S = State.SELECTED
_N = State.NOT_AUTHENTICATED
_ANY = frozenset((_N, _A, _S))
_AUTHED = frozenset((_A, _S))

# RFC 9051 §6.1-§6.4 (and each extension's section on states): the table
# of which command is allowed in which state.
ALLOWED: dict[type[c.Command], frozenset[State]] = {
    c.Capability: _ANY, c.Noop: _ANY, c.Logout: _ANY, c.Id: _ANY,
    c.StartTLS: frozenset((_N,)), c.Authenticate: frozenset((_N,)),
    c.Login: frozenset((_N,)),
    c.Enable: frozenset((_A,)),  # RFC 5161 §3.1: authenticated state only
    c.Select: _AUTHED, c.Create: _AUTHED, c.Delete: _AUTHED, c.Rename: _AUTHED,
    c.Subscribe: _AUTHED, c.Unsubscribe: _AUTHED, c.List: _AUTHED, c.Lsub: _AUTHED,
    c.Namespace: _AUTHED, c.Status: _AUTHED, c.Append: _AUTHED, c.Idle: _AUTHED,
    c.GetQuota: _AUTHED, c.GetQuotaRoot: _AUTHED, c.SetQuota: _AUTHED,
    c.GetMetadata: _AUTHED, c.SetMetadata: _AUTHED, c.Notify: _AUTHED,
    c.Compress: _AUTHED,
    c.Check: frozenset((_S,)), c.Close: frozenset((_S,)), c.Unselect: frozenset((_S,)),
    c.Expunge: frozenset((_S,)), c.Search: frozenset((_S,)), c.Fetch: frozenset((_S,)),
    c.Store: frozenset((_S,)), c.Copy: frozenset((_S,)), c.Move: frozenset((_S,)),
    c.Sort: frozenset((_S,)), c.Thread: frozenset((_S,)), c.Replace: frozenset((_S,)),
}

_WRONG_STATE = {
    _N: "{name} needs authentication first (LOGIN or AUTHENTICATE)",
    _A: "{name} needs a selected mailbox (SELECT or EXAMINE first)",
    _S: "{name} is not allowed in the selected state",
}
_ALREADY_AUTHED = "{name} is only allowed before authentication; already authenticated"

# RFC 9051 §4.3 / RFC 7888 / RFC 3516: a line ending in a literal announcement.
_LITERAL_AT_END = re.compile(rb"(~?)\{([0-9]{1,20})(\+?)\}$")
# RFC 7888 §4: LITERAL- allows non-synchronising literals up to 4096 octets.
LITERAL_MINUS_MAX = 4096
MAX_LITERAL_LENGTH = 0x7FFFFFFFFFFFFFFF  # RFC 9051 §9 number64


class SessionError(RuntimeError):
    """The driver used the session wrongly (a driver bug, not bad input)."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """What the session offers and enforces."""

    hostname: str
    greeting_text: str = "IMAP4rev2 server ready"
    # RFC 9051 §4 and RFC 7162 §4: lines of at least 8192 octets should be accepted;
    # a client resyncing a big mailbox sends long UID sets, so as Dovecot: 64 KiB.
    max_line: int = 64 * 1024
    max_literal: int = 64 * 1024  # literals other than APPEND messages
    max_command: int = 1024 * 1024  # a whole command with its literals
    max_append: int | None = 100 * 1024 * 1024  # APPENDLIMIT (RFC 7889)
    max_bad_commands: int = 10  # BAD replies in a row, then BYE
    literal_plus: bool = True  # LITERAL+ (RFC 7888); else LITERAL-
    imap4rev1: bool = True
    imap4rev2: bool = True
    starttls: bool = False  # offered before TLS when the driver can do TLS
    auth_mechanisms: tuple[str, ...] = ("PLAIN",)
    login_requires_tls: bool = True  # LOGINDISABLED / PRIVACYREQUIRED without TLS
    extensions: tuple[str, ...] = (
        "ENABLE", "IDLE", "SASL-IR", "BINARY", "UNSELECT", "UIDPLUS", "ESEARCH",
        "SEARCHRES", "MOVE", "UTF8=ACCEPT", "LIST-EXTENDED", "LIST-STATUS", "SPECIAL-USE",
        "CREATE-SPECIAL-USE", "CHILDREN", "NAMESPACE", "ID", "MULTIAPPEND", "CONDSTORE",
        "QRESYNC", "STATUS=SIZE", "QUOTA", "QUOTA=RES-STORAGE", "METADATA", "SAVEDATE",
        "WITHIN", "REPLACE", "PREVIEW", "NOTIFY", "COMPRESS=DEFLATE", "SORT",
        "SORT=DISPLAY", "ESORT", "THREAD=REFERENCES", "THREAD=ORDEREDSUBJECT", "OBJECTID",
        "UIDONLY",
    )


class ServerSession:
    """One IMAP connection's protocol state. See the module docstring."""

    def __init__(self, config: ServerConfig, *, tls: bool = False) -> None:
        self.config = config
        self.tls = tls
        self.state = State.NOT_AUTHENTICATED
        self.utf8 = False  # UTF8=ACCEPT or IMAP4rev2 enabled (RFC 6855, RFC 9051)
        self.enabled_caps: set[str] = set()
        # RFC 7162 §3.1: once on, MODSEQ goes into FETCH and HIGHESTMODSEQ into
        # SELECT responses; set by ENABLE CONDSTORE/QRESYNC and by every
        # CONDSTORE enabling command the session passes to the driver.
        self.condstore = False
        self.bad_in_a_row = 0
        self.pending: Event | None = None
        self._mode = _Mode.GREETING
        self._closed = False
        self._in = bytearray()
        self._out: list[Piece] = []
        self._skip_tail = b""  # the end of an overlong line being dropped
        self._reset_command()

    def _reset_command(self) -> None:
        self._cmd = bytearray()  # the command so far, literals inline
        self._cmd_size = 0
        self._literal_left = 0
        self._messages: list[c.AppendMessage] = []
        self._append: AppendStart | None = None
        self._append_sync = False
        self._discard_rest = False  # after DISCARD, drop the rest of the command
        self._skip_line = False  # discarding an overlong line up to its LF
        self._auth_tag: str | None = None
        self._idle_tag: str | None = None

    # --- state readable by the driver ---

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def uid_only(self) -> bool:
        """ENABLE UIDONLY was accepted (RFC 9586 §3): no message numbers either way."""
        return "UIDONLY" in self.enabled_caps

    def capabilities(self) -> list[str]:
        """What CAPABILITY announces now (RFC 9051 §7.2.2)."""
        cfg = self.config
        caps: list[str] = []
        if cfg.imap4rev1:
            caps.append("IMAP4rev1")
        if cfg.imap4rev2:
            caps.append("IMAP4rev2")
        if self.state == State.NOT_AUTHENTICATED:
            if cfg.starttls and not self.tls:
                caps.append("STARTTLS")
            if cfg.login_requires_tls and not self.tls:
                caps.append("LOGINDISABLED")
            else:
                caps.extend(f"AUTH={m}" for m in cfg.auth_mechanisms)
        caps.append("LITERAL+" if cfg.literal_plus else "LITERAL-")
        for ext in cfg.extensions:
            if ext == "APPENDLIMIT" or ext.startswith("APPENDLIMIT="):
                continue
            caps.append(ext)
        if cfg.max_append is not None:
            caps.append(f"APPENDLIMIT={cfg.max_append}")
        return caps

    # --- output ---

    def data_to_send(self) -> list[Piece]:
        """Output pieces (bytes runs and FileLiterals to copy), then cleared."""
        out, self._out = self._out, []
        return out

    def send(self, data: bytes | list[Piece]) -> None:
        """Queue untagged data (from ``responses``) for the client.

        Runs of octets are joined while short (many short responses make few pieces);
        a large one stays a piece of its own, not copied here (the driver hands
        consecutive pieces to the transport together)."""
        if self._closed:
            return
        pieces = [data] if isinstance(data, bytes) else data
        out = self._out
        for p in pieces:
            if isinstance(p, bytes) and out and isinstance(out[-1], bytes) \
                    and len(out[-1]) + len(p) <= MERGE_MAX:
                out[-1] = out[-1] + p
            else:
                out.append(p)

    def greet(self, *, preauth: bool = False, text: str | None = None) -> None:
        """Queue the greeting: ``* OK [CAPABILITY ...]`` or PREAUTH (RFC 9051 §7.1.4)."""
        if self._mode != _Mode.GREETING:
            raise SessionError("greet() called twice")
        if preauth:
            self.state = State.AUTHENTICATED
        self.send(r.greeting(self.capabilities(), text or self.config.greeting_text, preauth))
        self._mode = _Mode.COMMAND

    def close(self, text: str = "server shutting down") -> None:
        """Driver-initiated end (shutdown, idle timeout): ``* BYE`` and close."""
        if self._closed:
            return
        self.send(r.bye(text))
        self._close(CloseReason.SHUTDOWN, [])

    def receive_eof(self) -> list[Event]:
        if self._closed:
            return []
        events: list[Event] = []
        self._close(CloseReason.EOF, events)
        return events

    def tls_started(self) -> None:
        """The TLS handshake after an accepted STARTTLS finished."""
        if self._mode != _Mode.STARTTLS:
            raise SessionError("tls_started() without an accepted STARTTLS")
        self.tls = True
        self._in.clear()
        self._mode = _Mode.COMMAND

    def take_unprocessed(self) -> bytes:
        """After COMPRESS was accepted: the octets read but not processed
        (already compressed); the driver inflates them and feeds them back,
        then calls ``compression_started()``."""
        data = bytes(self._in)
        self._in.clear()
        return data

    def compression_started(self) -> None:
        if self._mode != _Mode.STOPPED:
            raise SessionError("compression_started() without an accepted COMPRESS")
        self._mode = _Mode.COMMAND

    def _close(self, reason: CloseReason, events: list[Event]) -> None:
        self._closed = True
        self.state = State.LOGOUT
        self.pending = None
        self._in.clear()
        events.append(Closed(reason))

    # --- answering events ---

    def ok(self, text: str = "", code: Code | ResponseCode | None = None) -> None:
        self._answer("OK", text, code)

    def no(self, text: str = "", code: Code | ResponseCode | None = None) -> None:
        self._answer("NO", text, code)

    def bad(self, text: str = "", code: Code | ResponseCode | None = None) -> None:
        self._answer("BAD", text, code)

    def _answer(self, status: str, text: str, code: Code | ResponseCode | None) -> None:
        ev = self.pending
        if ev is None:
            raise SessionError(f"{status} without a pending event")
        self.pending = None
        ok = status == "OK"
        if isinstance(ev, AppendStart):
            if ok:
                raise SessionError("use accept_literal() to take an APPEND message")
            self._refuse_append(ev.tag, status, text, code)
            return
        assert isinstance(ev, CommandReceived | AuthResponse | IdleDone)
        tag = ev.tag
        cmd = ev.command if isinstance(ev, CommandReceived) else None
        name = cmd.name if cmd is not None else ("IDLE" if isinstance(ev, IdleDone)
                                                 else "AUTHENTICATE")
        self._mode = _Mode.COMMAND
        self._auth_tag = None
        if ok and isinstance(ev, AuthResponse):
            self.state = State.AUTHENTICATED
        elif isinstance(cmd, c.Logout):
            if not ok:
                raise SessionError("LOGOUT is always answered OK")
            self.send(r.bye("logging out"))
            self.send(r.tagged(tag, "OK", text or "LOGOUT completed", code))
            self._close(CloseReason.LOGOUT, [])
            return
        elif isinstance(cmd, c.Login | c.Authenticate) and ok:
            self.state = State.AUTHENTICATED
        elif isinstance(cmd, c.Select):
            # RFC 9051 §6.3.2: a failed SELECT leaves no mailbox selected.
            self.state = State.SELECTED if ok else State.AUTHENTICATED
        elif isinstance(cmd, c.Close | c.Unselect) and ok:
            self.state = State.AUTHENTICATED
        elif isinstance(cmd, c.StartTLS) and ok:
            self._mode = _Mode.STARTTLS
            self._in.clear()  # RFC 9051 §6.2.1: nothing sent before TLS counts
        elif isinstance(cmd, c.Compress) and ok:
            self._mode = _Mode.STOPPED
        self.send(r.tagged(tag, status, text or f"{name} completed", code))
        if status == "BAD":
            self._count_bad([])
        else:
            self.bad_in_a_row = 0

    def challenge(self, data: bytes) -> None:
        """Send a SASL challenge (``+ base64``, RFC 9051 §6.2.2) for the
        pending AUTHENTICATE; the reply comes as :class:`AuthResponse`."""
        ev = self.pending
        if not (isinstance(ev, CommandReceived) and isinstance(ev.command, c.Authenticate)) \
                and not isinstance(ev, AuthResponse):
            raise SessionError("challenge() without a pending AUTHENTICATE")
        self.pending = None
        self._auth_tag = ev.tag
        self._mode = _Mode.AUTH
        self.send(r.continuation(data=data))

    def idle(self, text: str = "idling") -> None:
        """Start IDLE (RFC 2177 §3): ``+ idling``; untagged data may be sent
        until DONE arrives as :class:`IdleDone`."""
        ev = self.pending
        if not (isinstance(ev, CommandReceived) and isinstance(ev.command, c.Idle)):
            raise SessionError("idle() without a pending IDLE")
        self.pending = None
        self._idle_tag = ev.tag
        self._mode = _Mode.IDLE
        self.send(r.continuation(text))

    def enabled(self, caps: list[str]) -> None:
        """Answer ENABLE (RFC 5161 §3.1): ``* ENABLED caps`` and OK. Enabling
        UTF8=ACCEPT or IMAP4rev2 switches mailbox names to UTF-8."""
        ev = self.pending
        if not (isinstance(ev, CommandReceived) and isinstance(ev.command, c.Enable)):
            raise SessionError("enabled() without a pending ENABLE")
        new = [x for x in caps if x.upper() not in self.enabled_caps]
        self.enabled_caps.update(x.upper() for x in new)
        if self.enabled_caps & {"CONDSTORE", "QRESYNC"}:
            self.condstore = True  # RFC 7162 §3.2.3: QRESYNC implies CONDSTORE
        if self.enabled_caps & {"UTF8=ACCEPT", "IMAP4REV2"}:
            self.utf8 = True
        self.send(r.enabled(new))
        self.ok()

    def accept_literal(self) -> None:
        """Take the announced APPEND/REPLACE message (see :class:`AppendStart`)."""
        ev = self.pending
        if not isinstance(ev, AppendStart):
            raise SessionError("accept_literal() without a pending AppendStart")
        self.pending = None
        if self._append_sync:
            self.send(r.continuation("Ready for literal data"))
        self._mode = _Mode.APPEND_DATA
        self._literal_left = ev.size

    def _refuse_append(self, tag: str, status: str, text: str,
                       code: Code | ResponseCode | None) -> None:
        self.send(r.tagged(tag, status, text or "APPEND refused", code))
        sync = self._append_sync
        left = self._append.size if self._append else 0
        self._reset_command()
        if sync:
            self._mode = _Mode.COMMAND
        else:
            self._discard(left)
        if status == "BAD":
            self._count_bad([])

    # --- input ---

    def receive(self, data: bytes = b"") -> list[Event]:
        """Add client octets; return the events they complete. Stops after an
        event that needs a reply; answer it and call ``receive()`` again."""
        if self._closed:
            return []
        if self._mode in (_Mode.STARTTLS, _Mode.STOPPED):
            if self._mode == _Mode.STOPPED:
                self._in += data
            return []
        self._in += data
        if self._mode == _Mode.GREETING:
            return []
        events: list[Event] = []
        while self.pending is None and not self._closed and \
                self._mode not in (_Mode.STARTTLS, _Mode.STOPPED):
            if self._mode == _Mode.LITERAL:
                progressed = self._read_literal()
            elif self._mode == _Mode.APPEND_DATA:
                progressed = self._read_append(events)
            elif self._mode == _Mode.DISCARD:
                progressed = self._read_discard()
            else:
                progressed = self._read_line(events)
            if not progressed:
                break
        return events

    def _read_literal(self) -> bool:
        n = min(self._literal_left, len(self._in))
        if n == 0:
            return False
        self._cmd += self._in[:n]
        del self._in[:n]
        self._literal_left -= n
        if self._literal_left == 0:
            self._mode = _Mode.COMMAND
        return True

    def _read_append(self, events: list[Event]) -> bool:
        n = min(self._literal_left, len(self._in))
        if n:
            events.append(AppendData(bytes(self._in[:n])))
            del self._in[:n]
            self._literal_left -= n
        if self._literal_left:
            return False
        ev = self._append
        assert ev is not None
        events.append(AppendEnd(ev.size))
        self._messages.append(c.AppendMessage(ev.flags, ev.internal_date, ev.size,
                                              ev.binary, ev.utf8))
        self._cmd += MESSAGE_PLACEHOLDER
        self._append = None
        self._mode = _Mode.COMMAND
        return True

    def _discard(self, n: int) -> None:
        self._literal_left = n
        self._discard_rest = True
        self._mode = _Mode.DISCARD

    def _read_discard(self) -> bool:
        n = min(self._literal_left, len(self._in))
        del self._in[:n]
        self._literal_left -= n
        if self._literal_left:
            return False
        self._mode = _Mode.COMMAND
        return True

    def _read_line(self, events: list[Event]) -> bool:
        buf = self._in
        nl = buf.find(b"\n")
        limit = self.config.max_line
        if nl < 0:
            if len(buf) > limit and not self._skip_line:
                # Too long: answer now from its first octets, drop it to its LF.
                self._skip_line = True
                self._skip_tail = bytes(buf[-32:])
                tag = self._line_tag(bytes(buf[:100]))
                buf.clear()
                self._reject(tag, f"line longer than {limit} octets", events,
                             code=Code.TOOBIG)
            elif self._skip_line:
                self._skip_tail = (self._skip_tail + bytes(buf))[-32:]
                buf.clear()
            return False
        line = bytes(buf[:nl])
        del buf[:nl + 1]
        if line.endswith(b"\r"):
            line = line[:-1]
        if self._skip_line:
            self._skip_line = False
            tail = (self._skip_tail + line)[-32:]
            self._after_dropped_line(tail)
            return True
        if len(line) > limit:
            tag = self._line_tag(line[:100])
            self._reject(tag, f"line longer than {limit} octets", events, code=Code.TOOBIG)
            self._after_dropped_line(line[-32:])
            return True
        if self._discard_rest:
            self._after_dropped_line(line)
            return True
        if self._mode == _Mode.AUTH:
            self._auth_line(line, events)
        elif self._mode == _Mode.IDLE:
            self._idle_line(line, events)
        else:
            self._command_line(line, events)
        return True

    def _line_tag(self, start: bytes) -> str | None:
        """The tag a reply to the line being read goes to."""
        if self._mode == _Mode.AUTH:
            return self._auth_tag
        if self._mode == _Mode.IDLE:
            return self._idle_tag
        return read_tag(bytes(self._cmd) + start)

    def _after_dropped_line(self, tail: bytes) -> None:
        """The rest of a refused command: its non-synchronising literals are
        dropped too (the client sends them regardless)."""
        m = _LITERAL_AT_END.search(tail)
        if m and m.group(3):
            self._discard(int(m.group(2)))
        else:
            self._reset_command()
            if self._mode in (_Mode.AUTH, _Mode.IDLE, _Mode.DISCARD):
                self._mode = _Mode.COMMAND

    def _auth_line(self, line: bytes, events: list[Event]) -> None:
        tag = self._auth_tag or "*"
        self._mode = _Mode.COMMAND
        self._auth_tag = None
        if line == b"*":
            # RFC 9051 §6.2.2: "*" cancels; the server answers BAD.
            resp = r.tagged(tag, "BAD", "authentication cancelled")
            self.send(resp)
            events.append(AuthAborted(tag, "cancelled by the client"))
            return
        try:
            data = base64.b64decode(line, validate=True) if line else b""
        except (binascii.Error, ValueError):
            self.send(r.tagged(tag, "BAD", "invalid base64 in the SASL response"))
            events.append(AuthAborted(tag, "invalid base64"))
            self._count_bad(events)
            return
        self.pending = AuthResponse(tag, data)
        events.append(self.pending)

    def _idle_line(self, line: bytes, events: list[Event]) -> None:
        tag = self._idle_tag or "*"
        self._idle_tag = None
        self._mode = _Mode.COMMAND
        if line.upper() == b"DONE":
            self.pending = IdleDone(tag)
            events.append(self.pending)
            return
        self._reject(tag, "expected DONE to end IDLE (RFC 2177 §3)", events)

    def _command_line(self, line: bytes, events: list[Event]) -> None:
        if b"\0" in line:
            tag = read_tag(bytes(self._cmd) + line)
            self._reject(tag, "NUL octet in a command line", events)
            self._after_dropped_line(line[-32:])
            return
        self._cmd_size += len(line) + 2
        m = _LITERAL_AT_END.search(line)
        if m is None:
            if not self._cmd and not line:
                self._reject(None, "empty command line", events)
                return
            self._cmd += line
            self._complete(events)
            return
        binary = bool(m.group(1))
        size = int(m.group(2))
        sync = not m.group(3)
        head = line[:m.start()]
        self._cmd += head
        cmd_so_far = bytes(self._cmd)
        tag = read_tag(cmd_so_far)
        try:
            probe = probe_append(cmd_so_far, utf8=self.utf8)
        except CommandError as e:
            self._refuse_literal(e.tag, e.reason, sync, size, events, e.code)
            return
        if size > MAX_LITERAL_LENGTH:
            # RFC 9051 §9: number64; a bigger literal cannot be read or skipped.
            self._reject(tag, "literal length out of range", events)
            if not self._closed:
                self.send(r.bye("cannot continue after a literal of impossible length"))
                self._close(CloseReason.PROTOCOL, events)
            return
        if not sync and not self.config.literal_plus and size > LITERAL_MINUS_MAX:
            # RFC 7888 §4: LITERAL- servers refuse bigger {n+} with BAD [TOOBIG].
            self._refuse_literal(tag, f"non-synchronising literals are limited to "
                                 f"{LITERAL_MINUS_MAX} octets (LITERAL-)", sync, size,
                                 events, Code.TOOBIG)
            return
        if probe is not None and probe.is_message:
            assert tag is not None
            kind = c.Append if probe.command == "APPEND" else c.Replace
            reason = self._state_error(kind, probe.command)
            if reason is None and kind is c.Replace and "UIDONLY" in self.enabled_caps \
                    and not cmd_so_far[len(tag) + 1:].upper().startswith(b"UID "):
                reason = "REPLACE with a message number after ENABLE UIDONLY; use UID REPLACE"
                self._refuse_literal(tag, reason, sync, size, events, Code.UIDREQUIRED)
                return
            if reason is not None:
                self._refuse_literal(tag, reason, sync, size, events)
                return
            self._start_message(tag, probe, size, binary, sync, events)
            return
        if binary and (tag is None or not cmd_so_far[len(tag) + 1:].upper().startswith(
                b"SETMETADATA ")):
            self._refuse_literal(tag, "literal8 (~{n}) is only allowed for message data "
                                 "(RFC 3516 §4.2)", sync, size, events)
            return
        if size > self.config.max_literal or self._cmd_size + size > self.config.max_command:
            self._refuse_literal(tag, f"literal of {size} octets is too large (at most "
                                 f"{self.config.max_literal})", sync, size, events, Code.TOOBIG)
            return
        self._cmd += m.group(0) + b"\r\n"
        self._cmd_size += size
        if sync:
            self.send(r.continuation("Ready for literal data"))
        self._literal_left = size
        self._mode = _Mode.LITERAL if size else _Mode.COMMAND

    def _start_message(self, tag: str, probe: AppendProbe, size: int, binary: bool,
                       sync: bool, events: list[Event]) -> None:
        if probe.utf8 and not binary:
            self._refuse_literal(tag, "UTF8 (...) takes a literal8 (~{n}) (RFC 6855 §4)",
                                 sync, size, events)
            return
        limit = self.config.max_append
        if limit is not None and size > limit:
            # RFC 7889: NO [TOOBIG] before the client sends the message.
            self._refuse_literal(tag, f"message of {size} octets exceeds the limit of "
                                 f"{limit}", sync, size, events, Code.TOOBIG, status="NO")
            return
        ev = AppendStart(tag, probe.command, probe.mailbox, len(self._messages), size,
                         probe.flags, probe.internal_date, binary, probe.utf8)
        self._append = ev
        self._append_sync = sync
        self.pending = ev
        events.append(ev)

    def _refuse_literal(self, tag: str | None, reason: str, sync: bool, size: int,
                        events: list[Event], code: Code | None = None,
                        status: str = "BAD") -> None:
        """Refuse the command at a literal announcement, before its octets."""
        self._reject(tag, reason, events, code=code, status=status)
        self._reset_command()
        if not sync:
            self._discard(size)

    def _complete(self, events: list[Event]) -> None:
        data = bytes(self._cmd)
        messages = tuple(self._messages)
        self._reset_command()
        try:
            tag, cmd = parse_command(data, utf8=self.utf8, messages=messages)
        except CommandError as e:
            self._reject(e.tag, e.reason, events, status=e.status,
                         code=ResponseCode(e.code, e.code_args) if e.code else None)
            return
        reason = self._state_error(type(cmd), cmd.name)
        if reason is not None:
            self._reject(tag, reason, events)
            return
        if self.uid_only and _uses_message_numbers(cmd):
            # RFC 9586 §3: after ENABLE UIDONLY, message numbers are refused.
            self._reject(tag, f"{cmd.name} with message numbers after ENABLE UIDONLY; "
                         "use UIDs", events, code=Code.UIDREQUIRED)
            return
        qresync_use = _qresync_use(cmd)
        if qresync_use and "QRESYNC" not in self.enabled_caps:
            # RFC 7162 §3.2.3, §3.2.5, §3.2.6: QRESYNC must be enabled first.
            self._reject(tag, f"{qresync_use} needs ENABLE QRESYNC first", events)
            return
        if _enables_condstore(cmd):
            # RFC 7162 §3.1: a CONDSTORE enabling command turns it on for good.
            self.condstore = True
        if isinstance(cmd, c.Login) and self.config.login_requires_tls and not self.tls:
            # RFC 9051 §6.2.3: LOGINDISABLED; RFC 5530 PRIVACYREQUIRED.
            self._reject(tag, "LOGIN needs TLS first (STARTTLS)", events,
                         code=Code.PRIVACYREQUIRED, status="NO")
            return
        self.pending = CommandReceived(tag, cmd)
        events.append(self.pending)

    def _state_error(self, kind: type[c.Command], name: str) -> str | None:
        """Why ``kind`` is not allowed in the current state (the ALLOWED table)."""
        allowed = ALLOWED.get(kind, _ANY)
        if self.state in allowed:
            return None
        if self.state in _AUTHED and allowed == frozenset((_N,)):
            return _ALREADY_AUTHED.format(name=name)
        if kind is c.Enable and self.state == _S:
            return "ENABLE is only allowed in the authenticated state (RFC 5161 §3.1)"
        return _WRONG_STATE[self.state].format(name=name)

    def _reject(self, tag: str | None, reason: str, events: list[Event], *,
                code: Code | ResponseCode | None = None, status: str = "BAD") -> None:
        resp = r.tagged(tag or "*", status, reason, code)
        self.send(resp)
        events.append(Rejected(tag, reason, resp))
        if status == "BAD":
            self._count_bad(events)
        else:
            self.bad_in_a_row = 0

    def _count_bad(self, events: list[Event]) -> None:
        self.bad_in_a_row += 1
        if self.bad_in_a_row >= self.config.max_bad_commands:
            self.send(r.bye("too many invalid commands"))
            self._close(CloseReason.TOO_MANY_ERRORS, events)


_NUMBERED = (c.Fetch, c.Store, c.Copy, c.Move, c.Search, c.Sort, c.Thread, c.Replace)


def _uses_message_numbers(cmd: c.Command) -> bool:
    """Whether a command names messages by sequence number (RFC 9586 §3), the
    QRESYNC sequence match data of SELECT/EXAMINE included."""
    if isinstance(cmd, c.Select):
        return cmd.qresync is not None and cmd.qresync.seq_match is not None
    if not isinstance(cmd, _NUMBERED):
        return False
    if not cmd.uid:
        return True
    key = cmd.criteria if isinstance(cmd, c.Search) else \
        cmd.search if isinstance(cmd, c.Sort | c.Thread) else None
    return key is not None and _key_has_numbers(key)


def _key_has_numbers(key: c.SearchKey) -> bool:
    return any(isinstance(k, c.SearchSequence) and not k.uid and not k.set.saved
               for k in c.search_keys(key))


def _qresync_use(cmd: c.Command) -> str | None:
    """The QRESYNC-only syntax a command uses, if any (RFC 7162 §3.2)."""
    if isinstance(cmd, c.Select) and cmd.qresync is not None:
        return f"{cmd.name} (QRESYNC ...)"
    if isinstance(cmd, c.Fetch) and cmd.vanished:
        return "FETCH (VANISHED)"
    return None


def _enables_condstore(cmd: c.Command) -> bool:
    """CONDSTORE enabling commands (RFC 7162 §3.1)."""
    if isinstance(cmd, c.Select):
        return cmd.condstore or cmd.qresync is not None
    if isinstance(cmd, c.Fetch):
        return cmd.changed_since is not None or c.FetchAttr("MODSEQ") in cmd.items
    if isinstance(cmd, c.Store):
        return cmd.unchanged_since is not None
    if isinstance(cmd, c.Search):
        return _key_has(cmd.criteria, c.SearchModSeq)
    if isinstance(cmd, c.Sort | c.Thread):
        return _key_has(cmd.search, c.SearchModSeq)
    if isinstance(cmd, c.Status):
        return "HIGHESTMODSEQ" in cmd.items
    return False


def _key_has(key: c.SearchKey, kind: type[c.SearchKey]) -> bool:
    return any(isinstance(k, kind) for k in c.search_keys(key))
