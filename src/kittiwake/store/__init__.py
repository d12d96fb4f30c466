"""The message store: accounts, mailboxes, messages, flags, modseq (DESIGN.md "Storage")."""

from kittiwake.store.account import AccountStore, Appended, normalize_mailbox_name
from kittiwake.store.changes import ChangeHub, Subscription
from kittiwake.store.model import (
    AccountNotFound,
    Change,
    Delivered,
    Flags,
    Mailbox,
    MailboxExists,
    MailboxNotFound,
    Message,
    OverQuota,
    StoreError,
)
from kittiwake.store.spool import SpoolFile
from kittiwake.store.store import Account, Store

__all__ = [
    "Account", "AccountNotFound", "AccountStore", "Appended", "Change", "ChangeHub", "Delivered",
    "Flags",
    "Mailbox", "MailboxExists", "MailboxNotFound", "Message", "OverQuota", "SpoolFile", "Store",
    "StoreError", "Subscription", "normalize_mailbox_name",
]
