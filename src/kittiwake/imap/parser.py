"""IMAP command parser (RFC 9051 §9 grammar, RFC 3501 §9 where rev1 differs).

:func:`parse_command` takes one whole command, without its final CRLF, with
its literals inline (``{n}CRLF`` and the n octets, as the client sent them)
and returns ``(tag, command)``, or raises :class:`CommandError` with the tag
(when one was read), a human reason and, where RFC 5530 or an extension has
one, a response code. It never raises anything else, whatever the octets.

APPEND and REPLACE message literals are not inline: the session streams them
and leaves a NUL octet in their place (NUL cannot occur in a command line,
RFC 9051 §9 ``CHAR8``). :func:`probe_append` tells the session, at a literal
announcement, whether that literal is a message (and with which flags and
date) before its octets arrive.

Extensions whose syntax is parsed here: LITERAL+/LITERAL- (RFC 7888),
SASL-IR (RFC 4959), BINARY (RFC 3516), UIDPLUS (RFC 4315), ESEARCH (RFC
4731), SEARCHRES (RFC 5182), MOVE (RFC 6851), UTF8=ACCEPT (RFC 6855),
LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819), SPECIAL-USE and
CREATE-SPECIAL-USE (RFC 6154), ID (RFC 2971), ENABLE (RFC 5161), MULTIAPPEND
(RFC 3502), CONDSTORE/QRESYNC (RFC 7162), STATUS=SIZE (RFC 8438), QUOTA (RFC
9208), METADATA (RFC 5464), SAVEDATE (RFC 8514), WITHIN (RFC 5032), REPLACE
(RFC 8508), PREVIEW (RFC 8970), NOTIFY (RFC 5465), COMPRESS (RFC 4978), SORT
and THREAD (RFC 5256), SORT=DISPLAY (RFC 5957), ESORT (RFC 5267), OBJECTID
(RFC 8474), UNSELECT (RFC 3691), IDLE (RFC 2177), NAMESPACE (RFC 2342).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from kittiwake.imap import commands as c
from kittiwake.imap.codes import Code
from kittiwake.imap.mutf7 import MUTF7Error
from kittiwake.imap.mutf7 import decode as mutf7_decode
from kittiwake.imap.section import Partial, Section, SectionText

__all__ = [
    "MESSAGE_PLACEHOLDER",
    "SEARCH_CHARSETS",
    "AppendProbe",
    "CommandError",
    "decode_mailbox",
    "parse_command",
    "parse_sequence_set",
    "probe_append",
    "read_tag",
]

MESSAGE_PLACEHOLDER = b"\0"

_MAX_NUMBER = 0xFFFFFFFF  # RFC 9051 §9 number: 32 bits
_MAX_NUMBER64 = 0x7FFFFFFFFFFFFFFF  # RFC 9051 §9 number64: 63 bits
_MAX_DEPTH = 64
_T = TypeVar("_T")  # nesting of search keys and lists, against stack exhaustion


class CommandError(Exception):
    """A command that cannot be carried out as sent.

    ``status`` is ``BAD`` (syntax, RFC 9051 §7.1.5) or ``NO`` (understood but
    refused, e.g. an unknown CHARSET, RFC 9051 §6.4.4). ``tag`` is None when
    no tag could be read (the reply is then an untagged ``* BAD``).
    """

    def __init__(self, reason: str, *, tag: str | None = None, code: Code | None = None,
                 status: str = "BAD", args: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.tag = tag
        self.code = code
        self.status = status
        self.code_args = args  # e.g. the charsets of BADCHARSET


# RFC 9051 §9: atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards /
# quoted-specials / resp-specials.
_ATOM_SPECIALS = frozenset(b'(){ %*"\\]') | frozenset(range(0x20)) | {0x7F}
_ASTRING_SPECIALS = _ATOM_SPECIALS - {ord("]")}
_LIST_SPECIALS = _ASTRING_SPECIALS - {ord("%"), ord("*")}
_TAG_SPECIALS = _ASTRING_SPECIALS | {ord("+")}

_MONTHS = {m: i + 1 for i, m in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))}


class _Reader:
    """A cursor over one command's octets, with the RFC 9051 §9 primitives."""

    def __init__(self, data: bytes, utf8: bool) -> None:
        self.data = data
        self.pos = 0
        self.utf8 = utf8
        self.depth = 0
        self.name = ""  # the command verb, upper case
        self.messages: list[c.AppendMessage] = []  # streamed APPEND messages

    # --- low level ---

    def fail(self, reason: str, code: Code | None = None) -> CommandError:
        return CommandError(reason, code=code)

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def peek(self, n: int = 1) -> bytes:
        return self.data[self.pos:self.pos + n]

    def peek_upper(self, word: bytes) -> bool:
        return self.data[self.pos:self.pos + len(word)].upper() == word

    def take(self, word: bytes) -> bool:
        """Consume ``word`` (case-insensitive) if it is next."""
        if self.peek_upper(word):
            self.pos += len(word)
            return True
        return False

    def expect(self, word: bytes, what: str | None = None) -> None:
        if not self.take(word):
            raise self.fail(f"expected {what or repr(word.decode())} {self.where()}")

    def sp(self) -> None:
        if self.peek() != b" ":
            raise self.fail(f"expected a space {self.where()}")
        self.pos += 1

    def take_sp(self) -> bool:
        if self.peek() == b" ":
            self.pos += 1
            return True
        return False

    def end(self) -> None:
        if not self.at_end():
            raise self.fail(f"unexpected {self._show()} at the end of the command")

    def where(self) -> str:
        if self.at_end():
            return "at the end of the command"
        return f"at {self._show()}"

    def _show(self) -> str:
        frag = self.data[self.pos:self.pos + 12]
        text = frag.decode("ascii", "backslashreplace")
        if len(self.data) - self.pos > 12:
            text += "..."
        return repr(text)

    def enter(self) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise CommandError(f"nested more than {_MAX_DEPTH} levels deep", code=Code.LIMIT)

    def leave(self) -> None:
        self.depth -= 1

    # --- RFC 9051 §9 primitives ---

    def run(self, specials: frozenset[int], allow_8bit: bool) -> bytes:
        start = self.pos
        d = self.data
        while self.pos < len(d):
            b = d[self.pos]
            if b in specials:
                break
            if b >= 0x80 and not allow_8bit:
                raise self.fail("8-bit octet outside a string; use a quoted string or literal")
            self.pos += 1
        return d[start:self.pos]

    def atom(self, what: str = "an atom") -> str:
        raw = self.run(_ATOM_SPECIALS, False)
        if not raw:
            raise self.fail(f"expected {what} {self.where()}")
        return raw.decode("ascii")

    def number(self, what: str = "a number", limit: int = _MAX_NUMBER, nz: bool = False) -> int:
        start = self.pos
        d = self.data
        while self.pos < len(d) and 0x30 <= d[self.pos] <= 0x39:
            self.pos += 1
            if self.pos - start > 20:
                raise self.fail(f"{what} is too large")
        if self.pos == start:
            raise self.fail(f"expected {what} {self.where()}")
        n = int(d[start:self.pos])
        if n > limit:
            raise self.fail(f"{what} {n} is too large (at most {limit})")
        if nz and n == 0:
            raise self.fail(f"{what} must not be zero")
        return n

    def quoted(self) -> bytes:
        # quoted = DQUOTE *QUOTED-CHAR DQUOTE; "\" only before "\" or DQUOTE.
        self.pos += 1
        out = bytearray()
        d = self.data
        while True:
            if self.pos >= len(d):
                raise self.fail("quoted string without its closing '\"'")
            b = d[self.pos]
            self.pos += 1
            if b == 0x22:
                return bytes(out)
            if b == 0x5C:
                if self.pos >= len(d) or d[self.pos] not in b'"\\':
                    raise self.fail("in a quoted string, '\\' may only escape '\\' or '\"'")
                out.append(d[self.pos])
                self.pos += 1
            elif b in b"\r\n\0":
                raise self.fail("CR, LF or NUL in a quoted string; use a literal")
            else:
                out.append(b)

    def literal(self, binary_ok: bool = False) -> tuple[bytes, bool]:
        """``{n}`` / ``{n+}`` / ``~{n}`` CRLF octets; returns (octets, binary)."""
        binary = self.take(b"~")
        if binary and not binary_ok:
            raise self.fail("a literal8 (~{n}) is not allowed here (RFC 3516 §4.2)")
        self.expect(b"{")
        n = self.number("the literal length", _MAX_NUMBER64)
        self.take(b"+")
        self.expect(b"}")
        if self.peek(2) != b"\r\n":
            raise self.fail("a literal's '}' must end the line (CRLF)")
        self.pos += 2
        if self.pos + n > len(self.data):
            raise self.fail("literal shorter than announced")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        if not binary and b"\0" in out:
            raise self.fail("NUL in a literal; only a literal8 may hold NUL (RFC 3516)")
        return out, binary

    def is_literal_next(self) -> bool:
        return self.peek() == b"{" or self.peek(2) == b"~{"

    def string(self, what: str = "a string") -> bytes:
        p = self.peek()
        if p == b'"':
            return self.quoted()
        if p == b"{":
            return self.literal()[0]
        raise self.fail(f"expected {what} (quoted or literal) {self.where()}")

    def astring(self, what: str = "a string") -> bytes:
        p = self.peek()
        if p in (b'"', b"{"):
            return self.string(what)
        if self.peek(2) == b"~{":
            return self.literal()[0]  # refused with its reason
        raw = self.run(_ASTRING_SPECIALS, self.utf8)
        if not raw:
            raise self.fail(f"expected {what} {self.where()}")
        return raw

    def nstring(self) -> bytes | None:
        if self.take_nil():
            return None
        return self.string()

    def take_nil(self) -> bool:
        if self.peek_upper(b"NIL") and (len(self.data) == self.pos + 3
                                        or self.data[self.pos + 3] in _ATOM_SPECIALS):
            self.pos += 3
            return True
        return False

    def text(self, raw: bytes, what: str) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"{what} is not valid UTF-8") from None

    def mailbox(self, what: str = "a mailbox name") -> str:
        return decode_mailbox(self.astring(what), self.utf8)

    def list_mailbox(self) -> str:
        p = self.peek()
        if p in (b'"', b"{"):
            raw = self.string("a mailbox pattern")
        else:
            raw = self.run(_LIST_SPECIALS, self.utf8)
            if not raw:
                raise self.fail(f"expected a mailbox pattern {self.where()}")
        return decode_mailbox(raw, self.utf8, inbox=False)

    def paren_list(self, item: Callable[[], _T], *, empty_ok: bool = True,
                   what: str = "a list") -> list[_T]:
        if not self.take(b"("):
            raise self.fail(f"expected {what} in parentheses {self.where()}")
        self.enter()
        out: list[_T] = []
        if not self.take(b")"):
            while True:
                out.append(item())
                if self.take(b")"):
                    break
                self.sp()
        elif not empty_ok:
            raise self.fail(f"{what} must not be empty")
        self.leave()
        return out

    def flag(self) -> str:
        if self.take(b"\\"):
            name = self.atom("a flag name after '\\'")
            return c.norm_flag("\\" + name)
        return self.atom("a flag")

    def flag_list(self) -> tuple[str, ...]:
        return tuple(self.paren_list(self.flag, what="a flag list"))

    def sequence_set(self) -> c.SequenceSet:
        if self.take(b"$"):
            return c.SequenceSet(saved=True)
        ranges: list[tuple[int | None, int | None]] = []
        while True:
            a = self.seq_number()
            b = self.seq_number() if self.take(b":") else a
            ranges.append((a, b))
            if not self.take(b","):
                break
        return c.SequenceSet(tuple(ranges))

    def seq_number(self) -> int | None:
        if self.take(b"*"):
            return None
        return self.number("a message number or UID", nz=True)

    def date(self) -> dt.date:
        quoted = self.take(b'"')
        day = self.number("the day of a date", 31)
        self.expect(b"-")
        mon = _MONTHS.get(self.peek(3).upper().decode("latin-1"))
        if mon is None:
            raise self.fail(f"expected a month name (Jan...Dec) {self.where()}")
        self.pos += 3
        self.expect(b"-")
        start = self.pos
        year = self.number("the year of a date", 9999)
        if self.pos - start != 4:
            raise self.fail("the year of a date has four digits")
        if quoted:
            self.expect(b'"')
        try:
            return dt.date(year, mon, day)
        except ValueError:
            raise self.fail(f"no such date: {day}-{mon}-{year}") from None

    def date_time(self) -> dt.datetime:
        # date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP
        #             time SP zone DQUOTE (RFC 9051 §9)
        self.expect(b'"', "a date-time in quotes")
        if self.take(b" "):
            pass
        day = self.number("the day of a date-time", 31)
        self.expect(b"-")
        mon = _MONTHS.get(self.peek(3).upper().decode("latin-1"))
        if mon is None:
            raise self.fail(f"expected a month name (Jan...Dec) {self.where()}")
        self.pos += 3
        self.expect(b"-")
        year = self.number("the year", 9999)
        self.sp()
        hh = self._two("hour")
        self.expect(b":")
        mm = self._two("minute")
        self.expect(b":")
        ss = self._two("second")
        self.sp()
        sign = self.peek()
        if sign not in (b"+", b"-"):
            raise self.fail(f"expected a zone (+hhmm or -hhmm) {self.where()}")
        self.pos += 1
        zone = self.data[self.pos:self.pos + 4]
        if len(zone) != 4 or not zone.isdigit():
            raise self.fail("a zone is four digits (+hhmm)")
        self.pos += 4
        self.expect(b'"')
        offset = dt.timedelta(hours=int(zone[:2]), minutes=int(zone[2:]))
        if offset >= dt.timedelta(days=1):
            raise self.fail("zone offset out of range")
        try:
            tz = dt.timezone(-offset if sign == b"-" else offset)
            return dt.datetime(year, mon, day, hh, mm, ss, tzinfo=tz)
        except ValueError:
            raise self.fail("no such date-time") from None

    def _two(self, what: str) -> int:
        raw = self.data[self.pos:self.pos + 2]
        if len(raw) != 2 or not raw.isdigit():
            raise self.fail(f"expected two digits of the {what} {self.where()}")
        self.pos += 2
        return int(raw)


