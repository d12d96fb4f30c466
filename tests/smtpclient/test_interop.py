"""The client against the real kittiwake SMTP server, in-process on 127.0.0.1."""

from __future__ import annotations

import ssl

import pytest
import trustme

from kittiwake import dane
from kittiwake.smtp import Notify, RcptParams, Ret
from kittiwake.smtpclient import (
    AuthError,
    Client,
    Outcome,
    Recipient,
    Stage,
    TLSError,
    TLSMode,
    unverified_context,
)

from .conftest import CA, PASSWORD, Running

MSG = (b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: interop\r\n\r\n"
       b"Hello Bob,\r\n.a line with a leading dot\r\n")


def tls12(ca: CA) -> ssl.SSLContext:
    """The server offers -PLUS only on TLS 1.2 (tls-unique); Python has no tls-exporter."""
    ctx = ssl.create_default_context()
    ca.ca.configure_trust(ctx)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


@pytest.mark.parametrize(("mechanism", "implicit", "tls_12"), [
    ("SCRAM-SHA-256-PLUS", False, True),
    ("SCRAM-SHA-1-PLUS", True, True),
    ("SCRAM-SHA-256", False, False),
    ("SCRAM-SHA-1", True, False),
    ("CRAM-MD5", False, False),
    ("PLAIN", True, False),
    ("LOGIN", False, False),
])
async def test_submit_with_each_mechanism(kittiwake_server: Running, ca: CA, mechanism: str,
                                          implicit: bool, tls_12: bool) -> None:
    port = kittiwake_server.ports["submissions" if implicit else "submission"]
    async with await Client.connect(
            "127.0.0.1", port, local_hostname="laptop.example", timeouts=10,
            tls=TLSMode.IMPLICIT if implicit else TLSMode.STARTTLS,
            tls_context=tls12(ca) if tls_12 else ca.client,
            tls_server_name="mx.example.org") as c:
        assert c.tls is not None and c.tls.pkix_verified
        assert c.tls.version == ("TLSv1.2" if tls_12 else "TLSv1.3")
        assert c.capabilities is not None and "STARTTLS" not in c.capabilities.keywords
        assert await c.auth("alice@example.org", PASSWORD, [mechanism]) == mechanism
        result = await c.deliver("alice@example.org", ["bob@example.org"], MSG)
    [r] = result.recipients
    assert r.outcome is Outcome.DELIVERED and r.stage is Stage.DATA_END, r.reason
    [stored] = kittiwake_server.messages("bob")
    assert b"\r\n.a line with a leading dot\r\n" in stored and b"with ESMTPSA" in stored


async def test_default_choice_is_strongest(kittiwake_server: Running, ca: CA) -> None:
    for ctx, expected in ((tls12(ca), "SCRAM-SHA-256-PLUS"), (ca.client, "SCRAM-SHA-256")):
        async with await Client.connect(
                "127.0.0.1", kittiwake_server.ports["submission"], local_hostname="l.example",
                timeouts=10, tls=TLSMode.STARTTLS, tls_context=ctx,
                tls_server_name="mx.example.org") as c:
            assert await c.auth("alice@example.org", PASSWORD) == expected


async def test_wrong_password_and_plaintext(kittiwake_server: Running, ca: CA) -> None:
    async with await Client.connect(
            "127.0.0.1", kittiwake_server.ports["submission"], local_hostname="l.example",
            timeouts=10, tls=TLSMode.STARTTLS, tls_context=ca.client,
            tls_server_name="mx.example.org") as c:
        with pytest.raises(AuthError) as info:
            await c.auth("alice@example.org", "wrong", ["PLAIN"])
    assert info.value.permanent and info.value.reply is not None
    assert info.value.reply.code == 535 and info.value.command == "AUTH PLAIN"
    # Without TLS the server offers no AUTH and the client would not send PLAIN anyway.
    async with await Client.connect(
            "127.0.0.1", kittiwake_server.ports["submission"], local_hostname="l.example",
            timeouts=10) as c:
        with pytest.raises(AuthError, match="no usable AUTH mechanism"):
            await c.auth("alice@example.org", PASSWORD)


