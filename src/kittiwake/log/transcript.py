"""Protocol transcripts with credentials and message data redacted by level.

Servers and clients log each protocol line they read or write through a
transcript. Each line is split into parts of a :class:`Kind`; the decision to
show or hide a part is made here, before the line is written (DESIGN.md
"Logging"):

- below ``trace`` nothing is logged;
- at ``trace`` credentials are written as ``***`` and message data as
  ``...(N bytes)``; the line's level is ``trace``;
- at ``traceauth`` credentials are shown and the line is logged at
  ``traceauth``;
- at ``tracedata`` message data is shown too, at level ``tracedata``.

:class:`Transcript` is protocol-neutral (the caller says what each part is);
:class:`kittiwake.log.smtptranscript.SMTPTranscript` and
:class:`kittiwake.log.imaptranscript.IMAPTranscript` know which parts of SMTP
and IMAP lines are secrets.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from kittiwake.log.levels import TRACE, TRACEAUTH, TRACEDATA
from kittiwake.log.logger import Logger

AUTH_PLACEHOLDER = "***"


class Direction(enum.StrEnum):
    """Who sent a line: the client (``C``) or the server (``S``)."""

    CLIENT = "C"
    SERVER = "S"


class Kind(enum.StrEnum):
    """What a part of a line is, which decides the level at which it is shown."""

    PLAIN = "plain"  # shown at trace
    AUTH = "auth"  # credentials: shown at traceauth, else "***"
    DATA = "data"  # message data: shown at tracedata, else "...(N bytes)"


Text = bytes | bytearray | memoryview | str
Part = tuple[Text, Kind]

# RFC 9110 §11.6.2, §11.7.2 and RFC 6265 §4: headers that carry credentials.
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})


def to_bytes(text: Text) -> bytes:
    """Bytes of a line as given: str is encoded as UTF-8."""
    if isinstance(text, str):
        return text.encode("utf-8", "surrogateescape")
    return bytes(text)


def data_placeholder(size: int) -> str:
    """What message data is written as below tracedata."""
    return f"...({size} bytes)"


def http_header_kind(name: str) -> Kind:
    """The kind of an HTTP header's value: AUTH for Authorization, Cookie and the like."""
    return Kind.AUTH if name.strip().lower() in _SECRET_HEADERS else Kind.PLAIN


def render(parts: Iterable[Part], *, show_auth: bool, show_data: bool) -> tuple[str, bool, bool]:
    """The text of a line with parts hidden as the flags say.

    Returns the text and whether a credential and whether message data were
    shown (which decide the level the line is logged at).
    """
    out: list[str] = []
    shown_auth = shown_data = False
    for text, kind in parts:
        if kind is Kind.AUTH and not show_auth:
            out.append(AUTH_PLACEHOLDER)
            continue
        if kind is Kind.DATA and not show_data:
            out.append(data_placeholder(len(to_bytes(text))))
            continue
        shown_auth = shown_auth or kind is Kind.AUTH
        shown_data = shown_data or kind is Kind.DATA
        out.append(text if isinstance(text, str)
                   else bytes(text).decode("utf-8", "backslashreplace"))
    return "".join(out), shown_auth, shown_data


class Transcript:
    """Writes protocol lines to a logger, redacting by level.

    One per connection; it takes the connection's logger (whose bound context
    carries the ``cid``). Subclasses add protocol knowledge.
    """

    def __init__(self, logger: Logger) -> None:
        self.logger = logger

    def enabled(self) -> bool:
        """Whether transcripts are written at all (level trace or lower)."""
        return self.logger.logger.isEnabledFor(int(TRACE))

    def line(self, direction: Direction | str, text: Text, kind: Kind = Kind.PLAIN) -> None:
        """Log one line (without its CRLF) that is all of one kind."""
        self.parts(direction, ((text, kind),))

    def parts(self, direction: Direction | str, parts: Iterable[Part]) -> None:
        """Log one line made of parts of different kinds."""
        logger = self.logger.logger
        if not logger.isEnabledFor(int(TRACE)):
            return
        show_auth = logger.isEnabledFor(int(TRACEAUTH))
        show_data = logger.isEnabledFor(int(TRACEDATA))
        text, shown_auth, shown_data = render(parts, show_auth=show_auth, show_data=show_data)
        level = TRACEDATA if shown_data else TRACEAUTH if shown_auth else TRACE
        self.logger.log(level, f"{Direction(direction).value}: {text}")

    def data(self, direction: Direction | str, chunk: Text) -> None:
        """Log a block of message data (a DATA body, a BDAT chunk, a literal)."""
        self.parts(direction, ((chunk, Kind.DATA),))