def decode_mailbox(raw: bytes, utf8: bool, *, inbox: bool = True) -> str:
    """A mailbox name from the wire (RFC 9051 §5.1): UTF-8 when UTF-8 is
    enabled (IMAP4rev2 / UTF8=ACCEPT, RFC 6855 §3) or when the name holds
    8-bit octets that are valid UTF-8; else strict modified UTF-7 (RFC 3501
    §5.1.3). ``INBOX`` in any case is ``INBOX``."""
    if utf8 or not raw.isascii():
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CommandError("mailbox name is not valid UTF-8") from None
    else:
        try:
            name = mutf7_decode(raw)
        except MUTF7Error as e:
            raise CommandError(f"mailbox name {raw.decode('ascii', 'backslashreplace')!r}: "
                               f"{e}") from None
    if any(ch < " " or ch == "\x7f" for ch in name):
        raise CommandError("control character in a mailbox name")
    if inbox and name.upper() == "INBOX":
        return "INBOX"
    return name


def read_tag(data: bytes) -> str | None:
    """The tag at the start of a command, or None when there is none."""
    end = 0
    while end < len(data) and data[end] not in _TAG_SPECIALS and data[end] < 0x80:
        end += 1
    if end == 0 or (end < len(data) and data[end] != 0x20) or end > 64:
        return None
    return data[:end].decode("ascii")


