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
