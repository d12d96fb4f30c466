"""Value types of the store: mailboxes, messages, flags, changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from kittiwake.store.schema import FLAG_NAMES, SYSTEM_FLAGS


class StoreError(Exception):
    """A store operation failed; the message is for the user."""


class MailboxNotFound(StoreError):
    pass


class MailboxExists(StoreError):
    pass


class OverQuota(StoreError):
    """Delivery would exceed the account's quota (RFC 5321 552 / 4.2.2)."""


class AccountNotFound(StoreError):
    pass


class MetadataLimit(StoreError):
    """A METADATA entry is too large or there would be too many (RFC 5464 §4.3)."""

    def __init__(self, text: str, too_many: bool, max_size: int) -> None:
        super().__init__(text)
        self.too_many = too_many
        self.max_size = max_size


@dataclass(frozen=True)
class Mailbox:
    """A mailbox with the counts IMAP STATUS reports (RFC 9051 §6.3.11)."""

    id: int
    name: str
    uidvalidity: int
    uidnext: int
    special_use: str
    messages: int
    unseen: int
    deleted: int
    size: int
    highestmodseq: int
    subscribed: bool = False


@dataclass(frozen=True)
class Flags:
    """System flags as a bit set plus keywords (RFC 9051 §2.3.2)."""

    system: int = 0
    keywords: tuple[str, ...] = ()

    @classmethod
    def parse(cls, names: list[str] | tuple[str, ...] | set[str]) -> Flags:
        """From IMAP flag names; unknown backslash flags are ignored, keywords kept."""
        bits = 0
        keywords: dict[str, str] = {}
        for name in names:
            bit = SYSTEM_FLAGS.get(name.lower())
            if bit:
                bits |= bit
            elif not name.startswith("\\") and name:
                keywords.setdefault(name.lower(), name)
        return cls(bits, tuple(sorted(keywords.values(), key=str.lower)))

    def names(self) -> list[str]:
        return [n for bit, n in FLAG_NAMES.items() if self.system & bit] + list(self.keywords)

    def keyword_text(self) -> str:
        return " ".join(self.keywords)

    @classmethod
    def from_row(cls, bits: int, keywords: str) -> Flags:
        return cls(bits, tuple(keywords.split()) if keywords else ())


@dataclass(frozen=True)
class Message:
    """One stored message's row (no body)."""

    id: int
    mailbox_id: int
    uid: int
    modseq: int
    flags: Flags
    size: int
    received: int  # INTERNALDATE, milliseconds since the epoch
    saved: int  # SAVEDATE (RFC 8514), milliseconds
    message_id: str
    thread_id: int
    subject: str = ""


@dataclass
class FlagsStored:
    """What a flag change did (RFC 9051 §6.4.6, RFC 7162 §3.1.3).

    ``messages``: every message of the set that exists and passed the
    UNCHANGEDSINCE test, with its flags and modseq after the transaction, in
    UID order; ``changed``: those of them whose flags changed (they carry the
    transaction's modseq); ``failed``: UIDs that failed UNCHANGEDSINCE.
    """

    messages: list[Message]
    changed: list[Message]
    failed: list[int]


class FetchRow(NamedTuple):
    """What a reader of many messages needs of each row, as SQLite gives it (no
    objects built per message): :meth:`AccountStore.fetch_rows
    <kittiwake.store.account.AccountStore.fetch_rows>`.

    ``flags``/``keywords`` are the stored bits and keyword text
    (:meth:`Flags.from_row`); ``prefix`` the delivery prefix
    (:mod:`kittiwake.store.messagefile`).
    """

    id: int
    uid: int
    modseq: int
    flags: int
    keywords: str
    size: int
    received: int
    saved: int
    thread_id: int
    prefix: bytes

    def message(self, mailbox_id: int = 0) -> Message:
        """The row as a :class:`Message` (``message_id`` and ``subject`` left empty)."""
        return Message(self.id, mailbox_id, self.uid, self.modseq,
                       Flags.from_row(self.flags, self.keywords), self.size, self.received,
                       self.saved, "", self.thread_id)


class IdRow(NamedTuple):
    """A message's row id and UID (:meth:`AccountStore.fetch_ids
    <kittiwake.store.account.AccountStore.fetch_ids>`), as a :class:`FetchRow` has."""

    id: int
    uid: int


class FlagRow(NamedTuple):
    """A message's row id, UID, modseq and flags, as a :class:`FetchRow` has them
    (:meth:`AccountStore.fetch_narrow
    <kittiwake.store.account.AccountStore.fetch_narrow>`)."""

    id: int
    uid: int
    modseq: int
    flags: int
    keywords: str


class FileRow(NamedTuple):
    """A message's row id, UID and delivery prefix, as a :class:`FetchRow` has them
    (:meth:`AccountStore.fetch_narrow
    <kittiwake.store.account.AccountStore.fetch_narrow>`): what a reader of its
    octets needs."""

    id: int
    uid: int
    prefix: bytes


@dataclass(frozen=True)
class Delivered:
    """What a successful delivery returns: only after file and row are on disk."""

    message_id: int
    mailbox: str
    uid: int
    uidvalidity: int
    size: int


SUBSCRIPTION = "subscription"  # Change kinds without a mailbox row of their own
METADATA = "metadata"


@dataclass(frozen=True)
class Change:
    """A committed change, broadcast to every open session of the account.

    kind: "added", "flags", "expunged", "mailbox-added", "mailbox-renamed",
    "mailbox-removed", "mailbox-counts", "subscription" (``extra["subscribed"]``),
    "metadata" (``extra["entries"]``; ``mailbox`` "" for server entries).
    """

    kind: str
    mailbox_id: int
    mailbox: str = ""
    uids: tuple[int, ...] = ()
    modseq: int = 0
    flags: tuple[Flags, ...] = ()
    old_name: str = ""
    extra: dict[str, object] = field(default_factory=dict)