def parse_sequence_set(text: str) -> c.SequenceSet:
    """Parse a sequence set on its own (for drivers and tests)."""
    r = _Reader(text.encode("ascii", "replace"), False)
    s = r.sequence_set()
    r.end()
    return s


# --- the command table -----------------------------------------------------

_Parse = Callable[[_Reader, bool], c.Command]
_COMMANDS: dict[str, _Parse] = {}
_UID_COMMANDS = {"FETCH", "STORE", "COPY", "MOVE", "SEARCH", "EXPUNGE", "SORT", "THREAD",
                 "REPLACE"}


def _command(*names: str) -> Callable[[_Parse], _Parse]:
    def deco(fn: _Parse) -> _Parse:
        for n in names:
            _COMMANDS[n] = fn
        return fn
    return deco


def parse_command(data: bytes, *, utf8: bool = False,
                  messages: tuple[c.AppendMessage, ...] = ()) -> tuple[str, c.Command]:
    """Parse one command (see the module docstring). ``messages`` are the
    APPEND/REPLACE messages the session streamed, in order."""
    tag = read_tag(data)
    if tag is None:
        raise CommandError("a command starts with a tag (letters, digits, no '+'), then a space")
    try:
        r = _Reader(data, utf8)
        r.pos = len(tag) + 1
        r.messages = list(messages)
        name = r.atom("a command name").upper()
        uid = False
        if name == "UID":
            r.sp()
            name = r.atom("a command after UID").upper()
            if name not in _UID_COMMANDS:
                raise CommandError(f"UID {name} is not a command (UID goes with "
                                   "FETCH, STORE, COPY, MOVE, SEARCH, EXPUNGE, SORT, "
                                   "THREAD, REPLACE)")
            uid = True
        r.name = name
        parse = _COMMANDS.get(name)
        if parse is None:
            raise CommandError(f"unknown command {name}")
        cmd = parse(r, uid)
        r.end()
        return tag, cmd
    except CommandError as e:
        e.tag = tag
        raise
    except RecursionError:  # pragma: no cover - depth limit makes this unreachable
        raise CommandError("command nested too deeply", tag=tag, code=Code.LIMIT) from None


def _no_args(cls: type[c.Command]) -> _Parse:
    return lambda r, uid: cls()


for _cls in (c.Capability, c.Noop, c.Logout, c.StartTLS, c.Check, c.Close, c.Unselect,
             c.Idle, c.Namespace):
    _COMMANDS[_cls.NAME] = _no_args(_cls)


# --- any state / not authenticated ---


@_command("ID")
def _id(r: _Reader, uid: bool) -> c.Command:
    # RFC 2971 §4: id_params_list ::= "(" #(string SPACE nstring) ")" / nil
    r.sp()
    if r.take_nil():
        return c.Id(None)

    def pair() -> tuple[str, str | None]:
        k = r.text(r.string("an ID field name"), "an ID field")
        r.sp()
        v = r.nstring()
        return k, None if v is None else r.text(v, "an ID value")

    params = tuple(r.paren_list(pair, what="ID parameters"))
    # RFC 2971 §3.3: at most 30 pairs, fields of 30 octets, values of 1024.
    if len(params) > 30 or any(len(k.encode()) > 30 or (v is not None and len(v.encode()) > 1024)
                               for k, v in params):
        raise CommandError("ID allows 30 fields of up to 30 octets with values of up to "
                           "1024 octets (RFC 2971 §3.3)", code=Code.LIMIT)
    return c.Id(params)


@_command("ENABLE")
def _enable(r: _Reader, uid: bool) -> c.Command:
    caps = []
    r.sp()
    caps.append(r.atom("a capability").upper())
    while r.take_sp():
        caps.append(r.atom("a capability").upper())
    return c.Enable(tuple(caps))


@_command("COMPRESS")
def _compress(r: _Reader, uid: bool) -> c.Command:
    r.sp()
    return c.Compress(r.atom("a compression mechanism").upper())


@_command("AUTHENTICATE")
def _authenticate(r: _Reader, uid: bool) -> c.Command:
    r.sp()
    mech = r.atom("a SASL mechanism").upper()
    initial = None
    if r.take_sp():
        # RFC 4959 §3: initial-response = base64 / "=" (empty response).
        raw = r.run(_ATOM_SPECIALS, False)
        initial = b"" if raw == b"=" else _base64(raw)
    return c.Authenticate(mech, initial)


