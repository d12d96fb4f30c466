"""Preparing submitted mail (RFC 6409): sender checks, Message-ID/Date, DKIM signing.

An authenticated account may send only with From addresses (and MAIL FROM)
that deliver to itself (RFC 6409 §6.1 lets the server enforce this); MAIL
FROM is checked at the MAIL command, so a client is not made to send a
message that will be refused. Missing Message-ID and Date are added
(RFC 6409 §8.2, §8.3); Date in the numeric zone form ``+0000``, as RFC 5322
§3.3 asks (the obsolete ``GMT`` must not be generated, RFC 5322 §4). The
message is signed with the configured DKIM selectors of the From domain
(RFC 6376 §5).
"""

from __future__ import annotations

import email.utils
import os
import time
from datetime import UTC, datetime
from typing import Any

from kittiwake import dkim, dmarc
from kittiwake.log import get_logger
from kittiwake.message.headers import parse_header_section
from kittiwake.smtp import Reply
from kittiwake.smtpserver.context import ServerContext

logger = get_logger("smtpserver")


class SubmissionRejected(Exception):
    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.lines[0] if reply.lines else "")
        self.reply = reply


def check_mailfrom(ctx: ServerContext, account: str, mailfrom: str) -> Reply | None:
    """The refusal for a MAIL FROM the account may not use, or None (RFC 6409 §6.1).

    The null reverse-path is allowed (a client may send notifications).
    """
    if not mailfrom:
        return None
    local, _, domain = mailfrom.rpartition("@")
    if ctx.index.may_send_as(account, local, domain):
        return None
    return Reply(550, "5.7.1", [f"MAIL FROM {mailfrom} is not an address of account {account}"])


def check_sender(ctx: ServerContext, account: str, mailfrom: str, data: bytes) -> str:
    """The From domain, after checking the account may use From and MAIL FROM."""
    refusal = check_mailfrom(ctx, account, mailfrom)
    if refusal is not None:
        raise SubmissionRejected(refusal)
    author = dmarc.from_domain(data)
    if not author.ok or not author.addresses:
        raise SubmissionRejected(Reply(550, "5.6.0", [
            f"message needs exactly one From address ({author.detail or 'none found'})"]))
    for address in author.addresses:
        local, _, domain = address.rpartition("@")
        if not ctx.index.may_send_as(account, local, domain):
            raise SubmissionRejected(Reply(550, "5.7.1", [
                f"From address {address} is not an address of account {account}"]))
    return author.domain or ""


def add_missing_headers(hostname: str, data: bytes) -> bytes:
    """Add Message-ID and Date when the client left them out."""
    headers, _ = parse_header_section(data)
    extra = b""
    if headers.first("message-id") is None:
        ident = f"{int(time.time())}.{os.urandom(8).hex()}@{hostname}"
        extra += f"Message-ID: <{ident}>\r\n".encode()
    if headers.first("date") is None:
        extra += f"Date: {message_date(time.time())}\r\n".encode()
    return extra + data


def message_date(timestamp: float) -> str:
    """A Date value such as ``Tue, 01 Dec 2026 12:57:27 +0000`` (RFC 5322 §3.3)."""
    return email.utils.format_datetime(datetime.fromtimestamp(int(timestamp), UTC))


def _key(ctx: ServerContext, domain: str, selector: str, key_file: str) -> Any:
    cache_key = f"{domain}/{selector}"
    key = ctx.dkim_keys.get(cache_key)
    if key is None:
        path = ctx.config_dir / key_file if ctx.config_dir is not None else key_file
        with open(path, "rb") as f:
            key = dkim.load_private_key(f.read())
        ctx.dkim_keys[cache_key] = key
    return key


def dkim_sign(ctx: ServerContext, from_domain: str, data: bytes) -> bytes:
    """Prepend DKIM-Signature headers for the From domain's configured selectors."""
    domain = ctx.domains.domains.get(from_domain)
    if domain is None:
        return data
    signatures = b""
    for selector in domain.dkim.sign:
        conf = domain.dkim.selectors[selector]
        try:
            key = _key(ctx, from_domain, selector, conf.private_key_file)
        except (OSError, ValueError) as exc:
            logger.error("dkim key not loaded", domain=from_domain, selector=selector,
                         path=conf.private_key_file, error=exc)
            continue
        header_canon, body_canon = conf.canonicalization.split("/")
        signatures += dkim.sign(data, from_domain, selector, key,
                                headers=conf.headers or None,
                                canonicalization=(header_canon, body_canon),
                                expiration=conf.expiration_seconds or None)
    return signatures + data
