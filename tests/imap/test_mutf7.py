"""Modified UTF-7 (RFC 3501 §5.1.3): examples, strictness, round trip."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kittiwake.imap.mutf7 import MUTF7Error, decode, encode


@pytest.mark.parametrize(("name", "wire"), [
    # RFC 3501 §5.1.3's example.
    ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
    ("&", "&-"),
    ("Tom & Jerry", "Tom &- Jerry"),
    ("Entwürfe", "Entw&APw-rfe"),
    ("😀", "&2D3eAA-"),
    ("", ""),
])
def test_examples(name: str, wire: str) -> None:
    assert encode(name) == wire
    assert decode(wire) == name


@pytest.mark.parametrize(("wire", "reason"), [
    ("&Jjo!", "closing"),
    ("&U,BTFw-&ZeVnLIqe-", "adjacent"),  # RFC 3501 §5.1.3's wrong form
    ("&AGE-", "printable"),
    ("&AOQ-&AOQ-", "adjacent"),
    ("&2D0-", "surrogate"),
    ("a\tb", "base64-encoded"),
    ("&A-", "truncated"),
    ("&AO-", "whole number"),
    ("&AOR-", "padding"),
    ("&A*Q-", "invalid base64"),
])
def test_non_canonical_forms_are_refused(wire: str, reason: str) -> None:
    with pytest.raises(MUTF7Error, match=reason):
        decode(wire)


def test_eight_bit_octets_are_refused() -> None:
    with pytest.raises(MUTF7Error, match="8-bit"):
        decode("Entwürfe".encode())


@given(st.text())
def test_round_trip(name: str) -> None:
    wire = encode(name)
    assert wire.isascii() and decode(wire) == name


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e)))
def test_decode_never_raises_anything_else(wire: str) -> None:
    try:
        name = decode(wire)
    except MUTF7Error:
        return
    assert encode(name) == wire  # what decodes is canonical