def _base64(raw: bytes) -> bytes:
    if not raw or len(raw) % 4:
        raise CommandError("invalid base64 (RFC 4648, with padding)")
    try:
        return base64.b64decode(raw, validate=True)
    except binascii.Error:
        raise CommandError("invalid base64 (RFC 4648, with padding)") from None


@_command("LOGIN")
def _login(r: _Reader, uid: bool) -> c.Command:
    r.sp()
    user = r.text(r.astring("a user name"), "the user name")
    r.sp()
    password = r.astring("a password")
    return c.Login(user, password)


# --- authenticated ---


@_command("SELECT", "EXAMINE")
def _select(r: _Reader, uid: bool) -> c.Command:
    readonly = r.name == "EXAMINE"
    r.sp()
    mailbox = r.mailbox()
    condstore = False
    qresync = None
    if r.take_sp():
        def param() -> None:
            nonlocal condstore, qresync
            name = r.atom("a SELECT parameter").upper()
            if name == "CONDSTORE":
                condstore = True
            elif name == "QRESYNC":
                r.sp()
                qresync = _qresync(r)
            else:
                raise CommandError(f"unknown SELECT parameter {name}")
        r.paren_list(param, empty_ok=False, what="SELECT parameters")
    return c.Select(mailbox, readonly, condstore, qresync)


def _qresync(r: _Reader) -> c.QResync:
    # RFC 7162 §7: "(" uidvalidity SP mod-sequence-value [SP known-uids]
    #              [SP seq-match-data] ")"
    r.expect(b"(")
    validity = r.number("the UIDVALIDITY", nz=True)
    r.sp()
    modseq = r.number("the mod-sequence", _MAX_NUMBER64, nz=True)
    known = match = None
    if r.take_sp():
        if r.peek() != b"(":
            known = r.sequence_set()
            if known.saved:
                raise CommandError("'$' is not allowed in QRESYNC known UIDs")
            if not r.take_sp():
                r.expect(b")")
                return c.QResync(validity, modseq, known, None)
        r.expect(b"(")
        seqs = r.sequence_set()
        r.sp()
        uids = r.sequence_set()
        if seqs.saved or uids.saved or seqs.has_star() or uids.has_star():
            raise CommandError("QRESYNC sequence match data takes explicit numbers")
        r.expect(b")")
        match = (seqs, uids)
    r.expect(b")")
    return c.QResync(validity, modseq, known, match)


@_command("CREATE")
def _create(r: _Reader, uid: bool) -> c.Command:
    r.sp()
    mailbox = r.mailbox()
    uses: list[str] = []
    if r.take_sp():
        def param() -> None:
            name = r.atom("a CREATE parameter").upper()
            if name != "USE":
                raise CommandError(f"unknown CREATE parameter {name}")
            r.sp()
            uses.extend(r.paren_list(r.flag, what="USE attributes"))
        r.paren_list(param, empty_ok=False, what="CREATE parameters")
    return c.Create(mailbox, tuple(uses))


def _mailbox_command(cls: Callable[[str], c.Command]) -> _Parse:
    def parse(r: _Reader, uid: bool) -> c.Command:
        r.sp()
        return cls(r.mailbox())
    return parse


for _cls in (c.Delete, c.Subscribe, c.Unsubscribe, c.GetQuotaRoot):
    _COMMANDS[_cls.NAME] = _mailbox_command(_cls)


@_command("RENAME")
def _rename(r: _Reader, uid: bool) -> c.Command:
    r.sp()
    old = r.mailbox()
    r.sp()
    return c.Rename(old, r.mailbox("the new mailbox name"))


_LIST_SELECT = {"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"}
_LIST_RETURN = {"SUBSCRIBED", "CHILDREN", "SPECIAL-USE"}
_STATUS_ITEMS = {"MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED", "SIZE",
                 "RECENT", "HIGHESTMODSEQ", "APPENDLIMIT", "MAILBOXID", "DELETED-STORAGE"}


def _status_items(r: _Reader) -> tuple[str, ...]:
    def item() -> str:
        name = r.atom("a status item").upper()
        if name not in _STATUS_ITEMS:
            raise CommandError(f"unknown status item {name}")
        return name
    return tuple(r.paren_list(item, empty_ok=False, what="status items"))


@_command("LIST")
def _list(r: _Reader, uid: bool) -> c.Command:
    # RFC 5258 §6: "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat
    #              [SP list-return-opts]
    r.sp()
    selection: list[str] = []
    if r.peek() == b"(":
        def sel() -> str:
            o = r.atom("a LIST selection option").upper()
            if o not in _LIST_SELECT:
                raise CommandError(f"unknown LIST selection option {o}")
            return o
        selection = r.paren_list(sel, what="LIST selection options")
        if selection == ["RECURSIVEMATCH"]:
            # RFC 5258 §3.1: RECURSIVEMATCH alone is an error.
            raise CommandError("RECURSIVEMATCH needs another selection option")
        r.sp()
    reference = decode_mailbox(r.astring("a reference name"), r.utf8, inbox=False)
    r.sp()
    if r.peek() == b"(":
        patterns = tuple(r.paren_list(r.list_mailbox, empty_ok=False, what="patterns"))
    else:
        patterns = (r.list_mailbox(),)
    returns: list[str] = []
    status = None
    if r.take_sp():
        r.expect(b"RETURN", "RETURN")
        r.sp()

        def ret() -> None:
            nonlocal status
            o = r.atom("a LIST return option").upper()
            if o == "STATUS":
                r.sp()
                status = _status_items(r)
            elif o in _LIST_RETURN:
                returns.append(o)
            else:
                raise CommandError(f"unknown LIST return option {o}")
        r.paren_list(ret, what="LIST return options")
    return c.List(reference, patterns, tuple(selection), tuple(returns), status)


@_command("LSUB")
def _lsub(r: _Reader, uid: bool) -> c.Command:
    r.sp()
    reference = decode_mailbox(r.astring("a reference name"), r.utf8, inbox=False)
    r.sp()
    return c.Lsub(reference, r.list_mailbox())


@_command("STATUS")
def _status(r: _Reader, uid: bool) -> c.Command:
    r.sp()
    mailbox = r.mailbox()
    r.sp()
    return c.Status(mailbox, _status_items(r))


