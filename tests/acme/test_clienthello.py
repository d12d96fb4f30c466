"""The ClientHello peek reads what a real TLS client (OpenSSL via ssl) sends."""

from __future__ import annotations

import ssl

import pytest

from kittiwake.acme.challenges import Challenges
from kittiwake.acme.clienthello import NotClientHello, parse_client_hello


def client_hello(server_name: str | None, alpn: list[str] | None,
                 max_version: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED) -> bytes:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = max_version
    if alpn:
        ctx.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def test_sni_and_alpn_of_a_real_client() -> None:
    hello = parse_client_hello(client_hello("Mail.Example.org", ["acme-tls/1"]))
    assert hello is not None
    assert hello.server_name == "mail.example.org"
    assert hello.alpn_protocols == ("acme-tls/1",)
    assert hello.wants_acme_challenge


def test_ordinary_https_client_is_no_challenge() -> None:
    hello = parse_client_hello(client_hello("mta-sts.example.org", ["h2", "http/1.1"]))
    assert hello is not None and not hello.wants_acme_challenge
    assert hello.alpn_protocols == ("h2", "http/1.1")


def test_no_sni_no_alpn_tls12() -> None:
    hello = parse_client_hello(client_hello(None, None, ssl.TLSVersion.TLSv1_2))
    assert hello is not None
    assert hello.server_name is None and hello.alpn_protocols == ()


def test_every_prefix_asks_for_more() -> None:
    data = client_hello("mail.example.org", ["acme-tls/1"])
    for n in range(len(data)):
        assert parse_client_hello(data[:n]) is None
    assert parse_client_hello(data) is not None


def test_hello_split_over_records() -> None:
    data = client_hello("mail.example.org", ["acme-tls/1"])
    body = data[5:]
    half = len(body) // 2
    split = b"".join(bytes([0x16, 3, 1]) + len(part).to_bytes(2, "big") + part
                     for part in (body[:half], body[half:]))
    for n in range(len(split)):
        assert parse_client_hello(split[:n]) is None
    hello = parse_client_hello(split)
    assert hello is not None and hello.server_name == "mail.example.org"


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\x16\x03\x01\x00\x00",
    b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00",           # ServerHello, not ClientHello
    b"\x16\x03\x01\x00\x08\x01\x00\x00\x04\x03\x03\x00\x00",  # inner vectors truncated
    b"\x16\x03\x01\x00\x04\x01\xff\xff\xff",               # claims a 16 MiB hello
])
def test_garbage_is_refused(data: bytes) -> None:
    with pytest.raises(NotClientHello):
        parse_client_hello(data)


def test_random_bytes_never_crash() -> None:
    import random

    rng = random.Random(7)
    real = client_hello("mail.example.org", ["acme-tls/1"])
    for _ in range(2000):
        data = bytearray(real)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            parse_client_hello(bytes(data))
        except NotClientHello:
            pass


def test_challenges_lookup_is_case_insensitive() -> None:
    challenges = Challenges()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    challenges.set_tls_alpn01("Mail.Example.org.", ctx)
    assert challenges.tls_alpn01_context("mail.example.org") is ctx
    assert challenges.tls_alpn01_context(None) is None
    challenges.remove_tls_alpn01("mail.example.org")
    assert challenges.tls_alpn01_context("mail.example.org") is None
    challenges.set_http01("tok", "tok.thumb")
    assert challenges.http01("tok") == "tok.thumb" and challenges.http01("x") is None
