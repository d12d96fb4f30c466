"""The RFCs' own examples: RFC 6376 Appendix A (with Appendix C's key) and RFC 8463 Appendix A."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric import ed25519
from dkim_vectors import (
    RFC6376_B,
    RFC6376_KEY_NAME,
    RFC6376_PRIVATE,
    RFC6376_RECORD,
    RFC6376_SIGNED,
    RFC8463_ED25519_B,
    RFC8463_ED25519_SEED,
    RFC8463_RECORDS,
    RFC8463_SIGNED,
)

from kittiwake.dkim import Status, load_private_key, parse_signature, split_message, verify
from kittiwake.dkim.canon import Canon, body_hash
from kittiwake.dkim.keys import sign_data
from kittiwake.dkim.verify import header_hash_input
from kittiwake.dns import MockResolver


def _resolver(records: dict[str, str], authentic: bool = False) -> MockResolver:
    r = MockResolver()
    for name, value in records.items():
        r.add("TXT", name, value, authentic=authentic)
    return r


async def test_rfc6376_appendix_a_verifies_with_appendix_c_key() -> None:
    """RFC 6376 A.2 as printed (indentation kept, LF read as CRLF) verifies
    with the Appendix C key: c=simple/simple, h= listing Received first.

    Errata reports exist against this example; as printed here it verifies
    fully, and dkimpy and opendkim agree (test_dkim_interop.py). The body line
    "We lost the game. Are you hungry yet?" has one space and the published
    bh= is the hash of exactly that body; RFC 8463 re-used the example with
    two spaces, which gives the same bh= only because it uses relaxed body
    canonicalization (runs of WSP become one SP). With two spaces and
    c=simple the body hash differs, as tested below.
    """
    resolver = _resolver({RFC6376_KEY_NAME: RFC6376_RECORD})
    [result] = await verify(resolver, RFC6376_SIGNED)
    assert result.status is Status.PASS, result.error
    assert (result.domain, result.selector, result.identity) == (
        "example.com", "brisbane", "joe@football.example.com")
    assert result.algorithm == "rsa-sha256"
    assert result.key_bits == 1024
    assert result.header_b == RFC6376_B[:8]

    two_spaces = RFC6376_SIGNED.replace(b"game. Are", b"game.  Are")
    [result] = await verify(resolver, two_spaces)
    assert result.status is Status.FAIL
    assert "body hash" in result.error


def test_rfc6376_signing_reproduces_published_b() -> None:
    """RSASSA-PKCS1-v1_5 is deterministic: our header hash input signed with
    Appendix C's private key must give exactly the published b=."""
    fields, _ = split_message(RFC6376_SIGNED)
    sig = parse_signature(fields[0])
    data = header_hash_input(fields, 0, sig)
    assert data.endswith(b"bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n      b=;")
    _, signature = sign_data(load_private_key(RFC6376_PRIVATE), data)
    assert base64.b64encode(signature).decode() == RFC6376_B


def test_rfc6376_body_hash() -> None:
    _, body = split_message(RFC6376_SIGNED)
    digest, length = body_hash(body, Canon.SIMPLE)
    assert base64.b64encode(digest).decode() == "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8="
    assert length == len(b"Hi.\r\n\r\nWe lost the game. Are you hungry yet?\r\n\r\nJoe.\r\n")


async def test_rfc8463_both_signatures_pass() -> None:
    resolver = _resolver(RFC8463_RECORDS, authentic=True)
    results = await verify(resolver, RFC8463_SIGNED)
    assert [(r.status, r.algorithm, r.selector) for r in results] == [
        (Status.PASS, "ed25519-sha256", "brisbane"), (Status.PASS, "rsa-sha256", "test")]
    assert all(r.authentic for r in results)
    assert results[0].identity == "@football.example.com"
    assert results[0].header_b == "/gCrinpc"


async def test_rfc8463_not_authentic_without_dnssec() -> None:
    results = await verify(_resolver(RFC8463_RECORDS), RFC8463_SIGNED)
    assert [r.status for r in results] == [Status.PASS, Status.PASS]
    assert not any(r.authentic for r in results)


def test_rfc8463_ed25519_signing_reproduces_published_b() -> None:
    """Ed25519 is deterministic too: RFC 8463 A.1's key over our hash input
    (SHA-256 of it, RFC 8463 §3) gives the published b=."""
    fields, _ = split_message(RFC8463_SIGNED)
    sig = parse_signature(fields[0])
    key = ed25519.Ed25519PrivateKey.from_private_bytes(base64.b64decode(RFC8463_ED25519_SEED))
    _, signature = sign_data(key, header_hash_input(fields, 0, sig))
    assert base64.b64encode(signature).decode() == RFC8463_ED25519_B


async def test_rfc8463_mixed_up_keys_fail() -> None:
    """Each signature needs its own key: serving the RSA record for the
    ed25519 selector is a key type mismatch (RFC 6376 §6.1.2)."""
    swapped = {"brisbane._domainkey.football.example.com":
               RFC8463_RECORDS["test._domainkey.football.example.com"],
               "test._domainkey.football.example.com":
               RFC8463_RECORDS["test._domainkey.football.example.com"]}
    results = await verify(_resolver(swapped), RFC8463_SIGNED)
    assert results[0].status is Status.PERMERROR
    assert "k=rsa" in results[0].error
    assert results[1].status is Status.PASS
