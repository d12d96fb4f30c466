"""Events the IMAP server session hands its driver (sans-I/O, like h11).

Events with ``needs_reply = True`` wait for the driver: it may send untagged
data (``session.send(...)``) and then answers with ``session.ok()``,
``session.no()`` or ``session.bad()`` (or, depending on the event,
``session.challenge()``, ``session.idle()``, ``session.accept_literal()``,
``session.enabled()``). The session hands out nothing else until then. The
other events are notifications: the session has already answered.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar

from kittiwake.imap.commands import Command

__all__ = [
    "AppendData",
    "AppendEnd",
    "AppendStart",
    "AuthAborted",
    "AuthResponse",
    "CloseReason",
    "Closed",
    "CommandReceived",
    "Event",
    "IdleDone",
    "Rejected",
]


class Event:
    """Base class of session events."""

    __slots__ = ()
    needs_reply: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class CommandReceived(Event):
    """A complete, well-formed command allowed in the current state.

    Answer with ok/no/bad; some commands have their own answers:
    AUTHENTICATE may get ``challenge()`` (RFC 9051 §6.2.2), IDLE gets
    ``idle()`` (RFC 2177), ENABLE gets ``enabled(caps)`` (RFC 5161). An
    APPEND/REPLACE arrives here after its messages were streamed."""

    needs_reply: ClassVar[bool] = True
    tag: str
    command: Command


@dataclass(frozen=True, slots=True)
class AppendStart(Event):
    """An APPEND (or REPLACE) message literal is announced (RFC 9051 §6.3.12,
    MULTIAPPEND RFC 3502: ``index`` counts from 0). Decide before the octets
    come: ``accept_literal()`` (the session sends ``+`` for a synchronising
    literal), or ``no(code=Code.TRYCREATE)`` / ``no(code=Code.TOOBIG)`` to
    refuse the whole command (a non-synchronising literal is then read and
    dropped). Accepted octets follow as :class:`AppendData` chunks and one
    :class:`AppendEnd`; after the last message the whole command comes as
    :class:`CommandReceived` with an ``Append``, answered OK only once every
    message is committed. Refusing a later message refuses the command (a
    MULTIAPPEND is all or nothing, RFC 3502 §6.3.11), and a command that
    turns out malformed after its messages ends in a :class:`Rejected` with
    the same tag: in both cases drop what was spooled for this tag."""

    needs_reply: ClassVar[bool] = True
    tag: str
    command: str  # "APPEND" or "REPLACE"
    mailbox: str
    index: int
    size: int
    flags: tuple[str, ...] = ()
    internal_date: dt.datetime | None = None
    binary: bool = False  # literal8 (RFC 3516 §4.4)
    utf8: bool = False  # UTF8 (...) wrapper (RFC 6855 §4)


@dataclass(frozen=True, slots=True)
class AppendData(Event):
    """Octets of the message being appended; spool them."""

    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class AppendEnd(Event):
    """The message literal is complete (``size`` octets)."""

    size: int


@dataclass(frozen=True, slots=True)
class AuthResponse(Event):
    """A client response to a SASL challenge (RFC 9051 §6.2.2), decoded from
    base64. Answer with ``challenge()`` again, ``ok()`` or ``no()``."""

    needs_reply: ClassVar[bool] = True
    tag: str
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class AuthAborted(Event):
    """The client cancelled with ``*`` or sent bad base64; the session sent
    the tagged BAD (RFC 9051 §6.2.2). Forget the SASL exchange."""

    tag: str
    reason: str


@dataclass(frozen=True, slots=True)
class IdleDone(Event):
    """The client ended IDLE with DONE (RFC 2177 §3); answer ``ok()``."""

    needs_reply: ClassVar[bool] = True
    tag: str


@dataclass(frozen=True, slots=True)
class Rejected(Event):
    """The session refused input itself (syntax, state, limits) and sent
    ``response``; for logging and metrics."""

    tag: str | None
    reason: str
    response: bytes


class CloseReason(StrEnum):
    LOGOUT = "logout"
    TOO_MANY_ERRORS = "too-many-errors"
    EOF = "eof"
    SHUTDOWN = "shutdown"
    PROTOCOL = "protocol"  # unrecoverable framing problem


@dataclass(frozen=True, slots=True)
class Closed(Event):
    """The session is over; write what is left, then close the connection."""

    reason: CloseReason
