"""Events the SMTP server session hands its driver (sans-I/O, like h11).

Events with ``needs_reply = True`` are commands the driver decides on: it
answers each with ``session.accept()``, ``session.reject(reply)``,
``session.reply(reply)`` or, for AUTH, ``session.auth_challenge(data)``.
The session never hands out another command before the pending one is
answered (RFC 2920 §3.1 ordering). The others are notifications: the session
has already replied (or no reply is due).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from kittiwake.smtp.address import Address
from kittiwake.smtp.data import DataError
from kittiwake.smtp.params import MailParams, RcptParams
from kittiwake.smtp.reply import Reply

__all__ = [
    "Auth",
    "AuthAborted",
    "AuthResponse",
    "BdatEnd",
    "BdatStart",
    "Close",
    "CloseReason",
    "DataChunk",
    "DataEnd",
    "DataStart",
    "Ehlo",
    "Event",
    "Helo",
    "MailFrom",
    "MessageRejected",
    "Quit",
    "RcptTo",
    "Reset",
    "StartTLS",
]


class Event:
    """Base class of session events."""

    __slots__ = ()
    needs_reply: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class Helo(Event):
    """HELO name (RFC 5321 §4.1.1.1). accept() -> ``250 hostname``. Accepting
    also ends any mail transaction in progress."""

    needs_reply: ClassVar[bool] = True
    name: str


@dataclass(frozen=True, slots=True)
class Ehlo(Event):
    """EHLO name. accept() -> the EHLO reply with the session's capabilities."""

    needs_reply: ClassVar[bool] = True
    name: str


@dataclass(frozen=True, slots=True)
class StartTLS(Event):
    """STARTTLS (RFC 3207). accept() -> ``220 2.0.0``; then write the reply,
    start TLS and call ``session.tls_started()``. Input that followed the
    command in the same read was discarded (command injection defence)."""

    needs_reply: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class Auth(Event):
    """AUTH mechanism [initial-response] (RFC 4954 §4). ``initial`` is decoded:
    None if absent, b"" for ``=``. Answer with auth_challenge(data) (334),
    accept() (235 2.7.0) or reject(Reply.auth_failed())."""

    needs_reply: ClassVar[bool] = True
    mechanism: str
    initial: bytes | None


@dataclass(frozen=True, slots=True)
class AuthResponse(Event):
    """A decoded client response line during AUTH; answered like :class:`Auth`."""

    needs_reply: ClassVar[bool] = True
    data: bytes


@dataclass(frozen=True, slots=True)
class AuthAborted(Event):
    """The AUTH exchange ended without the driver: ``*`` from the client
    (501 5.0.0) or invalid base64 (501 5.5.2). ``reply`` was sent."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class MailFrom(Event):
    """MAIL FROM (RFC 5321 §4.1.1.2); ``path`` None is the null reverse-path.
    Parameters were checked against the offered extensions. accept() -> 250 2.1.0."""

    needs_reply: ClassVar[bool] = True
    path: Address | None
    params: MailParams


@dataclass(frozen=True, slots=True)
class RcptTo(Event):
    """RCPT TO (RFC 5321 §4.1.1.3). accept() -> 250 2.1.5 and the recipient
    counts for DATA and RCPTMAX."""

    needs_reply: ClassVar[bool] = True
    path: Address
    params: RcptParams


@dataclass(frozen=True, slots=True)
class DataStart(Event):
    """DATA with at least one accepted recipient. accept() -> 354; then
    :class:`DataChunk` events follow, then :class:`DataEnd` or
    :class:`MessageRejected`."""

    needs_reply: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class DataChunk(Event):
    """Message bytes (dot-unstuffed for DATA, raw for BDAT), in order. How the
    message is cut into chunks depends on how the bytes arrived."""

    data: bytes


@dataclass(frozen=True, slots=True)
class DataEnd(Event):
    """End of DATA (``CRLF.CRLF``); ``size`` octets were delivered in chunks.
    The final reply (RFC 5321 §4.1.1.4): accept(text) -> ``250 2.0.0 text``, or
    reject(reply). Either ends the transaction."""

    needs_reply: ClassVar[bool] = True
    size: int


@dataclass(frozen=True, slots=True)
class BdatStart(Event):
    """A BDAT chunk (RFC 3030 §2) of ``size`` octets begins; its bytes come as
    :class:`DataChunk` events. No reply: the reply goes to :class:`BdatEnd`."""

    size: int
    last: bool


@dataclass(frozen=True, slots=True)
class BdatEnd(Event):
    """A BDAT chunk was read in full. ``total`` is the message size so far.
    For ``last`` answer like :class:`DataEnd`; otherwise accept() -> 250 2.0.0
    and the transaction continues (a rejection ends it)."""

    needs_reply: ClassVar[bool] = True
    size: int
    last: bool
    total: int


@dataclass(frozen=True, slots=True)
class MessageRejected(Event):
    """The session rejected the message itself after reading it to its end
    (too big, line too long, bare CR/LF) and sent ``reply``; the transaction
    is over. Discard what the DataChunk events delivered."""

    reply: Reply
    error: DataError


@dataclass(frozen=True, slots=True)
class Reset(Event):
    """RSET (RFC 5321 §4.1.1.5): the transaction was discarded; 250 was sent."""


@dataclass(frozen=True, slots=True)
class Quit(Event):
    """QUIT: 221 was queued. Write data_to_send() and close the connection."""


class CloseReason(StrEnum):
    TOO_MANY_ERRORS = "too-many-errors"
    GREETING_REJECTED = "greeting-rejected"
    SHUTDOWN = "shutdown"
    EOF = "eof"


@dataclass(frozen=True, slots=True)
class Close(Event):
    """The session is over without QUIT; ``reply`` (421, or None on EOF) was
    queued. Write data_to_send() and close the connection."""

    reason: CloseReason
    reply: Reply | None = None