def _append_message(r: _Reader) -> c.AppendMessage:
    """[SP flag-list] [SP date-time] SP message, where the message is the
    streamed placeholder (RFC 9051 §6.3.12, RFC 3502, RFC 6855 §4)."""
    flags: tuple[str, ...] = ()
    date = None
    if r.peek() == b"(":
        flags = r.flag_list()
        if "\\Recent" in flags:
            raise CommandError("\\Recent cannot be set by a client (RFC 3501 §2.3.2)")
        r.sp()
    if r.peek() == b'"':
        date = r.date_time()
        r.sp()
    utf8 = r.take(b"UTF8 (")
    if r.peek() != MESSAGE_PLACEHOLDER:
        raise CommandError(f"expected the message literal {r.where()}")
    r.pos += 1
    if utf8:
        r.expect(b")")
    msgs = r.messages
    if not msgs:  # pragma: no cover - the session always supplies them
        raise CommandError("message literal without its data")
    m = msgs.pop(0)
    return c.AppendMessage(flags, date, m.size, m.binary, utf8)


@_command("APPEND")
def _append(r: _Reader, uid: bool) -> c.Command:
    r.sp()
    mailbox = r.mailbox()
    r.sp()
    messages = [_append_message(r)]
    while r.take_sp():
        messages.append(_append_message(r))
    return c.Append(mailbox, tuple(messages))


@_command("REPLACE")
def _replace(r: _Reader, uid: bool) -> c.Command:
    # RFC 8508 §6: "REPLACE" SP seq-number SP mailbox append-message
    r.sp()
    n = r.number("a message number or UID", nz=True)
    r.sp()
    mailbox = r.mailbox()
    r.sp()
    return c.Replace(uid, n, mailbox, _append_message(r))


@dataclass(frozen=True, slots=True)
class AppendProbe:
    """What :func:`probe_append` found at a literal announcement."""

    is_message: bool
    command: str = "APPEND"  # or "REPLACE"
    mailbox: str = ""
    flags: tuple[str, ...] = ()
    internal_date: dt.datetime | None = None
    binary: bool = False
    utf8: bool = False


def probe_append(data: bytes, *, utf8: bool = False) -> AppendProbe | None:
    """At a line ending in a literal announcement: is it an APPEND/REPLACE
    message literal? ``data`` is the command so far, ending just before the
    announcement. Returns None for other commands or other literals (a
    mailbox name as a literal); raises :class:`CommandError` when the command
    is already wrong (the session refuses it before the data is sent)."""
    tag = read_tag(data)
    if tag is None:
        return None
    r = _Reader(data, utf8)
    r.pos = len(tag) + 1
    try:
        name = r.run(_ATOM_SPECIALS, False).upper()
        uid = False
        if name == b"UID" and r.take_sp():
            name = r.run(_ATOM_SPECIALS, False).upper()
            uid = True
        if name not in (b"APPEND", b"REPLACE") or (uid and name == b"APPEND"):
            return None
        r.sp()
        if name == b"REPLACE":
            r.number("a message number or UID", nz=True)
            r.sp()
        if r.at_end():
            return None  # the mailbox name is the literal
        mailbox = r.mailbox()
        r.sp()
        while True:
            flags: tuple[str, ...] = ()
            date = None
            if r.at_end():
                return AppendProbe(True, name.decode(), mailbox)
            if r.peek() == b"(":
                flags = r.flag_list()
                if "\\Recent" in flags:
                    raise CommandError("\\Recent cannot be set by a client (RFC 3501 §2.3.2)")
                r.sp()
            if r.peek() == b'"':
                date = r.date_time()
                r.sp()
            is_utf8 = r.take(b"UTF8 (")
            if r.at_end():
                return AppendProbe(True, name.decode(), mailbox, flags, date, False, is_utf8)
            if r.peek() != MESSAGE_PLACEHOLDER or name == b"REPLACE":
                raise CommandError(f"expected the message literal {r.where()}")
            r.pos += 1
            if is_utf8:
                r.expect(b")")
            r.sp()
    except CommandError as e:
        e.tag = tag
        raise


@_command("GETQUOTA")
def _getquota(r: _Reader, uid: bool) -> c.Command:
    r.sp()
    return c.GetQuota(r.text(r.astring("a quota root"), "the quota root"))


@_command("SETQUOTA")
def _setquota(r: _Reader, uid: bool) -> c.Command:
    # RFC 9208 §9: "SETQUOTA" SP quota-root-name SP setquota-list
    r.sp()
    root = r.text(r.astring("a quota root"), "the quota root")
    r.sp()
    limits: list[tuple[str, int]] = []
    r.expect(b"(")
    if not r.take(b")"):
        while True:
            res = r.atom("a quota resource").upper()
            r.sp()
            limits.append((res, r.number("a quota limit", _MAX_NUMBER64)))
            if r.take(b")"):
                break
            r.sp()
    return c.SetQuota(root, tuple(limits))


def _metadata_entry(r: _Reader) -> str:
    entry = r.text(r.astring("a metadata entry"), "the entry name")
    # RFC 5464 §3.2: entries are slash-separated, start with /private or /shared.
    low = entry.lower()
    if not (low.startswith("/private") or low.startswith("/shared")) or "//" in entry \
            or entry.endswith("/") or "*" in entry or "%" in entry:
        raise CommandError(f"invalid metadata entry name {entry!r} (RFC 5464 §3.2)")
    return entry


@_command("GETMETADATA")
def _getmetadata(r: _Reader, uid: bool) -> c.Command:
    # RFC 5464 §5: "GETMETADATA" [SP getmetadata-options] SP mailbox SP entries
    r.sp()
    maxsize = None
    depth = "0"
    if r.peek() == b"(":
        def opt() -> None:
            nonlocal maxsize, depth
            name = r.atom("a GETMETADATA option").upper()
            r.sp()
            if name == "MAXSIZE":
                maxsize = r.number("MAXSIZE")
            elif name == "DEPTH":
                d = r.atom("a depth").lower()
                if d not in ("0", "1", "infinity"):
                    raise CommandError("DEPTH is 0, 1 or infinity")
                depth = d
            else:
                raise CommandError(f"unknown GETMETADATA option {name}")
        r.paren_list(opt, empty_ok=False, what="GETMETADATA options")
        r.sp()
    mailbox = _metadata_mailbox(r)
    r.sp()
    if r.peek() == b"(":
        entries = tuple(r.paren_list(lambda: _metadata_entry(r), empty_ok=False,
                                     what="entries"))
    else:
        entries = (_metadata_entry(r),)
    return c.GetMetadata(mailbox, entries, maxsize, depth)


def _metadata_mailbox(r: _Reader) -> str:
    raw = r.astring("a mailbox name")
    return "" if raw == b"" else decode_mailbox(raw, r.utf8)


@_command("SETMETADATA")
def _setmetadata(r: _Reader, uid: bool) -> c.Command:
    r.sp()
    mailbox = _metadata_mailbox(r)
    r.sp()

    def entry_value() -> tuple[str, bytes | None]:
        e = _metadata_entry(r)
        r.sp()
        if r.peek(2) == b"~{":
            return e, r.literal(binary_ok=True)[0]
        return e, r.nstring()

    return c.SetMetadata(mailbox, tuple(r.paren_list(entry_value, empty_ok=False,
                                                     what="entry values")))


