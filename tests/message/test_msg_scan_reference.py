"""scan_header_section against the earlier line-by-line loop, kept here as the reference."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from kittiwake.message.filebytes import FileBytes
from kittiwake.message.headers import scan_header_section

_FIELD_START = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")


def reference_scan(data: bytes, start: int = 0, end: int | None = None
                   ) -> tuple[list[tuple[str, bytes]], int, str]:
    """The earlier scan_header_section (one line at a time), as (name, raw) pairs."""
    if end is None or end > len(data):
        end = len(data)
    start = max(0, min(start, end))
    fields: list[tuple[str, bytes]] = []
    cur_start, cur_name, pos = -1, "", start
    while pos < end:
        nl = data.find(b"\n", pos, end)
        line_end = end if nl < 0 else nl + 1
        first = data[pos]
        if first in b"\r\n" and data[pos:line_end].rstrip(b"\r\n") == b"":
            if cur_start >= 0:
                fields.append((cur_name, data[cur_start:pos]))
            return fields, line_end, "blank"
        if first in b" \t" and cur_start >= 0:
            pos = line_end
            continue
        m = _FIELD_START.match(data, pos, line_end)
        if m is None:
            if cur_start >= 0:
                fields.append((cur_name, data[cur_start:pos]))
            return fields, pos, "line"
        if cur_start >= 0:
            fields.append((cur_name, data[cur_start:pos]))
        cur_start, cur_name, pos = pos, m.group(1).decode("ascii"), line_end
    if cur_start >= 0:
        fields.append((cur_name, data[cur_start:end]))
    return fields, end, "end"


_SECTIONS = st.lists(st.sampled_from([
    b"\r\n", b"\n", b"\r", b"A", b"Subject", b":", b" :", b" ", b"\t", b"x y", b"\xe9", b"\x00",
    b"DKIM-Signature: v=1;\r\n\tb=abc\r\n", b"To: a\r\n", b"\r\n\r\n", b"\r\r\n"]),
    max_size=30).map(b"".join)


@settings(max_examples=2000, deadline=None)
@given(_SECTIONS, st.integers(0, 5), st.one_of(st.none(), st.integers(0, 200)))
def test_scan_equals_reference(data: bytes, start: int, end: int | None) -> None:
    headers, body, how = scan_header_section(data, start, end)
    assert ([(h.name, h.raw) for h in headers], body, how) == reference_scan(data, start, end)


@given(st.binary(max_size=200))
def test_scan_any_bytes_equals_reference(data: bytes) -> None:
    headers, body, how = scan_header_section(data)
    assert ([(h.name, h.raw) for h in headers], body, how) == reference_scan(data)


def test_scan_file_equals_memory(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = b"A: b\r\n c\r\nD: e\r\n\r\nbody"
    path = tmp_path / "m"
    path.write_bytes(data)
    with FileBytes(path) as fb:
        on_disk = scan_header_section(fb)
    in_memory = scan_header_section(data)
    assert [(h.name, h.raw) for h in on_disk[0]] == [(h.name, h.raw) for h in in_memory[0]]
    assert on_disk[1:] == in_memory[1:]


@given(st.lists(st.sampled_from([b"\r\n", b"\n", b"\r", b" ", b"\t", b"a", b":"]), max_size=20)
       .map(b"".join))
def test_raw_value_equals_regex_unfold(tail: bytes) -> None:
    from kittiwake.message.headers import Header

    raw = b"X:" + tail
    expected = re.sub(rb"\r?\n(?=[ \t])", b"", raw[2:]).strip(b" \t\r\n")
    assert Header("X", raw).raw_value == expected
