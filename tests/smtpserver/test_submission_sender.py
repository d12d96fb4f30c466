"""Submission: a foreign MAIL FROM is refused at MAIL; the Date we add is RFC 5322 §3.3 form."""

from __future__ import annotations

import asyncio
import email.utils
import re
import smtplib

PASSWORD = "correct horse battery"


def _session(server, mailfrom: str) -> list[tuple[int, bytes]]:  # type: ignore[no-untyped-def]
    """Log in as alice, then MAIL FROM and RCPT TO; the replies as the client saw them."""
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=10) as client:
        client.starttls(context=server.client_tls)
        client.ehlo("laptop.example")
        client.login("alice@example.org", PASSWORD)
        replies = [client.mail(mailfrom)]
        replies.append(client.rcpt("x@remote.example"))
        return replies


async def test_foreign_mail_from_is_refused_at_mail(smtp_server) -> None:  # type: ignore[no-untyped-def]
    mail, rcpt = await asyncio.to_thread(_session, smtp_server, "bob@example.org")
    assert mail == (550, b"5.7.1 MAIL FROM bob@example.org is not an address of account alice")
    assert rcpt[0] == 503  # no transaction: the client never gets to send the message
    assert smtp_server.outbox == []


async def test_own_mail_from_and_null_sender_are_accepted(smtp_server) -> None:  # type: ignore[no-untyped-def]
    for mailfrom in ("alice@example.org", ""):
        mail, rcpt = await asyncio.to_thread(_session, smtp_server, mailfrom)
        assert mail[0] == 250 and rcpt[0] == 250


def _submit_without_date(server) -> None:  # type: ignore[no-untyped-def]
    data = b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\nHi\r\n"
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=10) as client:
        client.starttls(context=server.client_tls)
        client.login("alice@example.org", PASSWORD)
        client.sendmail("alice@example.org", ["bob@example.org"], data)


async def test_added_date_uses_numeric_zone(smtp_server) -> None:  # type: ignore[no-untyped-def]
    await asyncio.to_thread(_submit_without_date, smtp_server)
    [stored] = smtp_server.messages("bob")
    [date] = re.findall(rb"\r\nDate: ([^\r]*)\r\n", stored)
    assert date.endswith(b" +0000"), date
    assert b"GMT" not in date
    assert email.utils.parsedate_to_datetime(date.decode()).utcoffset().total_seconds() == 0


def test_message_date() -> None:
    from kittiwake.smtpserver.submission import message_date

    assert message_date(1796130000.5) == "Tue, 01 Dec 2026 13:00:00 +0000"
