"""The outgoing queue as the SMTP server's outbox, wired here (DESIGN.md: ``server/``
builds the outbox and hands it to the servers; ``smtpserver`` knows only the
:class:`~kittiwake.smtpserver.context.Outbox` protocol, not the queue).

:class:`QueueOutbox` turns submitted or received mail into queue envelopes:
bytes (DSNs, notices) are written by the queue, a spooled message is taken by
hard link with its prefix (:meth:`kittiwake.queue.Queue.add_file`).
:class:`JunkNotingOutbox` also tells the junk filter whom each account writes
to, since a correspondent of the account is a known good sender.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kittiwake.message.headers import Headers
from kittiwake.smtpserver.context import Outbox
from kittiwake.smtpserver.spool import SpooledMessage

if TYPE_CHECKING:
    from kittiwake.junk import JunkFilter


class QueueOutbox:
    """Hands submitted mail for remote recipients to the outgoing queue (durably)."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    async def enqueue(self, *, account: str | None, mailfrom: str, recipients: list[str],
                      data: bytes, smtputf8: bool, requiretls: bool | None,
                      **dsn: Any) -> list[int]:
        envelope = self._envelope(account, mailfrom, recipients, smtputf8, requiretls,
                                  _has_8bit(data), _tls_required_no(data), dsn)
        message = await self.queue.enqueue(envelope, data)
        return [message.id]

    async def enqueue_spooled(self, *, account: str | None, mailfrom: str,
                              recipients: list[str], message: SpooledMessage, smtputf8: bool,
                              requiretls: bool | None, **dsn: Any) -> list[int]:
        envelope = self._envelope(account, mailfrom, recipients, smtputf8, requiretls,
                                  message.eightbit or not message.prefix.isascii(),
                                  _tls_required_no_in(message.head.headers), dsn)
        queued = await self.queue.add_file(message.path, message.prefix, envelope, link=True)
        return [queued.id]

    @staticmethod
    def _envelope(account: str | None, mailfrom: str, recipients: list[str], smtputf8: bool,
                  requiretls: bool | None, eightbit: bool, tls_required_no: bool,
                  dsn: dict[str, Any]) -> Any:
        from kittiwake.queue import Envelope, NewRecipient

        params = dsn.get("rcpt_params") or {}

        def recipient(address: str) -> NewRecipient:
            p = params.get(address)
            return NewRecipient(address, notify=getattr(p, "notify", None),
                                orcpt=getattr(p, "orcpt", None))

        return Envelope(
            mail_from=mailfrom, recipients=tuple(recipient(r) for r in recipients),
            account=account, smtputf8=smtputf8, eightbit=eightbit, requiretls=requiretls,
            tls_required_no=tls_required_no, ret=dsn.get("ret"), envid=dsn.get("envid"))


def _has_8bit(data: bytes) -> bool:
    return not data.isascii()


def _tls_required_no(data: bytes) -> bool:
    """RFC 8689 §5: a "TLS-Required: No" header field."""
    from kittiwake.message.headers import parse_header_section

    headers, _ = parse_header_section(data)
    return _tls_required_no_in(headers)


def _tls_required_no_in(headers: Headers) -> bool:
    value = headers.get("tls-required")
    return value is not None and value.strip().lower() == "no"


class JunkNotingOutbox:
    """The outgoing queue, telling the junk filter whom each account writes to
    (a correspondent of the account is a known good sender)."""

    def __init__(self, outbox: Outbox, junk: JunkFilter) -> None:
        self.outbox = outbox
        self.junk = junk

    async def enqueue(self, *, account: str | None, mailfrom: str, recipients: list[str],
                      data: bytes, smtputf8: bool, requiretls: bool | None,
                      **dsn: Any) -> list[int]:
        ids = await self.outbox.enqueue(account=account, mailfrom=mailfrom,
                                        recipients=recipients, data=data, smtputf8=smtputf8,
                                        requiretls=requiretls, **dsn)
        if account is not None:
            await self.junk.record_sent(account, recipients, data)
        return ids

    async def enqueue_spooled(self, *, account: str | None, mailfrom: str,
                              recipients: list[str], message: SpooledMessage, smtputf8: bool,
                              requiretls: bool | None, **dsn: Any) -> list[int]:
        ids = await self.outbox.enqueue_spooled(account=account, mailfrom=mailfrom,
                                                recipients=recipients, message=message,
                                                smtputf8=smtputf8, requiretls=requiretls,
                                                **dsn)
        if account is not None:  # the header says whom it is for and what it answers
            await self.junk.record_sent(account, recipients, message.header_bytes)
        return ids
