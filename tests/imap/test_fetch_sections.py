"""BODY[section]<partial> and BINARY[section] resolved against the part tree
(RFC 9051 §6.4.5, RFC 3516 §4); Dovecot comparisons are in test_fetch_dovecot.py."""

from __future__ import annotations

from fetch_corpus import CORPUS

from kittiwake.imap.binary import UnknownCTE, binary_bytes, binary_size, binary_value
from kittiwake.imap.section import Partial, Section, SectionText
from kittiwake.imap.sections import Span, fetch_value, locate, section_bytes
from kittiwake.imap.values import FileLiteral, Literal
from kittiwake.message import parse

NESTED = CORPUS["nested-rfc822"]
ROOT = parse(NESTED)


def sec(*nums: int, text: SectionText | None = None, fields: tuple[str, ...] = ()) -> bytes:
    return section_bytes(ROOT, Section(nums, text, fields), NESTED)


def test_numbering_into_an_encapsulated_message() -> None:
    assert sec(1) == b"see below"
    assert sec(2, 1) == b"inner plain"
    assert sec(2, 2) == b"<p>inner html</p>"
    assert sec(2, text=SectionText.HEADER).startswith(b"From: Original <orig@y.test>\r\n")
    assert sec(2, text=SectionText.HEADER).endswith(b"boundary=b2\r\n\r\n")
    assert sec(2, text=SectionText.TEXT).startswith(b"--b2\r\n")
    assert sec(2, text=SectionText.MIME) == (b"Content-Type: message/rfc822\r\n"
                                             b"Content-Disposition: inline\r\n\r\n")


def test_missing_sections_are_empty() -> None:
    assert sec(3) == b"" and sec(2, 3) == b"" and sec(1, text=SectionText.HEADER) == b""
    assert sec(1, 1) == b""  # a text part has no part numbers below it
    assert sec(text=SectionText.MIME) == b""


def test_non_multipart_message_part_1_is_its_body() -> None:
    data = CORPUS["plain"]
    root = parse(data)
    assert section_bytes(root, Section((1,)), data) == b"Hello Bob,\r\nhow are you?\r\n"
    assert section_bytes(root, Section((1,), SectionText.MIME), data).startswith(b"From: ")


def test_header_fields_keep_lines_in_order_and_end_with_blank_line() -> None:
    data = CORPUS["folded-headers"]
    root = parse(data)
    out = section_bytes(root, Section(text=SectionText.HEADER_FIELDS,
                                      fields=("DATE", "SUBJECT")), data)
    assert out == (b"Subject: a subject\r\n folded over\r\n\tthree lines\r\n"
                   b"Date:\r\n Wed, 2 Dec 2026 08:00:00 +0100\r\n\r\n")
    out = section_bytes(root, Section(text=SectionText.HEADER_FIELDS_NOT,
                                      fields=("FROM", "DATE", "SUBJECT", "MESSAGE-ID")), data)
    assert out == b"Content-Type: text/plain;\r\n charset=utf-8\r\n\r\n"


def test_no_blank_line_for_a_message_without_body_and_blank_line() -> None:  # RFC 9051 §6.4.5
    data = CORPUS["header-only"]
    root = parse(data)
    assert section_bytes(root, Section(text=SectionText.HEADER_FIELDS, fields=("SUBJECT",)),
                         data) == b"Subject: header only, no blank line\r\n"


def test_partial() -> None:
    assert sec(1, ) == b"see below"
    assert section_bytes(ROOT, Section((1,)), NESTED, Partial(4, 3)) == b"bel"
    assert section_bytes(ROOT, Section((1,)), NESTED, Partial(100, 3)) == b""
    assert locate(ROOT, Section((1,))) == Span(ROOT.parts[0].body_start, 9)


def test_fetch_value_streams_spans_and_builds_fields() -> None:
    v = fetch_value(ROOT, Section((2, 1)), "/m", Partial(1, 4), lambda s: NESTED[s.offset:s.end])
    assert v == FileLiteral("/m", ROOT.parts[1].message.parts[0].body_start + 1, 4)
    v = fetch_value(ROOT, Section((2,), SectionText.HEADER_FIELDS, ("SUBJECT",)), "/m", None,
                    lambda s: NESTED[s.offset:s.end])
    assert v == Literal(b"Subject: original\r\n\r\n")


def _leaf(name: str) -> tuple[bytes, object]:
    data = CORPUS[name]
    root = parse(data)
    return data, root


def test_binary_decodes_qp_soft_breaks() -> None:
    data, root = _leaf("qp-soft-breaks")
    out = binary_bytes(root, (1,), data)
    assert out == (b"This is a long line that is broken with a soft line break and has an "
                   b"equals sign = here. \r\nTrailing")
    assert binary_size(root, (1,), lambda s: data[s.offset:s.end]) == len(out)


def test_binary_decodes_damaged_base64_without_error() -> None:
    data, root = _leaf("base64-bad-padding")
    # RFC 2045 §6.8: characters outside the alphabet ("!") are ignored, "junk" is data
    assert binary_bytes(root, (1,), data).startswith(b"Hello world")


def test_binary_unknown_cte() -> None:  # RFC 9051 §7.1, RFC 3516 §4: [UNKNOWN-CTE]
    data, root = _leaf("unknown-cte")
    assert binary_bytes(root, (1,), data) == UnknownCTE("x-uuencode")
    assert isinstance(binary_size(root, (1,), lambda s: b""), UnknownCTE)


def test_binary_value_literal8_only_with_nul() -> None:
    data, root = _leaf("mixed-alternative")
    v = binary_value(root, (2,), "/m", None, lambda s: data[s.offset:s.end])
    assert isinstance(v, Literal) and v.binary and v.data.startswith(b"binary \x00")
    v = binary_value(root, (1, 1), "/m", None, lambda s: data[s.offset:s.end])
    assert isinstance(v, FileLiteral) and not v.binary and v.length == 13
