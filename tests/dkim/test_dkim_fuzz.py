"""verify() on hostile input (hypothesis): it never raises, every result is one of the
RFC 6376 §3.9 / RFC 8601 statuses with its evidence, and a "pass" comes only from a
signature that really verifies (dkimpy agrees), never from noise."""

from __future__ import annotations

import asyncio
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dkim as dkimpy
from kittiwake.dkim import Status, dns_record, generate_key, load_private_key, sign, verify
from kittiwake.dkim.tags import TagListError, parse_tag_list
from kittiwake.dns import MockResolver

KEY = load_private_key(generate_key("ed25519"))
MESSAGE = (b"From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\n"
           b"Subject: Lunch\r\n\r\nSee you at noon.\r\n")
SIGNED = sign(MESSAGE, "example.org", "sel", KEY, now=1_700_000_000) + MESSAGE
RSA_KEY = load_private_key(generate_key("rsa", 1024))
RSA_SIGNED = sign(MESSAGE, "example.org", "rsa", RSA_KEY, now=1_700_000_000) + MESSAGE
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


RECORDS = {"sel._domainkey.example.org": dns_record(KEY),
           "rsa._domainkey.example.org": dns_record(RSA_KEY)}


def _resolver() -> MockResolver:
    r = MockResolver()
    for name, record in RECORDS.items():
        r.add("TXT", name, record)
    return r


def _signature_fields(message: bytes) -> int:
    """DKIM-Signature fields in the header section (an upper bound on results)."""
    header = re.split(rb"\r?\n\r?\n", message, maxsplit=1)[0]
    return len(re.findall(rb"(?:^|\n)dkim-signature[ \t]*:", header, re.IGNORECASE))


def _verify(message: bytes) -> list[Status]:
    results = asyncio.run(verify(_resolver(), message, now=1_700_000_000))
    assert len(results) <= _signature_fields(message), (results, message)
    for r in results:
        assert isinstance(r.status, Status)
        assert not r.error.startswith("internal error"), r
        if r.status is Status.PASS:
            # A pass names the signer whose key verified it, and nothing went wrong.
            assert r.error == "" and (r.domain, r.selector) in (
                ("example.org", "sel"), ("example.org", "rsa")), r
            assert r.header_b and r.algorithm in ("ed25519-sha256", "rsa-sha256"), r
        else:
            assert r.error, r  # every other verdict says why
    return [r.status for r in results]


def _dkimpy_verifies(message: bytes) -> bool:
    """The oracle: dkimpy (an independent RFC 6376 implementation), same key records."""
    def dnsfunc(name: bytes | str, timeout: int = 5) -> bytes:
        key = name.decode() if isinstance(name, bytes) else name
        return RECORDS.get(key.rstrip("."), "").encode()
    try:
        return bool(dkimpy.verify(message, dnsfunc=dnsfunc, minkey=1024))
    except Exception:
        return False


def test_unchanged_message_passes() -> None:
    assert _verify(SIGNED) == [Status.PASS]
    assert _verify(RSA_SIGNED) == [Status.PASS]
    assert _dkimpy_verifies(RSA_SIGNED)


@SETTINGS
@given(st.binary(max_size=2000))
def test_arbitrary_bytes(data: bytes) -> None:
    assert Status.PASS not in _verify(data)
    statuses = _verify(b"DKIM-Signature: " + data)
    assert Status.PASS not in statuses
    if b"\n" not in data and b"\r" not in data:
        # One header field, a signature however broken: exactly one verdict.
        assert len(statuses) == 1, statuses


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, len(SIGNED) - 1), st.binary(min_size=0, max_size=8)),
                min_size=1, max_size=4))
def test_mutated_signed_message(edits: list[tuple[int, bytes]]) -> None:
    """Replace, insert or delete a few bytes anywhere in a signed message."""
    data = SIGNED
    for pos, chunk in edits:
        data = data[:pos] + chunk + data[pos + len(chunk) % 3:]
    statuses = _verify(data)
    if data == SIGNED:
        assert statuses == [Status.PASS]


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, len(RSA_SIGNED) - 1),
                          st.binary(min_size=0, max_size=8)), min_size=1, max_size=4))
def test_mutated_rsa_message_passes_only_when_dkimpy_agrees(
        edits: list[tuple[int, bytes]]) -> None:
    """The edits that keep a pass are those relaxed canonicalization forgives
    (RFC 6376 §3.4.2, §3.4.4); dkimpy must then verify the same bytes too."""
    data = RSA_SIGNED
    for pos, chunk in edits:
        data = data[:pos] + chunk + data[pos + len(chunk) % 3:]
    statuses = _verify(data)
    if Status.PASS in statuses:
        assert _dkimpy_verifies(data), data
    if data == RSA_SIGNED:
        assert statuses == [Status.PASS]


@SETTINGS
@given(st.text(alphabet="abvdhs=;: \t\r\n-_01@.AZ\x00\xe9", max_size=80))
def test_tag_list_parser(text: str) -> None:
    try:
        tags = parse_tag_list(text)
    except TagListError:
        return
    assert all(t.name.isascii() and t.name[0].isalpha() for t in tags.values())


_VALID = {"v": "1", "a": "ed25519-sha256", "c": "relaxed/relaxed", "d": "example.org",
          "s": "sel", "h": "from:to:subject", "bh": SIGNED.split(b"bh=")[1][:44].decode(),
          "b": "AAAA"}
_VALUE = st.one_of(
    st.sampled_from(["1", "", "rsa-sha256", "rsa-sha1", "simple", "relaxed/simple", "example.org",
                     "@example.org", "x@sub.example.org", "from", "from:from", "9" * 80, "0",
                     "dns/txt", "sel.sub", "-", "..", "é.example", "a" * 300, "AAAA=="]),
    st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=0x2FF), max_size=30))


@SETTINGS
@given(st.dictionaries(st.sampled_from([*sorted(_VALID), "i", "l", "q", "t", "x", "z"]),
                       _VALUE, max_size=6))
def test_structured_signature_tags(overrides: dict[str, str]) -> None:
    """Valid-looking signatures with some tags replaced by odd values."""
    tags = {**_VALID, **overrides}
    field = "; ".join(f"{k}={v}" for k, v in tags.items())
    statuses = _verify(b"DKIM-Signature: " + field.encode("utf-8") + b"\r\n" + MESSAGE)
    if "\n" not in field and "\r" not in field:
        assert len(statuses) == 1, statuses
    if overrides.get("b", "AAAA") == "AAAA":  # no real signature: never a pass
        assert statuses != [Status.PASS], (overrides, statuses)
