"""What an IMAP command handler returns or raises, and a session's state records.

Kept apart from the driver (``connection``) so that every handler module can
import them directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kittiwake.imap import responses as r
from kittiwake.imap.codes import Code
from kittiwake.imap.events import AppendStart
from kittiwake.imapserver.changelog import ChangeLog
from kittiwake.imapserver.view import SelectedView
from kittiwake.store import SpoolFile

__all__ = ["Answer", "HandlerError", "PendingAppend", "Selected"]


@dataclass
class Answer:
    """A handler's tagged answer; the dispatcher adds pending updates before it."""

    status: str = "OK"  # OK, NO, BAD
    text: str = ""
    code: Code | r.ResponseCode | None = None


class HandlerError(Exception):
    """A handler refuses the command: NO (or BAD) with a response code."""

    def __init__(self, text: str, code: Code | r.ResponseCode | None = None,
                 status: str = "NO") -> None:
        super().__init__(text)
        self.text = text
        self.code = code
        self.status = status


@dataclass
class Selected:
    """The selected mailbox of a session (RFC 9051 §3.3)."""

    name: str  # store name ("Inbox", not INBOX)
    mailbox_id: int
    uidvalidity: int
    readonly: bool
    view: SelectedView
    qresync: bool = False
    # Keywords announced in FLAGS: lower case -> as written.
    keyword_names: dict[str, str] = field(default_factory=dict)
    # The mailbox's shared flag-change log (CONDSTORE sessions), for CHANGEDSINCE.
    changelog: ChangeLog | None = None


@dataclass
class PendingAppend:
    """Messages of one APPEND/MULTIAPPEND command being spooled."""

    mailbox: str
    spools: list[SpoolFile] = field(default_factory=list)
    starts: list[AppendStart] = field(default_factory=list)
