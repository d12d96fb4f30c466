"""Signing and verification against a mock resolver: what passes, what does not, and why."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from kittiwake.dkim import (
    MAX_SIGNATURES,
    Status,
    dns_record,
    generate_key,
    load_private_key,
    sign,
    sign_message,
    verify,
)
from kittiwake.dkim.keys import PrivateKey
from kittiwake.dns import MockResolver

NOW = 1_700_000_000
MESSAGE = (b"From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\n"
           b"Subject: Lunch\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
           b"Message-ID: <1@example.org>\r\n\r\nSee you at noon.\r\n")


@pytest.fixture(scope="module")
def keys() -> dict[str, PrivateKey]:
    return {"ed25519": load_private_key(generate_key("ed25519")),
            "rsa": load_private_key(generate_key("rsa", bits=2048))}


def resolver_for(keys: dict[str, PrivateKey], authentic: bool = False) -> MockResolver:
    r = MockResolver()
    for kind, key in keys.items():
        r.add("TXT", f"{kind}._domainkey.example.org", dns_record(key), authentic=authentic)
    return r


async def check(resolver: MockResolver, message: bytes, now: float = NOW) -> list[tuple[str, str]]:
    return [(r.status.value, r.error) for r in await verify(resolver, message, now=now)]


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
@pytest.mark.parametrize("canon", [("relaxed", "relaxed"), ("simple", "simple"),
                                   ("relaxed", "simple"), ("simple", "relaxed")])
async def test_round_trip(keys: dict[str, PrivateKey], kind: str,
                          canon: tuple[str, str]) -> None:
    signed = sign_message(MESSAGE, "example.org", kind, keys[kind], canonicalization=canon,
                          now=NOW)
    [result] = await verify(resolver_for(keys, authentic=True), signed, now=NOW)
    assert result.status is Status.PASS, result.error
    assert result.authentic
    assert result.algorithm == f"{kind}-sha256"
    assert (result.domain, result.selector, result.identity) == (
        "example.org", kind, "@example.org")
    assert not result.body_length_limited


async def test_signature_field_is_folded_and_prepended(keys: dict[str, PrivateKey]) -> None:
    field = sign(MESSAGE, "example.org", "rsa", keys["rsa"], now=NOW)
    assert field.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;")
    assert field.endswith(b"\r\n") and field.count(b"\r\n") > 3
    assert all(len(line) <= 78 for line in field.split(b"\r\n"))
    assert b"t=1700000000;" in field
    assert sign_message(MESSAGE, "example.org", "rsa", keys["rsa"], now=NOW) == field + MESSAGE


async def test_bare_lf_message(keys: dict[str, PrivateKey]) -> None:
    """A file with LF line ends is signed in its CRLF form and keeps LF ends."""
    lf = MESSAGE.replace(b"\r\n", b"\n")
    signed = sign_message(lf, "example.org", "ed25519", keys["ed25519"], now=NOW)
    assert b"\r" not in signed
    resolver = resolver_for(keys)
    assert await check(resolver, signed) == [("pass", "")]
    assert await check(resolver, signed.replace(b"\n", b"\r\n")) == [("pass", "")]


async def test_default_headers_oversign(keys: dict[str, PrivateKey]) -> None:
    """From, To, Subject, ... are listed once more than present, so an added
    second Subject breaks the signature (RFC 6376 §5.4.2, §8.15)."""
    signed = sign_message(MESSAGE, "example.org", "rsa", keys["rsa"], now=NOW)
    h = signed.split(b"h=", 1)[1].split(b";", 1)[0].replace(b"\r\n ", b"").split(b":")
    assert h.count(b"From") == 2 and h.count(b"Subject") == 2 and h.count(b"To") == 2
    assert h.count(b"Cc") == 1  # absent but over-signed: none may be added
    added = signed.replace(b"Subject: Lunch\r\n", b"Subject: Lunch\r\nSubject: Free money\r\n")
    assert await check(resolver_for(keys), added) == [
        ("fail", "signature did not verify (headers modified?)")]


async def test_unsigned_message_has_no_results(keys: dict[str, PrivateKey]) -> None:
    assert await verify(resolver_for(keys), MESSAGE) == []


# ---- negative cases ----

async def test_body_modified_fails(keys: dict[str, PrivateKey]) -> None:
    signed = sign_message(MESSAGE, "example.org", "ed25519", keys["ed25519"], now=NOW)
    assert await check(resolver_for(keys), signed.replace(b"noon", b"one")) == [
        ("fail", "body hash did not verify (body modified?)")]


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
async def test_header_modified_fails(keys: dict[str, PrivateKey], kind: str) -> None:
    signed = sign_message(MESSAGE, "example.org", kind, keys[kind], now=NOW)
    assert await check(resolver_for(keys), signed.replace(b"Lunch", b"Dinner")) == [
        ("fail", "signature did not verify (headers modified?)")]


async def test_relaxed_tolerates_whitespace_changes(keys: dict[str, PrivateKey]) -> None:
    signed = sign_message(MESSAGE, "example.org", "rsa", keys["rsa"], now=NOW)
    changed = signed.replace(b"Subject: Lunch", b"subject :  Lunch ").replace(
        b"at noon.", b"at   noon.  ")
    assert await check(resolver_for(keys), changed) == [("pass", "")]
    simple = sign_message(MESSAGE, "example.org", "rsa", keys["rsa"], now=NOW,
                          canonicalization=("simple", "simple"))
    assert (await check(resolver_for(keys), simple.replace(b"Subject: Lunch",
                                                           b"Subject:  Lunch")))[0][0] == "fail"


async def test_revoked_key_is_permerror(keys: dict[str, PrivateKey]) -> None:
    signed = sign_message(MESSAGE, "example.org", "rsa", keys["rsa"], now=NOW)
    r = MockResolver()
    r.add("TXT", "rsa._domainkey.example.org", "v=DKIM1; k=rsa; p=")
    assert await check(r, signed) == [("permerror", "key revoked (empty p=)")]


async def test_missing_key_is_permerror(keys: dict[str, PrivateKey]) -> None:
    signed = sign_message(MESSAGE, "example.org", "rsa", keys["rsa"], now=NOW)
    [(status, error)] = await check(MockResolver(), signed)
    assert status == "permerror"
    assert error == "no key for signature (nxdomain at rsa._domainkey.example.org)"


async def test_servfail_is_temperror(keys: dict[str, PrivateKey]) -> None:
    signed = sign_message(MESSAGE, "example.org", "rsa", keys["rsa"], now=NOW)
    r = MockResolver()
    r.fail("TXT", "rsa._domainkey.example.org", "servfail")
    [(status, error)] = await check(r, signed)
    assert status == "temperror" and "SERVFAIL" in error


async def test_expiration(keys: dict[str, PrivateKey]) -> None:
    """x= in the past: RFC 6376 §6.1.1 lets verifiers return PERMFAIL
    (signature expired); RFC 8601 calls that permerror."""
    signed = sign_message(MESSAGE, "example.org", "ed25519", keys["ed25519"], now=NOW,
                          expiration=3600)
    assert b"x=1700003600;" in signed
    resolver = resolver_for(keys)
    assert await check(resolver, signed, now=NOW + 3600) == [("pass", "")]
    assert await check(resolver, signed, now=NOW + 3601) == [
        ("permerror", "signature expired (x=1700003600)")]


async def test_timestamp_in_future(keys: dict[str, PrivateKey]) -> None:
    signed = sign_message(MESSAGE, "example.org", "ed25519", keys["ed25519"], now=NOW + 3600)
    [(status, error)] = await check(resolver_for(keys), signed, now=NOW)
    assert status == "permerror" and "in the future" in error
    # A little clock skew is tolerated.
    assert await check(resolver_for(keys), signed, now=NOW + 3500) == [("pass", "")]


def _field(tags: str) -> bytes:
    return b"DKIM-Signature: " + tags.encode() + b"\r\n" + MESSAGE


BH = "bh=" + base64.b64encode(b"\x00" * 32).decode()


@pytest.mark.parametrize(("tags", "error"), [
    (f"v=1;; a=rsa-sha256; d=example.org; s=rsa; h=from; {BH}; b=AAAA",
     'syntax error: empty tag (";;" or nothing at all)'),
    (f"v=1; a=rsa-sha256; d=example.org; s=rsa; h=from; {BH}; b=AAAA; d=x.org",
     "syntax error: duplicate tag 'd'"),
    (f"v=1; a=rsa-sha256; d=example.org; h=from; {BH}; b=AAAA", "missing required tag s="),
    (f"v=2; a=rsa-sha256; d=example.org; s=rsa; h=from; {BH}; b=AAAA",
     "incompatible version v=2"),
    (f"v=1; a=rsa-md5; d=example.org; s=rsa; h=from; {BH}; b=AAAA",
     "unsupported algorithm a=rsa-md5"),
    (f"v=1; a=rsa-sha256; c=fancy; d=example.org; s=rsa; h=from; {BH}; b=AAAA",
     "unknown canonicalization c=fancy"),
    (f"v=1; a=rsa-sha256; d=example.org; s=rsa; h=to:subject; {BH}; b=AAAA",
     "From header field not signed (h= lacks from)"),
    (f"v=1; a=rsa-sha256; d=example.org; s=rsa; h=; {BH}; b=AAAA",
     "h= is empty or names an invalid header field"),
    (f"v=1; a=rsa-sha256; d=example.org; s=rsa; h=from; {BH}; b=AAAA; i=a@example.com",
     "i= domain example.com is not within d=example.org"),
    (f"v=1; a=rsa-sha256; d=example.org; s=rsa; h=from; {BH}; b=AA!A", "b= is not valid base64"),
    (f"v=1; a=rsa-sha256; d=example.org; s=rsa; h=from; {BH}; b=AAAA; l=x1",
     "invalid l= value 'x1'"),
    (f"v=1; a=rsa-sha256; d=example.org; s=rsa; h=from; {BH}; b=AAAA; t=20; x=10",
     "x= expiration is not after t= timestamp"),
    (f"v=1; a=rsa-sha256; d=example.org; s=rsa; q=http; h=from; {BH}; b=AAAA",
     "unsupported query method q=http"),
    (f"v=1; a=rsa-sha256; d=exa mple.org; s=rsa; h=from; {BH}; b=AAAA",
     "invalid d= domain 'exa mple.org'"),
])
async def test_malformed_signature_is_permerror(tags: str, error: str) -> None:
    r = MockResolver()
    assert await check(r, _field(tags)) == [("permerror", error)]
    assert r.queries == []  # rejected before any DNS lookup


async def test_rsa_sha1_is_refused() -> None:
    """RFC 8301 §3.1: verifiers MUST NOT consider rsa-sha1 signatures valid."""
    r = MockResolver()
    bh_sha1 = base64.b64encode(b"\x00" * 20).decode()
    [(status, error)] = await check(r, _field(
        f"v=1; a=rsa-sha1; d=example.org; s=rsa; h=from; bh={bh_sha1}; b=AAAA"))
    assert status == "permerror" and "rsa-sha1" in error and "RFC 8301" in error


async def test_small_rsa_key_is_refused(keys: dict[str, PrivateKey]) -> None:
    """RFC 8301 §3.2: keys under 1024 bits are not valid."""
    signed = sign_message(MESSAGE, "example.org", "rsa", keys["rsa"], now=NOW)
    # cryptography will not generate such keys; a public key is just numbers.
    small = rsa.RSAPublicNumbers(65537, (1 << 511) | 0x1F).public_key()
    r = MockResolver()
    r.add("TXT", "rsa._domainkey.example.org", dns_record(small))
    [(status, error)] = await check(r, signed)
    assert status == "permerror" and "512 bits is too small" in error


@pytest.mark.parametrize(("record", "error"), [
    ("v=DKIM1; k=ed25519; p={ed25519}", "key type k=ed25519 does not match a=rsa-sha256"),
    ("v=DKIM1; h=sha1; p={rsa}", "key h=sha1 does not allow sha256"),
    ("v=DKIM1; s=other; p={rsa}", "key service type s= does not include email"),
    ("v=DKIM2; p={rsa}", "key record version 'DKIM2' is not DKIM1"),
    ("p={rsa}; v=DKIM1", "key record v= is not the first tag"),
    ("v=DKIM1; k=rsa", "key record has no p= tag"),
    ("v=DKIM1; p=MIIB!", "key record p= is not valid base64"),
    ("v=DKIM1; k=dsa; p={rsa}", "unknown key type k=dsa"),
])
async def test_unusable_key_record(keys: dict[str, PrivateKey], record: str,
                                   error: str) -> None:
    signed = sign_message(MESSAGE, "example.org", "rsa", keys["rsa"], now=NOW)
    p = {k: dns_record(v).split("p=", 1)[1] for k, v in keys.items()}
    r = MockResolver()
    r.add("TXT", "rsa._domainkey.example.org", record.format(**p))
    assert await check(r, signed) == [("permerror", error)]


async def test_strict_key_requires_exact_identity_domain(keys: dict[str, PrivateKey]) -> None:
    """Key flag t=s: the i= domain must be d= itself (RFC 6376 §3.6.1)."""
    signed = sign_message(MESSAGE, "example.org", "rsa", keys["rsa"], now=NOW,
                          identity="alice@mail.example.org")
    record = dns_record(keys["rsa"])
    r = MockResolver()
    r.add("TXT", "rsa._domainkey.example.org", record)
    assert await check(r, signed) == [("pass", "")]
    strict = MockResolver()
    strict.add("TXT", "rsa._domainkey.example.org", record + "; t=s")
    [(status, error)] = await check(strict, signed)
    assert status == "permerror" and "t=s" in error


async def test_testing_key_is_reported(keys: dict[str, PrivateKey]) -> None:
    signed = sign_message(MESSAGE, "example.org", "ed25519", keys["ed25519"], now=NOW)
    r = MockResolver()
    r.add("TXT", "ed25519._domainkey.example.org", dns_record(keys["ed25519"]) + "; t=y")
    [result] = await verify(r, signed, now=NOW)
    assert result.status is Status.PASS and result.testing


async def test_several_txt_records_first_usable_wins(keys: dict[str, PrivateKey]) -> None:
    signed = sign_message(MESSAGE, "example.org", "ed25519", keys["ed25519"], now=NOW)
    r = MockResolver()
    r.add("TXT", "ed25519._domainkey.example.org", "v=spf1 -all", dns_record(keys["ed25519"]))
    assert await check(r, signed) == [("pass", "")]
    bad = MockResolver()
    bad.add("TXT", "ed25519._domainkey.example.org", "v=spf1 -all", "garbage")
    [(status, error)] = await check(bad, signed)
    assert status == "permerror" and error == "key record version 'spf1 -all' is not DKIM1"


async def test_body_length_limit(keys: dict[str, PrivateKey]) -> None:
    """l= (RFC 6376 §3.5, §8.2): content after l= octets is not covered; the
    signature still passes but the result says so."""
    signed = sign_message(MESSAGE, "example.org", "rsa", keys["rsa"], now=NOW,
                          body_length=len(b"See you at noon.\r\n"))
    resolver = resolver_for(keys)
    [result] = await verify(resolver, signed, now=NOW)
    assert result.status is Status.PASS and not result.body_length_limited
    appended = signed + b"\r\nClick here: http://evil.example/\r\n"
    [result] = await verify(resolver, appended, now=NOW)
    assert result.status is Status.PASS and result.body_length_limited
    changed = signed.replace(b"noon", b"nine")
    assert (await check(resolver, changed))[0][0] == "fail"
    too_long = sign_message(MESSAGE, "example.org", "rsa", keys["rsa"], now=NOW,
                            body_length=1000)
    [(status, error)] = await check(resolver, too_long)
    assert status == "permerror" and "l=1000 is longer than the canonical body" in error


async def test_signature_count_is_limited(keys: dict[str, PrivateKey]) -> None:
    message = MESSAGE
    for i in range(MAX_SIGNATURES + 2):
        message = sign_message(message, "example.org", "ed25519", keys["ed25519"], now=NOW + i)
    r = resolver_for(keys)
    results = await verify(r, message, now=NOW + 100)
    assert len(results) == MAX_SIGNATURES + 2
    assert [x.status for x in results[:MAX_SIGNATURES]] == [Status.PASS] * MAX_SIGNATURES
    assert [x.status for x in results[MAX_SIGNATURES:]] == [Status.POLICY] * 2
    assert "not checked" in results[-1].error
    assert len(r.queries) == MAX_SIGNATURES


async def test_header_b_prefixes_are_unique(keys: dict[str, PrivateKey]) -> None:
    """RFC 6008: header.b has at least 8 characters, more when needed to tell
    signatures apart."""
    one = sign(MESSAGE, "example.org", "ed25519", keys["ed25519"], now=NOW)
    b = one.split(b" b=", 1)[1].replace(b"\r\n ", b"").strip().decode()
    # A forged twin whose b= differs from the real one at the 11th character.
    forged = b[:10] + ("A" if b[10] != "A" else "B") + b[11:]
    twin = one.replace(b"b=" + b[:11].encode(), b"b=" + forged[:11].encode())
    assert twin != one
    results = await verify(resolver_for(keys), twin + one + MESSAGE, now=NOW)
    assert [r.status for r in results] == [Status.FAIL, Status.PASS]
    assert [r.header_b for r in results] == [forged[:11], b[:11]]
    other = sign(MESSAGE, "example.org", "rsa", keys["rsa"], now=NOW)
    results = await verify(resolver_for(keys), other + one + MESSAGE, now=NOW)
    assert [len(r.header_b) for r in results] == [8, 8]


def test_sign_rejects_bad_arguments(keys: dict[str, PrivateKey]) -> None:
    key = keys["ed25519"]
    with pytest.raises(ValueError, match="From"):
        sign(MESSAGE, "example.org", "s", key, headers=["To", "Subject"])
    with pytest.raises(ValueError, match="no From"):
        sign(b"To: x@example.org\r\n\r\nhi\r\n", "example.org", "s", key)
    with pytest.raises(ValueError, match="not an address within"):
        sign(MESSAGE, "example.org", "s", key, identity="a@example.com")
    with pytest.raises(ValueError, match="selector"):
        sign(MESSAGE, "example.org", "bad selector", key)
    with pytest.raises(ValueError, match="canonicalization"):
        sign(MESSAGE, "example.org", "s", key, canonicalization=("relaxed", "fancy"))
    with pytest.raises(ValueError, match="not a PEM private key"):
        sign(MESSAGE, "example.org", "s", b"not a key")


async def test_large_message_two_signatures(keys: dict[str, PrivateKey]) -> None:
    """Large messages are parsed and hashed in worker threads; the result is the same."""
    big = MESSAGE + b"All  work and no play. \r\n" * 20_000
    signed = sign_message(big, "example.org", "rsa", keys["rsa"], now=NOW)
    signed = sign_message(signed, "example.org", "ed25519", keys["ed25519"], now=NOW,
                          canonicalization=("simple", "simple"))
    assert len(signed) > 256 * 1024
    resolver = resolver_for(keys)
    assert await check(resolver, signed) == [("pass", ""), ("pass", "")]
    [(_, ed), (_, rs)] = await check(resolver, signed.replace(b"no play", b"no pay", 1))
    assert ed == rs == "body hash did not verify (body modified?)"


async def test_key_record_variants(keys: dict[str, PrivateKey]) -> None:
    """p= split over TXT strings (joined with white space), PKCS#1 RSA keys
    as some publishers have them, no v= tag, upper-case k=."""
    from cryptography.hazmat.primitives import serialization

    signed = sign_message(MESSAGE, "example.org", "rsa", keys["rsa"], now=NOW)
    pkcs1 = base64.b64encode(keys["rsa"].public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1)).decode()
    spki = dns_record(keys["rsa"]).split("p=", 1)[1]
    for record in (f"k=RSA; p={pkcs1}", f"v=DKIM1; p={spki[:100]} {spki[100:]};",
                   f"v=DKIM1; h=sha1:sha256; s=email; t=s; n=notes here; p={spki}"):
        r = MockResolver()
        r.add("TXT", "rsa._domainkey.example.org", record)
        assert await check(r, signed) == [("pass", "")], record


async def test_thousands_of_signatures_stay_cheap(keys: dict[str, PrivateKey]) -> None:
    field = sign(MESSAGE, "example.org", "ed25519", keys["ed25519"], now=NOW)
    r = resolver_for(keys)
    results = await verify(r, field * 3000 + MESSAGE, now=NOW)
    assert len(results) == 3000 and len(r.queries) == MAX_SIGNATURES
    assert {x.status for x in results[:MAX_SIGNATURES]} == {Status.PASS}
    assert {x.status for x in results[MAX_SIGNATURES:]} == {Status.POLICY}


async def test_internationalized_domain(keys: dict[str, PrivateKey]) -> None:
    """RFC 8616 §4: d= and i= may hold U-labels; the key is looked up by A-labels."""
    message = MESSAGE.replace(b"alice@example.org", "jörg@bücher.example".encode())
    signed = sign_message(message, "Bücher.example", "sel", keys["ed25519"], now=NOW,
                          identity="jörg@bücher.example")
    r = MockResolver()
    r.add("TXT", "sel._domainkey.xn--bcher-kva.example", dns_record(keys["ed25519"]))
    [result] = await verify(r, signed, now=NOW)
    assert result.status is Status.PASS, result.error
    assert (result.domain, result.identity) == ("bücher.example", "jörg@bücher.example")
