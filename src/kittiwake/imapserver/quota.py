"""The account's quota root "" and its resources (RFC 9208).

One quota root per account, named "" (RFC 9208 §3.2), governing every mailbox
of the account. Resources:

- STORAGE (§5.1): the size of all messages, in units of 1024 octets; the
  limit is ``quota_bytes`` in domains.conf, enforced by the store on every
  write (IMAP and SMTP alike).
- MESSAGE (§5.2): the number of messages in all mailboxes; the limit is
  ``quota_messages``, enforced by the store on every delivery and APPEND
  (SMTP alike: the message is refused, and the sender told), and here on
  APPEND and COPY before any work (MOVE and REPLACE do not add messages).

A resource without a limit (0) is not reported; an account with neither has
no quota root.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kittiwake.imap.codes import Code
from kittiwake.imapserver.state import HandlerError

if TYPE_CHECKING:
    from kittiwake.imapserver.connection import IMAPConnection

__all__ = ["RESOURCES", "check_messages", "resources"]

RESOURCES = ("STORAGE", "MESSAGE")  # advertised as QUOTA=RES-<name> (RFC 9208 §4)


async def message_count(conn: IMAPConnection) -> int:
    assert conn.account is not None
    return sum(box.messages for box in await conn.account.mailboxes())


async def resources(conn: IMAPConnection) -> list[tuple[str, int, int]]:
    """(name, usage, limit) of each limited resource of the root "" (RFC 9208 §5)."""
    assert conn.account is not None
    out: list[tuple[str, int, int]] = []
    limit = conn.ctx.quota_of(conn.account_name)
    if limit:
        used = await conn.account.total_size()
        # RFC 9208 §5.1: STORAGE in units of 1024 octets.
        out.append(("STORAGE", (used + 1023) // 1024, limit // 1024))
    messages = conn.ctx.message_quota_of(conn.account_name)
    if messages:
        out.append(("MESSAGE", await message_count(conn), messages))
    return out


async def check_messages(conn: IMAPConnection, adding: int) -> None:
    """Refuse with NO [OVERQUOTA] (RFC 9208 §4.3) if ``adding`` more messages
    would exceed the MESSAGE limit."""
    limit = conn.ctx.message_quota_of(conn.account_name)
    if not limit or adding <= 0:
        return
    count = await message_count(conn)
    if count + adding > limit:
        raise HandlerError(f"the account would hold {count + adding} messages, more than "
                           f"its quota of {limit}", Code.OVERQUOTA)
