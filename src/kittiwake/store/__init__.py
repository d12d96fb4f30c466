"""The message store: accounts, mailboxes, messages, flags, modseq (DESIGN.md "Storage")."""

from kittiwake.store.account import AccountStore, normalize_mailbox_name
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
from kittiwake.store.store import Account, Store

__all__ = [
    "Account", "AccountNotFound", "AccountStore", "Change", "ChangeHub", "Delivered", "Flags",
    "Mailbox", "MailboxExists", "MailboxNotFound", "Message", "OverQuota", "Store",
    "StoreError", "Subscription", "normalize_mailbox_name",
]