_NOTIFY_FILTERS = {"SELECTED", "SELECTED-DELAYED", "INBOXES", "PERSONAL", "SUBSCRIBED",
                   "SUBTREE", "MAILBOXES"}


@_command("NOTIFY")
def _notify(r: _Reader, uid: bool) -> c.Command:
    # RFC 5465 §8: "NOTIFY" SP ("NONE" / ("SET" [SP status-indicator] SP event-groups))
    r.sp()
    word = r.atom("NONE or SET").upper()
    if word == "NONE":
        return c.Notify(None)
    if word != "SET":
        raise CommandError("NOTIFY takes NONE or SET")
    r.sp()
    status = False
    if r.take(b"STATUS"):
        status = True
        r.sp()
    groups = [_notify_group(r)]
    while r.take_sp():
        groups.append(_notify_group(r))
    return c.Notify(tuple(groups), status)


def _notify_group(r: _Reader) -> c.NotifyGroup:
    r.expect(b"(")
    flt = r.atom("a NOTIFY filter").upper()
    if flt not in _NOTIFY_FILTERS:
        raise CommandError(f"unknown NOTIFY filter {flt}")
    mailboxes: tuple[str, ...] = ()
    if flt in ("SUBTREE", "MAILBOXES"):
        r.sp()
        if r.peek() == b"(":
            mailboxes = tuple(r.paren_list(r.mailbox, empty_ok=False, what="mailboxes"))
        else:
            mailboxes = (r.mailbox(),)
    r.sp()
    events: list[c.NotifyEvent] = []
    if not r.take(b"NONE"):
        def event() -> c.NotifyEvent:
            # RFC 5465 §8: event-ext is any atom; whether the server knows it is
            # answered with NO [BADEVENT] by the driver (kittiwake.imap.notify).
            name = r.atom("a NOTIFY event").upper()
            fetch: tuple[c.FetchItem, ...] = ()
            if name == "MESSAGENEW" and r.peek(2) == b" (":
                r.sp()
                fetch = tuple(r.paren_list(lambda: _fetch_att(r), empty_ok=False,
                                           what="fetch attributes"))
            return c.NotifyEvent(name, fetch)
        events = r.paren_list(event, empty_ok=False, what="NOTIFY events")
    r.expect(b")")
    return c.NotifyGroup(flt, mailboxes, tuple(events))


# --- selected ---


@_command("EXPUNGE")
def _expunge(r: _Reader, uid: bool) -> c.Command:
    if not uid:
        return c.Expunge()
    r.sp()
    return c.Expunge(r.sequence_set())


def _copy_like(cls: Callable[[bool, c.SequenceSet, str], c.Command]) -> _Parse:
    def parse(r: _Reader, uid: bool) -> c.Command:
        r.sp()
        seq = r.sequence_set()
        r.sp()
        return cls(uid, seq, r.mailbox())
    return parse


_COMMANDS["COPY"] = _copy_like(c.Copy)
_COMMANDS["MOVE"] = _copy_like(c.Move)


@_command("STORE")
def _store(r: _Reader, uid: bool) -> c.Command:
    # store = "STORE" SP sequence-set [SP store-modifiers] SP store-att-flags
    r.sp()
    seq = r.sequence_set()
    r.sp()
    unchanged = None
    if r.peek() == b"(":
        def mod() -> None:
            nonlocal unchanged
            name = r.atom("a STORE modifier").upper()
            if name != "UNCHANGEDSINCE":
                raise CommandError(f"unknown STORE modifier {name}")
            r.sp()
            unchanged = r.number("the mod-sequence", _MAX_NUMBER64)
        r.paren_list(mod, empty_ok=False, what="STORE modifiers")
        r.sp()
    mode = c.StoreMode.REPLACE
    if r.take(b"+"):
        mode = c.StoreMode.ADD
    elif r.take(b"-"):
        mode = c.StoreMode.REMOVE
    item = r.atom("FLAGS or FLAGS.SILENT").upper()
    if item not in ("FLAGS", "FLAGS.SILENT"):
        raise CommandError(f"STORE sets FLAGS or FLAGS.SILENT, not {item}")
    r.sp()
    if r.peek() == b"(":
        flags = r.flag_list()
    else:
        fl = [r.flag()]
        while r.take_sp():
            fl.append(r.flag())
        flags = tuple(fl)
    if "\\Recent" in flags:
        raise CommandError("\\Recent cannot be set by a client (RFC 3501 §2.3.2)")
    return c.Store(uid, seq, mode, item.endswith(".SILENT"), flags, unchanged)


# FETCH macros (RFC 9051 §6.4.5)
_ATTR = c.FetchAttr
_MACROS = {
    "ALL": (_ATTR("FLAGS"), _ATTR("INTERNALDATE"), _ATTR("RFC822.SIZE"), _ATTR("ENVELOPE")),
    "FAST": (_ATTR("FLAGS"), _ATTR("INTERNALDATE"), _ATTR("RFC822.SIZE")),
    "FULL": (_ATTR("FLAGS"), _ATTR("INTERNALDATE"), _ATTR("RFC822.SIZE"), _ATTR("ENVELOPE"),
             _ATTR("BODY")),
}
_PLAIN_ATTRS = {"ENVELOPE", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "UID", "BODYSTRUCTURE",
                "RFC822", "RFC822.HEADER", "RFC822.TEXT", "MODSEQ", "EMAILID", "THREADID",
                "SAVEDATE", "BODY"}


def _fetch_att(r: _Reader) -> c.FetchItem:
    raw = r.run(_ATOM_SPECIALS - {ord("]")} | {ord("["), ord("<")}, False)
    name = raw.decode("ascii").upper()
    if name in ("BODY", "BODY.PEEK") and r.peek() == b"[":
        section = _section(r)
        return c.BodySection(section, _partial(r), name == "BODY.PEEK")
    if name in ("BINARY", "BINARY.PEEK", "BINARY.SIZE"):
        part = _binary_part(r)
        if name == "BINARY.SIZE":
            return c.BinarySize(part)
        return c.BinarySection(part, _partial(r), name == "BINARY.PEEK")
    if name == "PREVIEW":
        lazy = False
        if r.peek(2) == b" (" and r.data[r.pos + 2:r.pos + 6].upper() == b"LAZY":
            r.sp()

            def mod() -> None:
                nonlocal lazy
                if r.atom("a PREVIEW modifier").upper() != "LAZY":
                    raise CommandError("unknown PREVIEW modifier")
                lazy = True
            r.paren_list(mod, empty_ok=False, what="PREVIEW modifiers")
        return c.Preview(lazy)
    if name in _PLAIN_ATTRS:
        return c.FetchAttr(name)
    if not name:
        raise CommandError(f"expected a fetch attribute {r.where()}")
    raise CommandError(f"unknown fetch attribute {name}")


