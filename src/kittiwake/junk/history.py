"""What the user said about a message: its class from mailbox and flags (pure).

A message is *junk* when the user flagged it ``$Junk`` or it is in the Junk
mailbox; *ham* when flagged ``$NotJunk``, answered (``\\Answered``, or a
message the account sent refers to it in In-Reply-To/References, RFC 5322
§3.6.4), rescued (moved out of Junk or Rejects by the user), or read in an
ordinary mailbox and left there. Otherwise the user has said nothing: mail
still unread, in Trash, or in Rejects (where the filter put it) trains
nothing and counts only as "seen before". ``$Junk``/``$NotJunk`` are the
keywords of the IANA IMAP keyword registry (RFC 5788 §5 names the registry).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

SEEN, ANSWERED = 1, 2  # the store's system flag bits (RFC 9051 §2.3.2)
JUNK_KEYWORD = "$junk"
NOT_JUNK_KEYWORD = "$notjunk"

TRASH_NAMES = frozenset({"trash", "deleted items", "deleted messages"})
SENT_NAMES = frozenset({"sent", "sent items", "sent messages", "sent mail"})
DRAFT_NAMES = frozenset({"drafts"})


class Class(enum.StrEnum):
    """What a message counts as, for reputation and for training."""

    HAM = "ham"
    JUNK = "junk"
    UNKNOWN = ""


class MailboxKind(enum.StrEnum):
    ORDINARY = "ordinary"
    JUNK = "junk"
    REJECTS = "rejects"
    TRASH = "trash"
    SENT = "sent"
    DRAFTS = "drafts"


@dataclass(frozen=True)
class MailboxNames:
    """The account's Junk and Rejects mailbox names (from its junk settings)."""

    junk: str = "Junk"
    rejects: str = "Rejects"

    def kind(self, mailbox: str) -> MailboxKind:
        name = mailbox.lower()
        if name == self.junk.lower():
            return MailboxKind.JUNK
        if name == self.rejects.lower():
            return MailboxKind.REJECTS
        if name in TRASH_NAMES:
            return MailboxKind.TRASH
        if name in SENT_NAMES:
            return MailboxKind.SENT
        if name in DRAFT_NAMES:
            return MailboxKind.DRAFTS
        return MailboxKind.ORDINARY


@dataclass(frozen=True)
class MessageState:
    """What the history keeps about where a message is and how it is flagged."""

    kind: MailboxKind
    system_flags: int = 0
    keywords: tuple[str, ...] = ()
    rescued: bool = False
    replied: bool = False

    def user_class(self) -> Class:
        keywords = {k.lower() for k in self.keywords}
        if NOT_JUNK_KEYWORD in keywords:
            return Class.HAM
        if JUNK_KEYWORD in keywords or self.kind is MailboxKind.JUNK:
            return Class.JUNK
        if self.kind is not MailboxKind.ORDINARY:
            return Class.UNKNOWN
        if self.rescued or self.replied or self.system_flags & (ANSWERED | SEEN):
            return Class.HAM
        return Class.UNKNOWN


def rescued_by_move(old: MailboxKind, new: MailboxKind, was_rescued: bool) -> bool:
    """A move out of Junk/Rejects into an ordinary mailbox is the user saying "not junk"."""
    if new is MailboxKind.JUNK:
        return False
    if old in (MailboxKind.JUNK, MailboxKind.REJECTS) and new is MailboxKind.ORDINARY:
        return True
    return was_rescued
