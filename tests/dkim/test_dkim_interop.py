"""Interoperability with dkimpy and opendkim, both ways (see dkim_oracles.py).

Ed25519: opendkim 2.11 (Debian) signs and verifies ed25519-sha256, so both
algorithms are tested against both peers. A missing peer fails these tests.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from dkim_oracles import DkimPy, OpenDKIM
from dkim_vectors import (
    RFC6376_KEY_NAME,
    RFC6376_RECORD,
    RFC6376_SIGNED,
    RFC8463_RECORDS,
    RFC8463_SIGNED,
)

from kittiwake.dkim import dns_record, generate_key, load_private_key, sign_message, verify
from kittiwake.dns import MockResolver

pytestmark = pytest.mark.integration

DOMAIN = "example.org"
# Plain header layout: opendkim's test mode (-t) re-assembles header fields as
# "Name: value", so extra white space after a colon breaks its c=simple
# results; such messages are tested with dkimpy only (test_simple_whitespace).
MESSAGE = (b"From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\n"
           b"Subject: Lunch on\r\n Friday?\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
           b"Message-ID: <1@example.org>\r\n\r\nSee you  at noon. \r\n\r\n\tBob\r\n\r\n\r\n")
CANONS = [("relaxed", "relaxed"), ("simple", "simple")]


@pytest.fixture(scope="module")
def opendkim() -> Iterator[OpenDKIM]:
    peer = OpenDKIM()
    yield peer
    peer.close()


@pytest.fixture(scope="module")
def dkimpy() -> Iterator[DkimPy]:
    peer = DkimPy()
    yield peer
    peer.close()


@pytest.fixture(scope="module")
def pems() -> dict[str, bytes]:
    return {"rsa": generate_key("rsa", bits=2048), "ed25519": generate_key("ed25519")}


def records(pems: dict[str, bytes]) -> dict[str, str]:
    return {f"{kind}._domainkey.{DOMAIN}": dns_record(load_private_key(pem))
            for kind, pem in pems.items()}


def resolver(pems: dict[str, bytes]) -> MockResolver:
    r = MockResolver()
    for name, value in records(pems).items():
        r.add("TXT", name, value)
    return r


def dkimpy_key(kind: str, pem: bytes) -> str:
    """dkimpy takes RSA keys as PEM and Ed25519 keys as the base64 seed."""
    if kind == "rsa":
        return pem.decode()
    raw = load_private_key(pem).private_bytes(  # type: ignore[union-attr]
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
        serialization.NoEncryption())
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
@pytest.mark.parametrize("canon", CANONS)
async def test_we_sign_they_verify(pems: dict[str, bytes], opendkim: OpenDKIM, dkimpy: DkimPy,
                                   kind: str, canon: tuple[str, str]) -> None:
    signed = sign_message(MESSAGE, DOMAIN, kind, pems[kind], canonicalization=canon)
    assert dkimpy.verify(signed, records(pems)) == [True]
    assert opendkim.verify(signed, records(pems)) == "pass"
    # ... and all three agree that a changed body no longer verifies.
    tampered = signed.replace(b"noon", b"nine")
    [verdict] = dkimpy.verify(tampered, records(pems))
    assert "body hash mismatch" in str(verdict)
    assert opendkim.verify(tampered, records(pems)) == "fail"
    assert [r.status.value for r in await verify(resolver(pems), tampered)] == ["fail"]


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
@pytest.mark.parametrize("canon", CANONS)
async def test_dkimpy_signs_we_verify(pems: dict[str, bytes], dkimpy: DkimPy, kind: str,
                                      canon: tuple[str, str]) -> None:
    field = dkimpy.sign(MESSAGE, DOMAIN, kind, dkimpy_key(kind, pems[kind]), f"{kind}-sha256",
                        canon, ["from", "to", "subject", "date", "message-id", "from"])
    results = await verify(resolver(pems), field + MESSAGE)
    assert [(r.status.value, r.error, r.algorithm) for r in results] == [
        ("pass", "", f"{kind}-sha256")]


@pytest.mark.parametrize(("kind", "canon"), [
    ("rsa", ("relaxed", "relaxed")), ("rsa", ("simple", "simple")),
    ("ed25519", ("relaxed", "relaxed")), ("ed25519", ("relaxed", "simple")),
])
async def test_opendkim_signs_we_verify(pems: dict[str, bytes], opendkim: OpenDKIM, kind: str,
                                        canon: tuple[str, str]) -> None:
    """Not ed25519 with c=simple headers: opendkim 2.11's own ed25519
    signatures with simple header canonicalization fail in opendkim itself,
    in dkimpy and here alike (a bug of opendkim's test mode or signer), while
    it verifies ours with simple/simple fine (test_we_sign_they_verify)."""
    field = opendkim.sign(MESSAGE, DOMAIN, kind, pems[kind], f"{kind}-sha256", "/".join(canon))
    assert f"a={kind}-sha256".encode() in field
    results = await verify(resolver(pems), field + MESSAGE)
    assert [(r.status.value, r.error) for r in results] == [("pass", "")]


async def test_simple_whitespace_agrees_with_dkimpy(pems: dict[str, bytes],
                                                    dkimpy: DkimPy) -> None:
    """c=simple keeps white space exactly; dkimpy and we agree both ways."""
    odd = MESSAGE.replace(b"Subject: Lunch", b"Subject:  Lunch\t").replace(b"Date: ", b"Date:")
    ours = sign_message(odd, DOMAIN, "rsa", pems["rsa"], canonicalization=("simple", "simple"))
    assert dkimpy.verify(ours, records(pems)) == [True]
    theirs = dkimpy.sign(odd, DOMAIN, "rsa", pems["rsa"].decode(), "rsa-sha256",
                         ("simple", "simple"), ["from", "subject", "date"])
    assert [r.status.value for r in await verify(resolver(pems), theirs + odd)] == ["pass"]


async def test_rsa_sha1_from_dkimpy_is_refused(pems: dict[str, bytes], dkimpy: DkimPy) -> None:
    """dkimpy still signs rsa-sha1; RFC 8301 §3.1 says not to accept it."""
    field = dkimpy.sign(MESSAGE, DOMAIN, "rsa", pems["rsa"].decode(), "rsa-sha1",
                        ("relaxed", "relaxed"), ["from", "to", "subject"])
    assert b"a=rsa-sha1" in field
    [result] = await verify(resolver(pems), field + MESSAGE)
    assert result.status.value == "permerror" and "RFC 8301" in result.error


def test_peers_agree_on_rfc_examples(opendkim: OpenDKIM, dkimpy: DkimPy) -> None:
    """The oracles pass the RFC examples of test_dkim_vectors.py as transcribed."""
    assert dkimpy.verify(RFC6376_SIGNED, {RFC6376_KEY_NAME: RFC6376_RECORD}) == [True]
    assert opendkim.verify(RFC6376_SIGNED, {RFC6376_KEY_NAME: RFC6376_RECORD}) == "pass"
    assert dkimpy.verify(RFC8463_SIGNED, RFC8463_RECORDS) == [True, True]
    assert opendkim.verify(RFC8463_SIGNED, RFC8463_RECORDS) == "pass pass"


async def test_body_length_agrees_with_dkimpy(pems: dict[str, bytes], dkimpy: DkimPy) -> None:
    """l= (RFC 6376 §3.5) counts canonical body octets the same way on both sides."""
    ours = sign_message(MESSAGE, DOMAIN, "ed25519", pems["ed25519"], body_length=12)
    appended = ours + b"unsigned tail\r\n"
    assert dkimpy.verify(appended, records(pems)) == [True]
    [result] = await verify(resolver(pems), appended)
    assert result.status.value == "pass" and result.body_length_limited
    field = dkimpy.sign(MESSAGE, DOMAIN, "rsa", pems["rsa"].decode(), "rsa-sha256",
                        ("relaxed", "relaxed"), ["from", "subject"], length=True)
    assert b"l=" in field
    [result] = await verify(resolver(pems), field + MESSAGE + b"more\r\n")
    assert result.status.value == "pass" and result.body_length_limited
    [result] = await verify(resolver(pems), field + MESSAGE)
    assert result.status.value == "pass" and not result.body_length_limited
