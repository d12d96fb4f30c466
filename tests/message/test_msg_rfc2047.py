"""RFC 2047 encoded words, with the RFC's own §8 examples."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kittiwake.message import decode_words, encode_words


@pytest.mark.parametrize(
    ("encoded", "shown"),
    [
        # RFC 2047 §8, the table of comment examples.
        ("(=?ISO-8859-1?Q?a?=)", "(a)"),
        ("(=?ISO-8859-1?Q?a?= b)", "(a b)"),
        ("(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)"),
        ("(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)", "(ab)"),
        ("(=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=)", "(ab)"),
        ("(=?ISO-8859-1?Q?a_b?=)", "(a b)"),
        ("(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)", "(a b)"),
        # RFC 2047 §8, the header examples.
        ("=?US-ASCII?Q?Keith_Moore?=", "Keith Moore"),
        ("=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?=", "Keld Jørn Simonsen"),
        ("=?ISO-8859-1?Q?Andr=E9?= Pirard", "André Pirard"),
        (
            "=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=\r\n"
            "    =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=",
            "If you can read this you understand the example.",
        ),
        ("=?ISO-8859-1?Q?Olle_J=E4rnefors?=", "Olle Järnefors"),
        ("(=?iso-8859-8?b?7eXs+SDv4SDp7Oj08A==?=)", "(םולש ןב ילטפנ)"),
    ],
)
def test_rfc2047_section8_examples(encoded: str, shown: str) -> None:
    assert decode_words(encoded) == shown


def test_rfc2231_language_in_encoded_word() -> None:
    assert decode_words("=?US-ASCII*EN?Q?Keith_Moore?=") == "Keith Moore"


def test_multibyte_character_split_over_two_words() -> None:
    euro = "€".encode()
    first = "=?utf-8?Q?" + "".join(f"={b:02X}" for b in euro[:2]) + "?="
    second = "=?utf-8?Q?" + "".join(f"={b:02X}" for b in euro[2:]) + "?="
    assert decode_words(f"{first} {second} rates") == "€ rates"


def test_bad_charset_and_bad_bytes_degrade() -> None:
    assert decode_words("=?x-no-such-charset?Q?caf=C3=A9?=") == "café"
    assert decode_words("=?utf-8?Q?caf=E9?=") == "caf\ufffd"
    assert decode_words("=?zlib?Q?abc?=") == "abc"  # not a text encoding: read as UTF-8
    assert decode_words("=?utf-8?B?w6k*!!?=") == "é"  # junk in base64 is skipped
    assert decode_words("=?utf-8?B?w6?=") == "\ufffd"  # bad padding


def test_text_that_only_looks_encoded_is_kept() -> None:
    assert decode_words("=?utf-8?X?abc?=") == "=?utf-8?X?abc?="
    assert decode_words("price =? 5") == "price =? 5"
    assert decode_words("a =?utf-8?q?b?= c") == "a b c"  # space to plain text stays


@given(st.text())
def test_encode_then_decode_roundtrip(text: str) -> None:
    encoded = encode_words(text)
    assert all(len(w) <= 75 for w in encoded.split(" ")) or encoded == text
    assert encoded.isascii() or encoded == text
    assert decode_words(encoded) == text


@given(st.text())
def test_decode_never_raises(text: str) -> None:
    for value in (text, "=?utf-8?b?" + text + "?=", "=?" + text + "?q?x?="):
        decode_words(value).encode("utf-8")  # valid Unicode, whatever came in
    if "=?" not in text:
        assert decode_words(text) == text  # no encoded word: nothing changes (§6.1)
    # Any text, sent as one B-encoded UTF-8 word (RFC 2047 §4.1), comes back exactly.
    word = base64.b64encode(text.encode("utf-8", "surrogatepass")).decode()
    if text.encode("utf-8", "surrogatepass").decode("utf-8", "replace") == text:
        assert decode_words(f"=?utf-8?b?{word}?=") == text
        assert decode_words(f"x =?UTF-8?B?{word}?= y") == f"x {text} y"
