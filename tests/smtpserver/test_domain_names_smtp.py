"""Look-alike recipient and sender domains through the real MX listener.

RFC 5891 §5.4 / RFC 5892: what IDNA 2008 disallows gets 553 (RFC 5321 §4.2.2)
with X.1.3 for recipients, X.1.7 for senders (RFC 3463 §3.2); the UTS #46
mapping of full-width dots routes to the same account as the plain form.
"""

from __future__ import annotations

import asyncio
import smtplib

MESSAGE = (b"From: carol@sender.example\r\nTo: bob@example.org\r\n"
           b"Subject: names\r\nMessage-ID: <names@sender.example>\r\n\r\nHi Bob!\r\n")


def converse(port: int, commands: list[str], data: bytes | None = None,
             helo: str = "mail.sender.example") -> list[tuple[int, str]]:
    """Send ``commands`` one by one (UTF-8), then DATA if given; the replies."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname=helo, timeout=10) as client:
        client.command_encoding = "utf-8"
        replies = [(code, text.decode()) for code, text in [client.ehlo()]]
        for command in commands:
            code, text = client.docmd(command)
            replies.append((code, text.decode()))
        if data is not None:
            code, text = client.data(data)
            replies.append((code, text.decode()))
    return replies


async def test_rcpt_with_disallowed_domain_gets_553_5_1_3(smtp_server) -> None:
    replies = await asyncio.to_thread(converse, smtp_server.ports["smtp"], [
        "MAIL FROM:<carol@sender.example> SMTPUTF8",
        "RCPT TO:<bob@\u200bexample.org>",
        "RCPT TO:<bob@exam\u00adple.org>",
        "RCPT TO:<bob@a\u200db.example>",
    ])
    assert replies[1][0] == 250
    zwsp, soft_hyphen, joiner = replies[2:]
    assert zwsp[0] == 553 and zwsp[1].startswith("5.1.3 ")
    assert "U+200B (ZERO WIDTH SPACE)" in zwsp[1]
    assert soft_hyphen[0] == 553 and "5.1.3" in soft_hyphen[1] and "U+00AD" in soft_hyphen[1]
    assert joiner[0] == 553 and "5.1.3" in joiner[1] and "IDNA 2008" in joiner[1]
    assert smtp_server.messages("bob") == []


async def test_full_width_dots_deliver_to_the_plain_account(smtp_server) -> None:
    replies = await asyncio.to_thread(converse, smtp_server.ports["smtp"], [
        "MAIL FROM:<carol@sender.example> SMTPUTF8",
        "RCPT TO:<bob@example\uff0eorg>",
        "RCPT TO:<bob@EXAMPLE\u3002ORG>",
    ], MESSAGE)
    assert [code for code, _ in replies[1:]] == [250, 250, 250, 250]
    [stored] = smtp_server.messages("bob")
    assert stored.endswith(MESSAGE)


async def test_mail_from_with_disallowed_domain_gets_553_5_1_7(smtp_server) -> None:
    replies = await asyncio.to_thread(converse, smtp_server.ports["smtp"], [
        "MAIL FROM:<carol@\u200bsender.example> SMTPUTF8",
    ])
    code, text = replies[1]
    assert code == 553 and text.startswith("5.1.7 ") and "U+200B" in text


async def test_address_literals_still_work_in_ehlo_and_mail_from(smtp_server) -> None:
    replies = await asyncio.to_thread(converse, smtp_server.ports["smtp"], [
        "MAIL FROM:<carol@[127.0.0.1]>",
        "RCPT TO:<bob@example.org>",
    ], MESSAGE, helo="[127.0.0.1]")
    assert [code for code, _ in replies] == [250, 250, 250, 250]
    assert len(smtp_server.messages("bob")) == 1
