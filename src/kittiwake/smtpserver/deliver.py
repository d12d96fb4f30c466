"""Delivering accepted mail into local accounts, each to its chosen mailbox.

The SMTP reply to DATA is sent only after every delivery here returned,
that is after message file and row are on disk (DESIGN.md "Durability").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kittiwake.config.lookup import AccountRecipient, pick_mailbox
from kittiwake.message.headers import parse_header_section
from kittiwake.smtpserver.context import ServerContext
from kittiwake.store import MailboxNotFound, OverQuota, StoreError

logger = logging.getLogger("kittiwake.smtpserver")


@dataclass
class LocalDelivery:
    recipient: str  # the RCPT TO address
    target: AccountRecipient


@dataclass
class DeliveryFailure:
    recipient: str
    temporary: bool
    reason: str


async def deliver_local(ctx: ServerContext, deliveries: list[LocalDelivery], data: bytes,
                        mailfrom: str, verified_domains: frozenset[str] = frozenset()
                        ) -> list[DeliveryFailure]:
    """Store the message once per (account, mailbox); returns the failures."""
    headers, _ = parse_header_section(data)
    header_pairs = [(h.name.lower(), h.decoded) for h in headers]
    msg_from = headers.decoded("from") or ""
    done: set[tuple[str, str]] = set()
    failures: list[DeliveryFailure] = []
    for item in deliveries:
        mailbox = pick_mailbox(item.target.destination, mailfrom=mailfrom, msg_from=msg_from,
                               verified_domains=verified_domains, headers=header_pairs)
        key = (item.target.account, mailbox)
        if key in done:
            continue
        conf = ctx.domains.accounts.get(item.target.account)
        try:
            account = await ctx.store.account(
                item.target.account, conf.quota_bytes if conf else 0,
                conf.mailboxes if conf else ())
            try:
                delivered = await account.deliver(mailbox, data, mailfrom=mailfrom,
                                                  rcptto=item.recipient)
            except MailboxNotFound:
                logger.warning("mailbox %s of account %s does not exist; delivering to Inbox",
                               mailbox, item.target.account)
                delivered = await account.deliver("Inbox", data, mailfrom=mailfrom,
                                                  rcptto=item.recipient)
            logger.info("delivered to %s mailbox %s uid %d (%d bytes)", item.target.account,
                        delivered.mailbox, delivered.uid, delivered.size)
            done.add(key)
        except OverQuota as exc:
            failures.append(DeliveryFailure(item.recipient, False, str(exc)))
        except (StoreError, OSError) as exc:
            logger.error("delivery to %s failed: %s", item.target.account, exc)
            failures.append(DeliveryFailure(item.recipient, True, "local delivery failed"))
    return failures