def _section_part(r: _Reader) -> tuple[int, ...]:
    parts = [r.number("a section part number", nz=True)]
    while r.peek() == b"." and r.data[r.pos + 1:r.pos + 2].isdigit():
        r.pos += 1
        parts.append(r.number("a section part number", nz=True))
    return tuple(parts)


def _section(r: _Reader) -> Section:
    # section = "[" [section-spec] "]" (RFC 9051 §9)
    r.expect(b"[")
    if r.take(b"]"):
        return Section()
    part: tuple[int, ...] = ()
    if r.peek().isdigit():
        part = _section_part(r)
        if r.take(b"]"):
            return Section(part)
        r.expect(b".")
    word = r.run(_ATOM_SPECIALS, False).decode("ascii").upper()
    fields: tuple[str, ...] = ()
    if word == "HEADER":
        text = SectionText.HEADER
    elif word in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        text = SectionText(word)
        r.sp()
        names = r.paren_list(lambda: r.text(r.astring("a header field name"), "a field"),
                             empty_ok=False, what="header field names")
        for n in names:
            if not n or any(ch <= " " or ch == ":" or ch > "~" for ch in n):
                raise CommandError(f"invalid header field name {n!r}")
        fields = tuple(n.upper() for n in names)
    elif word == "TEXT":
        text = SectionText.TEXT
    elif word == "MIME" and part:
        text = SectionText.MIME
    else:
        raise CommandError(f"invalid section text {word!r} (HEADER, HEADER.FIELDS, "
                           "HEADER.FIELDS.NOT, TEXT, or MIME after a part number)")
    r.expect(b"]")
    return Section(part, text, fields)


def _binary_part(r: _Reader) -> tuple[int, ...]:
    # section-binary = "[" [section-part] "]" (RFC 3516 §6)
    r.expect(b"[", "'[' after BINARY")
    if r.take(b"]"):
        return ()
    part = _section_part(r)
    r.expect(b"]")
    return part


def _partial(r: _Reader) -> Partial | None:
    if not r.take(b"<"):
        return None
    origin = r.number("the partial origin", _MAX_NUMBER64)
    r.expect(b".")
    count = r.number("the partial length", _MAX_NUMBER64, nz=True)
    r.expect(b">")
    return Partial(origin, count)


@_command("FETCH")
def _fetch(r: _Reader, uid: bool) -> c.Command:
    r.sp()
    seq = r.sequence_set()
    r.sp()
    items: tuple[c.FetchItem, ...]
    if r.peek() == b"(":
        items = tuple(r.paren_list(lambda: _fetch_att(r), empty_ok=False,
                                   what="fetch attributes"))
    else:
        word = r.data[r.pos:r.pos + 4].upper()
        macro = next((m for m in _MACROS if word.startswith(m.encode())
                      and (len(r.data) == r.pos + len(m) or r.data[r.pos + len(m)] == 0x20)),
                     None)
        if macro is not None:
            r.pos += len(macro)
            items = _MACROS[macro]
        else:
            items = (_fetch_att(r),)
    changed = None
    vanished = False
    if r.take_sp():
        def mod() -> None:
            nonlocal changed, vanished
            name = r.atom("a FETCH modifier").upper()
            if name == "CHANGEDSINCE":
                r.sp()
                changed = r.number("the mod-sequence", _MAX_NUMBER64)
            elif name == "VANISHED":
                vanished = True
            else:
                raise CommandError(f"unknown FETCH modifier {name}")
        r.paren_list(mod, empty_ok=False, what="FETCH modifiers")
        if vanished and (not uid or changed is None):
            # RFC 7162 §3.2.6: VANISHED only in UID FETCH with CHANGEDSINCE.
            raise CommandError("VANISHED needs UID FETCH and CHANGEDSINCE (RFC 7162 §3.2.6)")
    return c.Fetch(uid, seq, items, changed, vanished)


_SEARCH_RETURN = {"MIN", "MAX", "ALL", "COUNT", "SAVE"}


def _search_returns(r: _Reader, allowed: set[str]) -> tuple[str, ...]:
    r.sp()

    def opt() -> str:
        o = r.atom("a RETURN option").upper()
        if o not in allowed:
            raise CommandError(f"unknown RETURN option {o}")
        return o
    return tuple(r.paren_list(opt, what="RETURN options"))


# The charsets SEARCH, SORT and THREAD take (RFC 9051 §6.4.4: at least UTF-8 and
# US-ASCII). Search strings are matched as Unicode text; US-ASCII is read as
# UTF-8, its superset, so a client that says US-ASCII but sends 8-bit text is
# still understood. Any other name is refused with NO [BADCHARSET (UTF-8
# US-ASCII)] (RFC 9051 §7.1), even where Python has a codec for it.
SEARCH_CHARSETS = ("UTF-8", "US-ASCII")
_BADCHARSET_ARGS = "(" + " ".join(SEARCH_CHARSETS) + ")"


