"""Preparing submitted mail (RFC 6409): sender checks, Message-ID/Date, DKIM signing.

An authenticated account may send only with From addresses (and MAIL FROM)
that deliver to itself (RFC 6409 §6.1 lets the server enforce this); MAIL
FROM is checked at the MAIL command, so a client is not made to send a
message that will be refused. Missing Message-ID and Date are added
(RFC 6409 §8.2, §8.3); Date in the numeric zone form ``+0000``, as RFC 5322
§3.3 asks (the obsolete ``GMT`` must not be generated, RFC 5322 §4). The
message is signed with the configured DKIM selectors of the From domain
(RFC 6376 §5).

Where signing runs: in the process that ran the session, off its event loop
(a worker thread, :func:`dkim_signatures`), with the private keys that
process reads from the config directory at first use (``ServerContext.
dkim_keys``, emptied on a domains.conf reload and on SIGHUP). With
``smtp_processes`` > 1 that is an SMTP worker (:mod:`kittiwake.server.
smtpworkers`), not the server process. Measured (2026-12-02, CPU time per
operation, ``time.process_time``; a 5-field header, the body hash already
computed while the body arrived): signing costs 0.06 ms with Ed25519 and
0.36 ms with RSA-2048, so 0.42 ms per message with the two selectors
``kittiwake quickstart`` configures; asking the server to sign would cost
a channel round trip of 0.07 ms (pickling the header fields and the
signature, both ends) and, above all, put the 0.42 ms into the server
process, whose event loop is the serial part every message already waits
for (the store's and the queue's commits). Reading the key files in each
worker costs nothing per message. So the worker signs.
"""

from __future__ import annotations

import email.utils
import os
import time
from datetime import UTC, datetime
from typing import Any

from kittiwake import dkim, dmarc
from kittiwake.log import get_logger
from kittiwake.smtp import Reply
from kittiwake.smtpserver.context import ServerContext
from kittiwake.smtpserver.spool import MessageHead

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


def author_of(head: MessageHead) -> dmarc.AuthorDomain:
    """The From addresses and domain (RFC 7489 §6.6.1) of a parsed header."""
    return dmarc.from_domain([(h.name, h.value) for h in head.headers.fields("from")])


def check_sender(ctx: ServerContext, account: str, mailfrom: str, head: MessageHead) -> str:
    """The From domain, after checking the account may use From and MAIL FROM."""
    refusal = check_mailfrom(ctx, account, mailfrom)
    if refusal is not None:
        raise SubmissionRejected(refusal)
    author = author_of(head)
    if not author.ok or not author.addresses:
        raise SubmissionRejected(Reply(550, "5.6.0", [
            f"message needs exactly one From address ({author.detail or 'none found'})"]))
    for address in author.addresses:
        local, _, domain = address.rpartition("@")
        if not ctx.index.may_send_as(account, local, domain):
            raise SubmissionRejected(Reply(550, "5.7.1", [
                f"From address {address} is not an address of account {account}"]))
    return author.domain or ""


def missing_headers(hostname: str, head: MessageHead) -> bytes:
    """Message-ID and Date fields for a message whose client left them out."""
    extra = b""
    if head.headers.first("message-id") is None:
        ident = f"{int(time.time())}.{os.urandom(8).hex()}@{hostname}"
        extra += f"Message-ID: <{ident}>\r\n".encode()
    if head.headers.first("date") is None:
        extra += f"Date: {message_date(time.time())}\r\n".encode()
    return extra


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


def _signing(ctx: ServerContext, from_domain: str) -> list[tuple[str, Any]]:
    """(selector, its config) the From domain signs with."""
    domain = ctx.domains.domains.get(from_domain)
    if domain is None:
        return []
    return [(selector, domain.dkim.selectors[selector]) for selector in domain.dkim.sign]


def _body_canon(conf: Any) -> dkim.Canon:
    return dkim.Canon(conf.canonicalization.split("/")[1])


def signing_body_hashes(ctx: ServerContext, head: MessageHead) -> set[dkim.BodyHashKey]:
    """The body hashes signing will need, known once the header is (for the spool)."""
    author = author_of(head)
    if not author.ok or not author.domain:
        return set()
    return {(_body_canon(conf), None) for _, conf in _signing(ctx, author.domain)}


def dkim_signatures(ctx: ServerContext, from_domain: str, head: MessageHead, prefix: bytes,
                    body_hashes: dict[dkim.BodyHashKey, tuple[bytes, int]]) -> bytes:
    """DKIM-Signature fields for the From domain's configured selectors (RFC 6376 §5),
    over ``prefix`` (fields we add) and the received header. Blocking (key loading,
    signing): run in a worker thread."""
    fields = (dkim.split_message(prefix)[0] if prefix else []) + head.dkim_fields
    signatures = b""
    for selector, conf in _signing(ctx, from_domain):
        try:
            key = _key(ctx, from_domain, selector, conf.private_key_file)
        except (OSError, ValueError) as exc:
            logger.error("dkim key not loaded", domain=from_domain, selector=selector,
                         path=conf.private_key_file, error=exc)
            continue
        digest = body_hashes.get((_body_canon(conf), None))
        if digest is None:  # the From domain changed its selectors meanwhile
            logger.warn("dkim body hash missing, not signed", domain=from_domain,
                        selector=selector)
            continue
        header_canon, body_canon = conf.canonicalization.split("/")
        signatures += dkim.sign_fields(fields, digest[0], from_domain, selector, key,
                                       headers=conf.headers or None,
                                       canonicalization=(header_canon, body_canon),
                                       expiration=conf.expiration_seconds or None)
    return signatures
