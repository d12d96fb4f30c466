"""FETCH BODYSTRUCTURE and BODY (RFC 9051 §7.5.2) from parsed messages."""

from __future__ import annotations

from fetch_corpus import CORPUS

from kittiwake.imap.bodystructure import body, bodystructure
from kittiwake.imap.encode import encode_bytes
from kittiwake.imap.envelope import envelope_of_part
from kittiwake.message import parse


def bs(data: bytes, utf8: bool = False) -> bytes:
    return encode_bytes(bodystructure(parse(data), utf8), utf8)


def test_default_text_plain_us_ascii() -> None:  # RFC 2045 §5.2
    assert bs(b"Subject: x\r\n\r\nhello\r\n") == \
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 7 1 NIL NIL NIL NIL)'


def test_body_has_no_extension_data() -> None:
    root = parse(b"Content-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n")
    assert encode_bytes(body(root)) == b'("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 7 1)'


def test_lines_count_a_last_line_without_line_end() -> None:
    # RFC 2046 §5.1.1: the CRLF before "--n" belongs to the delimiter, "no newline at
    # end" is still a line of text.
    out = bs(CORPUS["text-no-trailing-newline"])
    assert b'"7bit" 18 2 NIL' in out and b'"7bit" 17 1 NIL' in out


def test_multipart_with_extension_data() -> None:
    out = bs(CORPUS["mixed-alternative"])
    assert out.startswith(b'((("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 13 1 NIL NIL '
                          b'NIL NIL)("text" "html"')
    assert (b'("application" "pdf" ("name" "report.pdf") "<part1@x.test>" "The report" '
            b'"base64" 438 "Q2hlY2sgSW50ZWdyaXR5IQ==" ("attachment" ("filename" "report.pdf" '
            b'"size" "20")) ("en" "de") "http://x.test/report.pdf")') in out
    assert out.endswith(b' "mixed" ("boundary" "outer") NIL NIL NIL)')


def test_message_rfc822_has_envelope_body_and_lines() -> None:
    out = bs(CORPUS["rfc822-nonmultipart"])
    assert out == (b'("message" "rfc822" NIL NIL NIL "7bit" 46 (NIL "inner" ((NIL NIL "b" '
                   b'"y.test")) ((NIL NIL "b" "y.test")) ((NIL NIL "b" "y.test")) NIL NIL NIL '
                   b'NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 12 1 NIL NIL '
                   b'NIL NIL) 4 NIL NIL NIL NIL)')


def test_message_global_is_a_message() -> None:  # RFC 6532 §3.7, RFC 9051 §9 media-message
    out = bs(CORPUS["message-global"])
    assert out.startswith(b'("message" "global" NIL NIL NIL "7bit" 71 (NIL {7}\r\nGr')


def test_multipart_without_parts_gets_one_empty_part() -> None:  # 1*body
    out = bs(CORPUS["missing-boundary"])
    assert out == (b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL '
                   b'NIL) "mixed" NIL NIL NIL NIL)')


def test_encoded_message_still_has_the_message_form() -> None:
    out = bs(CORPUS["encoded-message"])
    assert out.startswith(b'("message" "rfc822" NIL NIL NIL "base64" 54 (NIL NIL NIL NIL NIL '
                          b'NIL NIL NIL NIL NIL) ("text" "plain"')


def test_non_ascii_parameter_is_rfc2231_without_utf8() -> None:
    out = bs(CORPUS["params-rfc2231"])
    assert b'("attachment" ("filename*" "utf-8\'\'na%C3%AFve%20file.txt"))' in out
    out8 = bs(CORPUS["params-rfc2231"], utf8=True)
    assert '("attachment" ("filename" "naïve file.txt"))'.encode() in out8


def test_whole_corpus_serialises() -> None:
    for data in CORPUS.values():
        assert bs(data).startswith(b"(")


def test_bodies_and_addresses_follow_each_other_without_space() -> None:
    # RFC 9051 §9: body-type-mpart = 1*body SP media-subtype; env-to = "(" 1*address ")"
    out = bs(CORPUS["nested-rfc822"])
    assert b'NIL NIL NIL NIL)("message" "rfc822"' in out
    assert b'NIL)("text" "html"' in out
    root = parse(CORPUS["plain"])
    env = encode_bytes(list(envelope_of_part(root)))
    assert b'(("Bob" NIL "bob" "example.net")(NIL NIL "carol" "example.net"))' in env


def test_empty_fields_are_nil_before_and_after_storing() -> None:
    from kittiwake.message.part import Part

    root = parse(b"Content-Type: text/plain\r\nContent-Description: \r\nContent-ID: \r\n"
                 b"Content-Location: \r\n\r\nhi\r\n")
    fresh = encode_bytes(bodystructure(root))
    assert fresh == b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 4 1 NIL NIL NIL NIL)'
    assert encode_bytes(bodystructure(Part.from_dict(root.to_dict()))) == fresh
