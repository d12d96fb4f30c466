"""Submission (587 STARTTLS, 465 TLS) as a mail client sees it (RFC 6409, RFC 8314)."""

from __future__ import annotations

import asyncio
import smtplib

import pytest

from kittiwake import dkim

PASSWORD = "correct horse battery"


def submit(server, mailfrom: str, rcpts: list[str], data: bytes, *,  # type: ignore[no-untyped-def]
           implicit: bool = False, password: str = PASSWORD, mech: str | None = None,
           user: str = "alice@example.org") -> dict[str, tuple[int, bytes]]:
    if implicit:
        client: smtplib.SMTP = smtplib.SMTP_SSL("127.0.0.1", server.ports["submissions"],
                                                context=server.client_tls, timeout=10)
    else:
        client = smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=10)
        client.starttls(context=server.client_tls)
    with client:
        client.ehlo("laptop.example")
        if mech:
            client.user, client.password = user, password
            client.auth(mech, getattr(client, "auth_" + mech.lower().replace("-", "_")))
        else:
            client.login(user, password)
        return client.sendmail(mailfrom, rcpts, data)


async def test_mail_needs_auth_and_auth_needs_tls(smtp_server) -> None:  # type: ignore[no-untyped-def]
    def plain_then_mail() -> tuple[str, int]:
        with smtplib.SMTP("127.0.0.1", smtp_server.ports["submission"], timeout=10) as c:
            features = c.ehlo()[1].decode()
            code, _ = c.mail("alice@example.org")
            return features, code
    features, code = await asyncio.to_thread(plain_then_mail)
    assert "AUTH" not in features and "STARTTLS" in features
    assert code == 530


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN", "CRAM-MD5"])
async def test_submit_local_and_remote(smtp_server, mech: str) -> None:  # type: ignore[no-untyped-def]
    data = b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\nHi\r\n"
    refused = await asyncio.to_thread(submit, smtp_server, "alice@example.org",
                                      ["bob@example.org", "friend@remote.example"], data,
                                      mech=mech)
    assert refused == {}
    [stored] = smtp_server.messages("bob")
    head = stored.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nMessage-ID: <" in head and b"\r\nDate: " in head
    assert b"DKIM-Signature: " in head and b"d=example.org" in head and b"s=s1" in head
    assert b"with ESMTPSA" in head
    [queued] = smtp_server.outbox
    assert queued["recipients"] == ["friend@remote.example"]
    assert queued["account"] == "alice" and queued["mailfrom"] == "alice@example.org"
    # The signature verifies with the published key.
    key = dkim.load_private_key((smtp_server.ctx.config_dir / "dkim.pem").read_bytes())
    smtp_server.resolver.add("TXT", "s1._domainkey.example.org", dkim.dns_record(key))
    [result] = await dkim.verify(smtp_server.resolver, stored)
    assert result.status == dkim.Status.PASS


async def test_from_must_belong_to_account(smtp_server) -> None:  # type: ignore[no-untyped-def]
    data = b"From: bob@example.org\r\nTo: x@remote.example\r\nSubject: spoof\r\n\r\nx\r\n"
    with pytest.raises(smtplib.SMTPDataError) as info:
        await asyncio.to_thread(submit, smtp_server, "alice@example.org", ["x@remote.example"],
                                data, implicit=True)
    assert info.value.smtp_code == 550
    assert b"From address bob@example.org is not an address of account alice" in \
        info.value.smtp_error
    assert smtp_server.outbox == []


async def test_wrong_password_is_535(smtp_server) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(smtplib.SMTPAuthenticationError) as info:
        await asyncio.to_thread(submit, smtp_server, "alice@example.org", ["bob@example.org"],
                                b"Subject: x\r\n\r\nx\r\n", password="wrong password")
    assert info.value.smtp_code == 535


async def test_unknown_local_recipient_refused_at_rcpt(smtp_server) -> None:  # type: ignore[no-untyped-def]
    data = b"From: alice@example.org\r\nSubject: x\r\n\r\nx\r\n"
    refused = await asyncio.to_thread(submit, smtp_server, "alice@example.org",
                                      ["bob@example.org", "nobody@example.org"], data)
    assert refused["nobody@example.org"][0] == 550


async def test_dsn_parameters_reach_the_queue(smtp_server) -> None:  # type: ignore[no-untyped-def]
    def submit_with_dsn() -> None:
        with smtplib.SMTP("127.0.0.1", smtp_server.ports["submission"], timeout=10) as c:
            c.starttls(context=smtp_server.client_tls)
            c.login("alice@example.org", PASSWORD)
            assert "dsn" in c.esmtp_features
            c.sendmail("alice@example.org", ["x@remote.example"],
                       b"From: alice@example.org\r\nSubject: dsn\r\n\r\nx\r\n",
                       mail_options=["RET=HDRS", "ENVID=abc123"],
                       rcpt_options=["NOTIFY=FAILURE,DELAY",
                                     "ORCPT=rfc822;x@remote.example"])
    await asyncio.to_thread(submit_with_dsn)
    [queued] = smtp_server.outbox
    assert str(queued["ret"]).upper() == "HDRS" and queued["envid"] == "abc123"
    params = queued["rcpt_params"]["x@remote.example"]
    assert {str(n).upper() for n in params.notify} == {"FAILURE", "DELAY"}
    assert params.orcpt is not None


async def test_queue_outbox_keeps_dsn_parameters(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from kittiwake.queue import Queue
    from kittiwake.server.outbox import QueueOutbox
    from kittiwake.smtp.params import Notify, RcptParams, Ret

    queue = Queue(tmp_path)
    [mid] = await QueueOutbox(queue).enqueue(
        account="alice", mailfrom="alice@example.org", recipients=["x@remote.example"],
        data=b"Subject: x\r\nTLS-Required: No\r\n\r\nx\r\n", smtputf8=False, requiretls=None,
        ret=Ret.HDRS, envid="abc", rcpt_params={"x@remote.example": RcptParams(
            notify=frozenset({Notify.NEVER}))})
    message = await queue.message(mid)
    [rcpt] = await queue.recipients(mid)
    assert message.ret is Ret.HDRS and message.envid == "abc" and message.tls_required_no
    assert rcpt.notify == frozenset({Notify.NEVER})
    queue.close()
