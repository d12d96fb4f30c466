"""to_crlf and strip_fws fast paths give what the regular expressions give."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from kittiwake.dkim.canon import to_crlf
from kittiwake.dkim.tags import strip_fws

_LINE_BYTES = st.lists(st.sampled_from([b"\r\n", b"\n", b"\r", b"a", b" ", b"\r\r\n", b"\n\r"]),
                       max_size=40).map(b"".join)


@given(st.one_of(_LINE_BYTES, st.binary(max_size=200)))
def test_to_crlf_equals_regex(data: bytes) -> None:
    assert to_crlf(data) == re.sub(rb"(?<!\r)\n", b"\r\n", data)


def test_to_crlf_keeps_wire_form_as_is() -> None:
    data = b"A: b\r\n\r\nbody\r\n"
    assert to_crlf(data) is data
    assert to_crlf(b"A: b\n\nx\r\n") == b"A: b\r\n\r\nx\r\n"


@given(st.text(alphabet=st.sampled_from(list(" \t\r\n\x0b\x0c\xa0aB+/=")), max_size=80))
def test_strip_fws_equals_regex(value: str) -> None:
    assert strip_fws(value) == re.sub(r"[ \t\r\n]+", "", value)


@given(st.lists(st.sampled_from([b" ", b"  ", b"\t", b"\r\n ", b"\r\n\t", b"a", b"B:", b":"]),
                max_size=20).map(b"".join))
def test_relaxed_header_equals_regex(value: bytes) -> None:
    from kittiwake.dkim.canon import Canon, canon_header

    raw = b"Name :" + value + b"\r\n"
    expected = b"name:" + re.sub(rb"\t[ \t]*| [ \t]+", b" ",
                                 (value + b"\r\n").replace(b"\r\n", b"")).strip(b" ") + b"\r\n"
    assert canon_header(raw, Canon.RELAXED) == expected


def _reference_tag_list(text: str) -> dict[str, tuple[str, tuple[int, int]]] | str:
    """The earlier parse_tag_list (slicing each spec), as values or the error text."""
    from kittiwake.dkim.tags import FWS_CHARS

    tags: dict[str, tuple[str, tuple[int, int]]] = {}
    pos, length = 0, len(text)
    while pos <= length:
        end = text.find(";", pos)
        end = length if end < 0 else end
        spec = text[pos:end]
        if not spec.strip(FWS_CHARS):
            if end < length or not tags:
                return "empty tag (\";;\" or nothing at all)"
            break
        eq = spec.find("=")
        if eq < 0:
            return f"tag without '=': {spec.strip(FWS_CHARS)[:40]!r}"
        name = spec[:eq].strip(FWS_CHARS)
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
            return f"invalid tag name {name[:40]!r}"
        if name in tags:
            return f"duplicate tag {name!r}"
        value = spec[eq + 1:].strip(FWS_CHARS)
        bad = re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", value)
        if bad is not None:
            return f"invalid character {bad.group()!r} in tag {name!r}"
        tags[name] = (value, (pos + eq + 1, end))
        pos = end + 1
    return tags


@given(st.lists(st.sampled_from(["v", "a", "b", "bh", "=", ";", " ", "\r\n\t", "1", "x y",
                                 "\x01", "_", "9"]), max_size=25).map("".join))
def test_parse_tag_list_equals_reference(text: str) -> None:
    from kittiwake.dkim.tags import TagListError, parse_tag_list

    expected = _reference_tag_list(text)
    try:
        got: dict[str, tuple[str, tuple[int, int]]] | str = {
            name: (tag.value, tag.span) for name, tag in parse_tag_list(text).items()}
    except TagListError as exc:
        got = str(exc)
    assert got == expected