class _Charset:
    def __init__(self, name: str | None) -> None:
        self.name = name
        if name is not None and name.upper() not in SEARCH_CHARSETS:
            raise CommandError(f"charset {name} is not supported", code=Code.BADCHARSET,
                               status="NO", args=_BADCHARSET_ARGS)

    def text(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CommandError(f"search string is not valid {self.name or 'UTF-8'}") from None


def _search_keys(r: _Reader, charset: _Charset) -> tuple[c.SearchKey, ...]:
    keys = [_search_key(r, charset)]
    while r.take_sp():
        keys.append(_search_key(r, charset))
    return tuple(keys)


def _search_program(r: _Reader, charset: _Charset) -> c.SearchKey:
    """1*(SP search-key): one key as itself, more as their SearchAnd."""
    keys = _search_keys(r, charset)
    return keys[0] if len(keys) == 1 else c.SearchAnd(keys)


_FLAG_KEYS = {"ANSWERED": "\\Answered", "DELETED": "\\Deleted", "DRAFT": "\\Draft",
              "FLAGGED": "\\Flagged", "SEEN": "\\Seen", "RECENT": "\\Recent"}
_HEADER_KEYS = {"BCC", "CC", "FROM", "SUBJECT", "TO"}
_DATE_KEYS = {
    "BEFORE": (c.DateField.INTERNAL, c.DateOp.BEFORE), "ON": (c.DateField.INTERNAL, c.DateOp.ON),
    "SINCE": (c.DateField.INTERNAL, c.DateOp.SINCE),
    "SENTBEFORE": (c.DateField.SENT, c.DateOp.BEFORE), "SENTON": (c.DateField.SENT, c.DateOp.ON),
    "SENTSINCE": (c.DateField.SENT, c.DateOp.SINCE),
    "SAVEDBEFORE": (c.DateField.SAVED, c.DateOp.BEFORE),
    "SAVEDON": (c.DateField.SAVED, c.DateOp.ON),
    "SAVEDSINCE": (c.DateField.SAVED, c.DateOp.SINCE),
}


def _search_key(r: _Reader, cs: _Charset) -> c.SearchKey:
    p = r.peek()
    if p == b"(":
        r.enter()
        r.pos += 1
        keys = _search_keys(r, cs)
        r.expect(b")")
        r.leave()
        return c.SearchAnd(keys)
    if p == b"$" or p == b"*" or p.isdigit():
        return c.SearchSequence(r.sequence_set())
    name = r.atom("a search key").upper()
    if name == "ALL":
        return c.SearchAll()
    if name in _FLAG_KEYS:
        return c.SearchFlag(_FLAG_KEYS[name])
    if name.startswith("UN") and name[2:] in _FLAG_KEYS and name != "UNRECENT":
        return c.SearchFlag(_FLAG_KEYS[name[2:]], False)
    if name == "NEW":  # RFC 3501 §6.4.4: RECENT UNSEEN
        return c.SearchAnd((c.SearchFlag("\\Recent"), c.SearchFlag("\\Seen", False)))
    if name == "OLD":  # NOT RECENT
        return c.SearchFlag("\\Recent", False)
    if name == "SAVEDATESUPPORTED":
        return c.SearchSaveDateSupported()
    if name not in _ARG_KEYS:
        raise CommandError(f"unknown search key {name}")
    r.sp()
    if name == "NOT":
        r.enter()
        key = c.SearchNot(_search_key(r, cs))
        r.leave()
        return key
    if name == "OR":
        r.enter()
        left = _search_key(r, cs)
        r.sp()
        right = _search_key(r, cs)
        r.leave()
        return c.SearchOr(left, right)
    if name in ("KEYWORD", "UNKEYWORD"):
        return c.SearchKeyword(r.atom("a keyword"), name == "KEYWORD")
    if name in _HEADER_KEYS:
        return c.SearchHeader(name, cs.text(r.astring("a search string")))
    if name == "HEADER":
        field = r.text(r.astring("a header field name"), "the field name")
        r.sp()
        return c.SearchHeader(field.upper(), cs.text(r.astring("a search string")))
    if name in ("BODY", "TEXT"):
        return c.SearchText(cs.text(r.astring("a search string")), name == "BODY")
    if name in _DATE_KEYS:
        f, op = _DATE_KEYS[name]
        return c.SearchDate(f, op, r.date())
    if name in ("LARGER", "SMALLER"):
        return c.SearchSize(r.number("a size", _MAX_NUMBER64), name == "LARGER")
    if name == "UID":
        return c.SearchSequence(r.sequence_set(), uid=True)
    if name in ("OLDER", "YOUNGER"):
        return c.SearchAge(r.number("an interval in seconds", nz=True), name == "OLDER")
    if name == "MODSEQ":
        # RFC 7162 §3.1.5: "MODSEQ" [search-modseq-ext] SP mod-sequence-valzer
        entry = etype = None
        if r.peek() == b'"':
            entry = r.text(r.quoted(), "the entry name")
            r.sp()
            etype = r.atom("an entry type").lower()
            if etype not in ("priv", "shared", "all"):
                raise CommandError("MODSEQ entry type is priv, shared or all")
            r.sp()
        return c.SearchModSeq(r.number("a mod-sequence", _MAX_NUMBER64), entry, etype)
    if name in ("EMAILID", "THREADID"):
        oid = r.atom("an object id")
        if len(oid) > 255 or not all(ch.isalnum() or ch in "-_" for ch in oid):
            raise CommandError("an object id is 1-255 letters, digits, '-' or '_'")
        return c.SearchObjectId(name, oid)
    raise AssertionError(name)  # pragma: no cover - _ARG_KEYS lists every key above


_ARG_KEYS = {"NOT", "OR", "KEYWORD", "UNKEYWORD", "HEADER", "BODY", "TEXT", "LARGER",
             "SMALLER", "UID", "OLDER", "YOUNGER", "MODSEQ", "EMAILID", "THREADID",
             *_HEADER_KEYS, *_DATE_KEYS}


def _search_head(r: _Reader, allowed: set[str] | None) -> tuple[tuple[str, ...] | None, str | None]:
    returns = None
    charset = None
    r.sp()
    if allowed is not None and r.take(b"RETURN "):
        r.pos -= 1
        returns = _search_returns(r, allowed)
        r.sp()
    if r.peek_upper(b"CHARSET "):
        r.pos += 8
        charset = r.text(r.astring("a charset"), "the charset")
    return returns, charset


@_command("SEARCH")
def _search(r: _Reader, uid: bool) -> c.Command:
    # search = "SEARCH" [search-return-opts] SP search-program (RFC 9051 §9)
    returns, charset = _search_head(r, _SEARCH_RETURN)
    if charset is not None:
        r.sp()
    cs = _Charset(charset)
    return c.Search(uid, _search_program(r, cs), charset, returns)


_SORT_KEYS = {"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM",
              "DISPLAYTO"}


@_command("SORT")
def _sort(r: _Reader, uid: bool) -> c.Command:
    # RFC 5256 §5 / RFC 5267 §3: "SORT" [SP search-return-opts] SP sort-criteria
    #                           SP search-charset 1*(SP search-key)
    r.sp()
    returns = None
    if r.peek_upper(b"RETURN "):
        r.pos += 6
        returns = _search_returns(r, {"MIN", "MAX", "ALL", "COUNT"})
        r.sp()

    def crit() -> c.SortCriterion:
        rev = False
        key = r.atom("a sort key").upper()
        if key == "REVERSE":
            r.sp()
            rev = True
            key = r.atom("a sort key").upper()
        if key not in _SORT_KEYS:
            raise CommandError(f"unknown sort key {key}")
        return c.SortCriterion(key, rev)

    criteria = tuple(r.paren_list(crit, empty_ok=False, what="sort criteria"))
    r.sp()
    charset = r.text(r.astring("a charset"), "the charset")
    r.sp()
    return c.Sort(uid, criteria, charset, _search_program(r, _Charset(charset)), returns)


@_command("THREAD")
def _thread(r: _Reader, uid: bool) -> c.Command:
    r.sp()
    algo = r.atom("a threading algorithm").upper()
    r.sp()
    charset = r.text(r.astring("a charset"), "the charset")
    r.sp()
    return c.Thread(uid, algo, charset, _search_program(r, _Charset(charset)))
