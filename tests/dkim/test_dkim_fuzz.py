"""verify() must never raise, whatever the message (hypothesis)."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kittiwake.dkim import Status, dns_record, generate_key, load_private_key, sign, verify
from kittiwake.dkim.tags import TagListError, parse_tag_list
from kittiwake.dns import MockResolver

KEY = load_private_key(generate_key("ed25519"))
MESSAGE = (b"From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\n"
           b"Subject: Lunch\r\n\r\nSee you at noon.\r\n")
SIGNED = sign(MESSAGE, "example.org", "sel", KEY, now=1_700_000_000) + MESSAGE
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _resolver() -> MockResolver:
    r = MockResolver()
    r.add("TXT", "sel._domainkey.example.org", dns_record(KEY))
    return r


def _verify(message: bytes) -> list[Status]:
    results = asyncio.run(verify(_resolver(), message, now=1_700_000_000))
    for r in results:
        assert not r.error.startswith("internal error"), r
    return [r.status for r in results]


def test_unchanged_message_passes() -> None:
    assert _verify(SIGNED) == [Status.PASS]


@SETTINGS
@given(st.binary(max_size=2000))
def test_arbitrary_bytes(data: bytes) -> None:
    _verify(data)
    _verify(b"DKIM-Signature: " + data)


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
    _verify(b"DKIM-Signature: " + field.encode("utf-8") + b"\r\n" + MESSAGE)