async def test_mx_delivery_with_pipelining(kittiwake_server: Running, ca: CA) -> None:
    async with await Client.connect(
            "127.0.0.1", kittiwake_server.ports["smtp"], local_hostname="mail.sender.example",
            timeouts=10, tls=TLSMode.OPPORTUNISTIC) as c:
        assert c.tls is not None and not c.tls.pkix_verified  # opportunistic: unverified
        caps = c.capabilities
        assert caps is not None and caps.pipelining and caps.requiretls and caps.smtputf8
        result = await c.deliver("someone@sender.example",
                                 ["bob@example.org", "nobody@example.org", "alice@example.org"],
                                 b"Subject: hi\r\n\r\nhi\r\n", requiretls=True)
    bob, nobody, alice = result.recipients
    assert bob.outcome is alice.outcome is Outcome.DELIVERED
    assert nobody.outcome is Outcome.PERMANENT and nobody.stage is Stage.RCPT
    assert nobody.reply is not None and nobody.reply.code == 550
    assert len(kittiwake_server.messages("bob")) == 1


async def test_mx_smtputf8_bdat_binarymime_and_dsn(kittiwake_server: Running) -> None:
    body = "Subject: Grüße\r\n\r\nbinary \x00 and ü\r\n.\r\n".encode()
    async with await Client.connect(
            "127.0.0.1", kittiwake_server.ports["smtp"], local_hostname="mail.sender.example",
            timeouts=10, tls=TLSMode.OPPORTUNISTIC) as c:
        result = await c.deliver(
            "jösé@bücher.example",
            [Recipient("bob@example.org", RcptParams(notify=frozenset({Notify.SUCCESS})))],
            body, smtputf8=True, binarymime=True, ret=Ret.HDRS)
        # The same session goes on: a plain DATA transaction with dot-stuffing.
        again = await c.deliver("", ["bob@example.org"], b"Subject: 2\r\n\r\n.\r\n..\r\n")
    [r] = result.recipients
    assert r.outcome is Outcome.DELIVERED and r.stage is Stage.BDAT, r.reason
    # kittiwake announces DSN (RFC 3461), so the next hop takes over the notices.
    assert not result.dsn_relayed
    [r2] = again.recipients
    assert r2.outcome is Outcome.DELIVERED and r2.stage is Stage.DATA_END
    first, second = kittiwake_server.messages("bob")
    assert first.endswith(body) and "jösé@bücher.example" in first.decode()
    assert second.endswith(b"Subject: 2\r\n\r\n.\r\n..\r\n")


async def test_dane_ta_with_the_peer_chain(kittiwake_server: Running, ca: CA) -> None:
    """DANE-TA on the intermediate needs the chain as sent (Python 3.11: private API)."""
    intermediate_der = ssl.PEM_cert_to_DER_cert(
        ca.chain_pem[1].decode())  # leaf first, then the intermediate
    good = [dane.record_for(intermediate_der, dane.Usage.DANE_TA, dane.Selector.SPKI)]
    other = trustme.CA().cert_pem.bytes().decode()
    bad = [dane.record_for(ssl.PEM_cert_to_DER_cert(other), dane.Usage.DANE_TA)]
    for records, ok in ((good, True), (bad, False)):
        def check(info, records=records):  # type: ignore[no-untyped-def]
            v = dane.verify(records, info.chain_der, ["mx.example.org"])
            return None if v.ok else v.reason

        connecting = Client.connect("127.0.0.1", kittiwake_server.ports["smtp"],
                                    local_hostname="l.example", timeouts=10,
                                    tls=TLSMode.STARTTLS, tls_context=unverified_context(),
                                    tls_server_name="mx.example.org", tls_verify=check)
        if ok:
            c = await connecting
            assert c.tls is not None and len(c.tls.chain_der) == 2
            await c.quit()
        else:
            with pytest.raises(TLSError) as info:
                await connecting
            assert str(info.value).startswith("TLS certificate of [127.0.0.1] rejected: ")
