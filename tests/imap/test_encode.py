"""The value serialiser: quoting, literals, NIL, lists, file spans."""

from __future__ import annotations

import pytest

from kittiwake.imap.encode import encode, encode_bytes
from kittiwake.imap.values import Atom, FileLiteral, Literal, Raw


def test_nil_numbers_atoms_and_lists() -> None:
    assert encode_bytes([None, 0, 42, Atom("\\Seen"), []]) == b"(NIL 0 42 \\Seen ())"


def test_quoted_escapes_backslash_and_quote() -> None:
    assert encode_bytes('a "b" \\c') == b'"a \\"b\\" \\\\c"'


@pytest.mark.parametrize("text", [b"line\r\nbreak", b"nul\0", b"lf\n"])
def test_crlf_and_nul_need_a_literal(text: bytes) -> None:
    assert encode_bytes(text) == b"{%d}\r\n" % len(text) + text


def test_utf8_quoted_only_when_enabled() -> None:
    assert encode_bytes("Grüße", utf8=True) == '"Grüße"'.encode()
    assert encode_bytes("Grüße", utf8=False) == b"{7}\r\n" + "Grüße".encode()
    assert encode_bytes(b"\xff\xfe", utf8=True) == b"{2}\r\n\xff\xfe"


def test_literal8_and_raw() -> None:
    assert encode_bytes([Raw(b"BINARY[1]"), Literal(b"\0x", binary=True)]) == \
        b"(BINARY[1] ~{2}\r\n\0x)"


def test_file_literal_is_its_own_piece() -> None:
    span = FileLiteral("/m/1", 10, 500)
    assert encode([Atom("BODY[]"), span, 1]) == [b"(BODY[] {500}\r\n", span, b" 1)"]
    with pytest.raises(ValueError):
        encode_bytes(span)


def test_negative_numbers_and_booleans_are_refused() -> None:
    with pytest.raises(ValueError):
        encode_bytes(-1)
    with pytest.raises(TypeError):
        encode_bytes(True)
