"""Header sections: splitting, raw bytes, unfolding, decoding, folding."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kittiwake.message import fold_header, parse_header_section, unfold

DATA = (
    b"Received: from a\r\n\tby b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    b"Subject: =?utf-8?q?caf=C3=A9?= and\r\n more\n"
    b"X-Raw: caf\xc3\xa9 \xff\r\n"
    b"X-Spaced : value\r\n"
    b"received: second\r\n"
    b"\r\n"
    b"Body: not a header\r\n"
)


def test_fields_raw_and_values() -> None:
    headers, body = parse_header_section(DATA)
    assert DATA[body:] == b"Body: not a header\r\n"
    assert [h.name for h in headers] == ["Received", "Subject", "X-Raw", "X-Spaced", "received"]
    assert b"".join(h.raw for h in headers) + b"\r\n" == DATA[:body]
    assert headers.get("RECEIVED") == "from a\tby b; Mon, 1 Jan 2024 00:00:00 +0000"
    assert headers.get_all("received")[1] == "second"
    assert headers.count("Received") == 2
    assert headers.get("subject") == "=?utf-8?q?caf=C3=A9?= and more"
    assert headers.decoded("subject") == "café and more"
    # RFC 6532 raw UTF-8 is read as such; invalid UTF-8 falls back to windows-1252.
    assert headers.get("x-raw") == "caf\u00c3\u00a9 \u00ff"
    assert headers.get("x-spaced") == "value"
    assert headers.get("missing") is None and "subject" in headers


def test_valid_utf8_value() -> None:
    headers, _ = parse_header_section("Subject: Grüße\r\n\r\n".encode())
    assert headers.get("Subject") == "Grüße"


def test_offsets_with_start_and_end() -> None:
    data = b"junk--X: 1\r\n\r\nbody"
    headers, body = parse_header_section(data, 6, len(data))
    assert headers.get("x") == "1" and data[body:] == b"body"


def test_unfold() -> None:
    assert unfold("a\r\n b\n\tc\r\nd") == "a b\tc\r\nd"


def test_fold_keeps_lines_short_and_unfolds_back() -> None:
    value = " ".join(f"word{i}" for i in range(40))
    out = fold_header("Subject", value)
    assert out.endswith("\r\n")
    lines = out[:-2].split("\r\n")
    assert all(len(line) <= 78 for line in lines)
    headers, _ = parse_header_section(out.encode() + b"\r\n")
    assert headers.get("Subject") == value


def test_fold_cannot_inject_fields() -> None:
    out = fold_header("Subject", "hi\r\nBcc: victim@example.org\nX: y")
    headers, _ = parse_header_section(out.encode() + b"\r\n")
    assert [h.name for h in headers] == ["Subject"]


def test_fold_long_word_is_not_broken() -> None:
    word = "x" * 100
    assert fold_header("X", word) == f"X: {word}\r\n"


@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=300))
def test_fold_is_one_field_that_unfolds_to_the_words(value: str) -> None:
    out = fold_header("X-Test", value)
    headers, _ = parse_header_section(out.encode() + b"\r\n")
    assert len(headers) == 1
    assert headers.get("X-Test", "").split() == value.replace("\r", " ").replace("\n", " ").split()


@given(st.binary(max_size=500))
def test_section_of_any_bytes(data: bytes) -> None:
    headers, body = parse_header_section(data)
    assert 0 <= body <= len(data)
    assert b"".join(h.raw for h in headers) == data[: len(b"".join(h.raw for h in headers))]
    for h in headers:
        _ = h.value, h.decoded, h.key
