"""SMTP replies and enhanced status codes (RFC 5321 §4.2, RFC 3463, RFC 2034, RFC 5248).

A :class:`Reply` is a three-digit code, an optional enhanced status code
(``class.subject.detail``, RFC 3463 §2) and one or more text lines; it formats
itself as the multi-line wire form of RFC 5321 §4.2.1 (``250-...`` then
``250 ...``), with the enhanced code on every line (RFC 2034 §4). Helpers build
the replies a server commonly sends. :class:`ReplyParser` is the client side:
fed bytes, it returns complete replies, tolerating LF-only line ends and
missing text, and raising :class:`MalformedReply` on garbage.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

__all__ = [
    "MAX_REPLY_LINE",
    "MalformedReply",
    "Reply",
    "ReplyParser",
    "parse_reply",
]

# RFC 5321 §4.5.3.1.5: reply lines are at most 512 octets including CRLF.
MAX_REPLY_LINE = 512
# RFC 3463 §2: class "." subject "." detail; subject and detail 1-3 digits.
# ASCII digits only: ``\d`` and ``str.isdigit`` also take "٢" or "①", which ``int``
# either reads as a number or refuses with a bare ValueError.
_ENHANCED_RE = re.compile(r"([245])\.([0-9]{1,3})\.([0-9]{1,3})(?: |$)")
# RFC 5321 §4.2: Reply-code = %x32-35 %x30-35 %x30-39, ASCII digits.
_CODE_RE = re.compile(r"[0-9]{3}")


def _clean(text: str) -> list[str]:
    """Split text into reply lines; control characters become ``?``."""
    if text.isascii() and text.isprintable():  # the usual text: nothing to split or replace
        return [text]
    lines = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = "".join("?" if ord(c) < 32 or 127 <= ord(c) < 160 else c for c in raw)
        lines.append(line)
    return lines


@functools.lru_cache(maxsize=256)
def _wire(reply: Reply, enhanced: bool) -> bytes:
    """A reply's wire form, kept for the replies sent again and again (the greeting,
    EHLO, 250 OK, 354, 221): replies are immutable values."""
    return reply._to_bytes(enhanced)


@functools.lru_cache(maxsize=256)
def _enhanced_class(enhanced: str) -> int | None:
    """The class digit of a valid RFC 3463 code, else None (replies reuse few codes)."""
    m = _ENHANCED_RE.fullmatch(enhanced)
    return None if m is None else int(m.group(1))


@dataclass(frozen=True, slots=True)
class Reply:
    """An SMTP reply.

    ``code``: RFC 5321 §4.2 reply code (200-599 ranges used: 2xx, 3xx, 4xx, 5xx).
    ``enhanced``: RFC 3463 status code like ``"5.7.1"`` or None (must have the
    same class digit as ``code``). ``lines``: text lines (at least one; may be
    empty strings).
    """

    code: int
    enhanced: str | None = None
    lines: tuple[str, ...] = field(default=("",))

    def __post_init__(self) -> None:
        if not 200 <= self.code <= 599:
            raise ValueError(f"reply code {self.code} out of range")
        if self.enhanced is not None and _enhanced_class(self.enhanced) != self.code // 100:
            raise ValueError(f"enhanced code {self.enhanced!r} does not fit {self.code}")
        if isinstance(self.lines, str):
            object.__setattr__(self, "lines", tuple(_clean(self.lines)))
        else:
            cleaned: list[str] = []
            for line in self.lines:
                cleaned.extend(_clean(line))
            object.__setattr__(self, "lines", tuple(cleaned) or ("",))

    @classmethod
    def of(cls, code: int, enhanced: str | None, *text: str) -> Reply:
        """``Reply.of(550, "5.7.1", "rejected by policy")``."""
        return cls(code, enhanced, tuple(text) or ("",))

    @property
    def text(self) -> str:
        """All lines joined with newlines."""
        return "\n".join(self.lines)

    @property
    def is_positive(self) -> bool:
        """2xx (completion) or 3xx (intermediate) reply."""
        return self.code < 400

    @property
    def is_transient(self) -> bool:
        """4xx: try again later."""
        return 400 <= self.code < 500

    @property
    def is_permanent(self) -> bool:
        """5xx: do not retry as is."""
        return self.code >= 500

    def to_bytes(self, *, enhanced: bool = True) -> bytes:
        """Wire form, each line CRLF-terminated (RFC 5321 §4.2.1).

        With ``enhanced=False`` the enhanced code is left out (when the
        ENHANCEDSTATUSCODES extension, RFC 2034, is not in use).
        """
        return _wire(self, enhanced)

    def _to_bytes(self, enhanced: bool) -> bytes:
        prefix = f"{self.enhanced} " if (enhanced and self.enhanced) else ""
        # RFC 5321 §4.5.3.1.5: keep lines to 512 octets including code and CRLF.
        limit = MAX_REPLY_LINE - 6 - len(prefix)
        lines: list[str] = []
        for line in self.lines:
            while len(line) > limit:
                lines.append(line[:limit])
                line = line[limit:]
            lines.append(line)
        out = []
        last = len(lines) - 1
        for i, line in enumerate(lines):
            sep = " " if i == last else "-"
            text = (prefix + line).rstrip(" ") if line or prefix else ""
            out.append(f"{self.code}{sep}{text}\r\n")
        # Text is ASCII unless the driver put UTF-8 in (RFC 6531 §3.7.4.2 allows it).
        return "".join(out).encode("utf-8")

    def __str__(self) -> str:
        return self.to_bytes().decode("utf-8").rstrip("\r\n").replace("\r\n", " / ")

    # --- helpers for the replies a server commonly sends (RFC 5321 §4.2.2/3) ---

    @classmethod
    def ok(cls, text: str = "OK", enhanced: str = "2.0.0") -> Reply:
        return cls(250, enhanced, (text,))

    @classmethod
    def policy(cls, text: str = "rejected by policy", *, temporary: bool = False) -> Reply:
        """550 5.7.1 (or 451 4.7.1): delivery not authorized, message refused."""
        if temporary:
            return cls(451, "4.7.1", (text,))
        return cls(550, "5.7.1", (text,))

    @classmethod
    def auth_failed(cls, text: str = "authentication failed") -> Reply:
        """535 5.7.8: authentication credentials invalid (RFC 4954 §6)."""
        return cls(535, "5.7.8", (text,))

    @classmethod
    def dmarc(cls, text: str = "rejected by DMARC policy") -> Reply:
        """550 5.7.26: multiple authentication checks failed, DMARC (RFC 7372 §3.2)."""
        return cls(550, "5.7.26", (text,))

    @classmethod
    def temporary(cls, text: str = "temporary failure, try again later") -> Reply:
        """451 4.7.0 (or 4.3.0 style): transient failure."""
        return cls(451, "4.7.0", (text,))

    @classmethod
    def local_error(cls, text: str = "local error in processing") -> Reply:
        """451 4.3.0: mail system temporary failure."""
        return cls(451, "4.3.0", (text,))

    @classmethod
    def syntax(cls, text: str = "syntax error") -> Reply:
        """501 5.5.4: syntax error in parameters or arguments."""
        return cls(501, "5.5.4", (text,))

    @classmethod
    def too_big(cls, text: str = "message too big") -> Reply:
        """552 5.3.4: message too big for system (RFC 1870 §6)."""
        return cls(552, "5.3.4", (text,))

    @classmethod
    def smtputf8_required(cls, text: str = "SMTPUTF8 required for non-ASCII address") -> Reply:
        """553 5.6.7: non-ASCII addresses not permitted (RFC 6531 §3.7.4.1)."""
        return cls(553, "5.6.7", (text,))

    @classmethod
    def requiretls(cls, text: str = "REQUIRETLS needs a TLS session") -> Reply:
        """530 5.7.10: encryption needed (RFC 8689 §5, RFC 5248)."""
        return cls(530, "5.7.10", (text,))

    @classmethod
    def no_such_user(cls, text: str = "no such user") -> Reply:
        """550 5.1.1: bad destination mailbox address."""
        return cls(550, "5.1.1", (text,))

    @classmethod
    def mailbox_full(cls, text: str = "mailbox full") -> Reply:
        """452 4.2.2 (mailbox full, transient)."""
        return cls(452, "4.2.2", (text,))


class MalformedReply(ValueError):
    """A server reply line that is not ``ddd[ -]text``."""


def _enhanced_of(code: int, first: str) -> str | None:
    m = _ENHANCED_RE.match(first)
    if m is None or int(m.group(1)) != code // 100:
        return None
    return f"{m.group(1)}.{int(m.group(2))}.{int(m.group(3))}"


class ReplyParser:
    """Client side: turns server bytes into :class:`Reply` objects (RFC 5321 §4.2.1).

    Tolerant: lines may end in LF only, lines may be just ``250``, trailing
    whitespace is ignored, and continuation lines whose code differs from the
    first are accepted (the first line's code counts). Enhanced codes
    (RFC 2034) are extracted from the first line and stripped from every line
    that carries the same code. Lines not starting with three digits, or longer
    than ``max_line`` octets, raise :class:`MalformedReply`.
    """

    def __init__(self, *, max_line: int = 16384, max_lines: int = 1000) -> None:
        self._buf = bytearray()
        self._lines: list[tuple[int, str]] = []
        self.max_line = max_line
        self.max_lines = max_lines

    @property
    def pending(self) -> bool:
        """Whether part of a reply has been received but not completed."""
        return bool(self._buf) or bool(self._lines)

    def feed(self, data: bytes) -> list[Reply]:
        """Add bytes from the server; return the replies completed by them."""
        self._buf += data
        replies: list[Reply] = []
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                if len(self._buf) > self.max_line:
                    raise MalformedReply("reply line too long")
                return replies
            raw = bytes(self._buf[:nl])
            del self._buf[: nl + 1]
            if len(raw) > self.max_line:
                raise MalformedReply("reply line too long")
            reply = self._line(raw.rstrip(b"\r"))
            if reply is not None:
                replies.append(reply)

    def _line(self, raw: bytes) -> Reply | None:
        text = raw.decode("utf-8", errors="replace")
        if len(text) < 3 or not _CODE_RE.fullmatch(text[:3]) or (
                len(text) > 3 and text[3] not in " -"):
            raise MalformedReply(f"malformed reply line {text[:80]!r}")
        code = int(text[:3])
        if not 200 <= code <= 599:
            raise MalformedReply(f"reply code {code} out of range")
        self._lines.append((code, text[4:].rstrip()))
        if len(self._lines) > self.max_lines:
            raise MalformedReply("too many reply lines")
        if len(text) > 3 and text[3] == "-":
            return None
        lines, self._lines = self._lines, []
        code0 = lines[0][0]
        enhanced = _enhanced_of(code0, lines[0][1])
        out = []
        for c, line in lines:
            if enhanced is not None and c == code0:
                e = _enhanced_of(c, line)
                if e == enhanced:
                    line = line.split(" ", 1)[1] if " " in line else ""
            out.append(line)
        return Reply(code0, enhanced, tuple(out))


def parse_reply(data: bytes) -> Reply:
    """Parse exactly one complete reply (all lines CRLF/LF terminated)."""
    p = ReplyParser()
    replies = p.feed(data)
    if len(replies) != 1 or p.pending:
        raise MalformedReply(f"expected one complete reply, got {len(replies)}")
    return replies[0]
