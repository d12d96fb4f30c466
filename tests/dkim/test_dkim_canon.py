"""Tag lists (RFC 6376 §3.2), message splitting and canonicalization (§3.4)."""

from __future__ import annotations

import pytest

from kittiwake.dkim import TagListError, parse_tag_list, split_message
from kittiwake.dkim.canon import Canon, canon_body, canon_header, select_headers
from kittiwake.dkim.tags import decode_base64

# RFC 6376 §3.4.6: the canonicalization example.
EXAMPLE = b"A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n C \r\nD \t E\r\n\r\n\r\n"


def test_rfc6376_3_4_6_relaxed() -> None:
    fields, body = split_message(EXAMPLE)
    assert b"".join(canon_header(f, Canon.RELAXED) for f in fields) == b"a:X\r\nb:Y Z\r\n"
    assert canon_body(body, Canon.RELAXED) == b" C\r\nD E\r\n"


def test_rfc6376_3_4_6_simple() -> None:
    fields, body = split_message(EXAMPLE)
    assert b"".join(canon_header(f, Canon.SIMPLE) for f in fields) == (
        b"A: X\r\nB : Y\t\r\n\tZ  \r\n")
    assert canon_body(body, Canon.SIMPLE) == b" C \r\nD \t E\r\n"


@pytest.mark.parametrize(("body", "simple", "relaxed"), [
    (b"", b"\r\n", b""),  # §3.4.3 empty body is CRLF; §3.4.4 (errata 1384) stays empty
    (b"\r\n\r\n", b"\r\n", b""),
    (b"abc", b"abc\r\n", b"abc\r\n"),  # no final line end: one is added
    (b"a  \t b \r\n \r\n\t\r\n", b"a  \t b \r\n \r\n\t\r\n", b"a b\r\n"),
])
def test_body_edges(body: bytes, simple: bytes, relaxed: bytes) -> None:
    assert canon_body(body, Canon.SIMPLE) == simple
    assert canon_body(body, Canon.RELAXED) == relaxed


def test_bare_lf_is_read_as_crlf() -> None:
    fields_lf, body_lf = split_message(EXAMPLE.replace(b"\r\n", b"\n"))
    fields, body = split_message(EXAMPLE)
    assert fields_lf == fields and body_lf == body


def test_split_without_body_and_without_header() -> None:
    fields, body = split_message(b"Subject: x\r\nFrom: a@b")
    assert [f.name for f in fields] == ["Subject", "From"] and body == b""
    fields, body = split_message(b"\r\nonly body\r\n")
    assert fields == [] and body == b"only body\r\n"


def test_select_headers_bottom_up_and_oversigned() -> None:
    """§5.4.2: instances are taken from the bottom; a name listed more often
    than it occurs contributes nothing more."""
    fields, _ = split_message(b"Received: 1\r\nFrom: a\r\nReceived: 2\r\nReceived: 3\r\n\r\n")
    chosen = select_headers(fields, ["received", "From", "received", "from", "x-none"])
    assert [f.raw for f in chosen] == [b"Received: 3\r\n", b"From: a\r\n", b"Received: 2\r\n"]


def test_tag_list() -> None:
    tags = parse_tag_list(" v=1;\r\n a = rsa-sha256 ; h=from :\r\n\tto; b=ab cd\r\n ef;")
    assert [t.name for t in tags.values()] == ["v", "a", "h", "b"]
    assert tags["a"].value == "rsa-sha256"
    assert tags["h"].value == "from :\r\n\tto"
    assert decode_base64("ab cd\r\n ef==", "b=") == decode_base64("abcdef==", "b=")


@pytest.mark.parametrize("text", [
    "", "v=1;;a=b", "v=1; v=1", "novalue", "1a=b", "a=b\x00c", "=x",
])
def test_tag_list_errors(text: str) -> None:
    with pytest.raises(TagListError):
        parse_tag_list(text)


def test_tag_names_are_case_sensitive() -> None:
    """§3.2: tags are case-sensitive, so "V" and "v" are different tags."""
    assert set(parse_tag_list("v=1; V=2")) == {"v", "V"}
