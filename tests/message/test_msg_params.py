"""Content-Type and Content-Disposition parameters (RFC 2045, RFC 2231, RFC 2183)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kittiwake.message import parse_content_type, parse_disposition


def test_rfc2045_comment_and_case() -> None:
    assert parse_content_type('text/plain; charset=us-ascii (Plain text)') == (
        "text", "plain", {"charset": "us-ascii"}
    )
    assert parse_content_type('TEXT/HTML;CHARSET="UTF-8"') == ("text", "html", {"charset": "UTF-8"})


def test_rfc2231_section3_continuations() -> None:
    value = (
        'message/external-body; access-type=URL;\r\n'
        ' URL*0="ftp://";\r\n'
        ' URL*1="cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar"'
    )
    assert parse_content_type(value)[2] == {
        "access-type": "URL",
        "url": "ftp://cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar",
    }


def test_rfc2231_section4_charset_and_language() -> None:
    value = "application/x-stuff;\r\n title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A"
    assert parse_content_type(value)[2] == {"title": "This is ***fun***"}


def test_rfc2231_section4_1_mixed_sections() -> None:
    value = (
        "application/x-stuff;\r\n"
        " title*0*=us-ascii'en'This%20is%20even%20more%20;\r\n"
        " title*1*=%2A%2A%2Afun%2A%2A%2A%20;\r\n"
        ' title*2="isn\'t it!"'
    )
    assert parse_content_type(value)[2] == {"title": "This is even more ***fun*** isn't it!"}


def test_sections_out_of_order_and_utf8() -> None:
    value = "a/b; name*1*=%A9.pdf; name*0*=utf-8''caf%C3"
    assert parse_content_type(value)[2] == {"name": "café.pdf"}


def test_quoted_extended_value_is_decoded_anyway() -> None:
    value = "multipart/signed;\r\n\tboundary*=\"ansi-x3.4-1968''EeQfGwPcQSOJBaQU\""
    assert parse_content_type(value)[2] == {"boundary": "EeQfGwPcQSOJBaQU"}


def test_rfc2231_form_wins_over_plain() -> None:
    value = "a/b; filename=\"fallback.pdf\"; filename*=UTF-8''%E2%82%AC.pdf"
    assert parse_content_type(value)[2] == {"filename": "€.pdf"}


def test_real_world_breakage() -> None:
    assert parse_content_type('application/pdf; name="=?utf-8?Q?caf=C3=A9.pdf?="')[2] == {
        "name": "café.pdf"
    }
    assert parse_content_type('a/b; name="unterminated')[2] == {"name": "unterminated"}
    assert parse_content_type('multipart/mixed; boundary="a;b"; x=1')[2] == {
        "boundary": "a;b", "x": "1"
    }
    assert parse_content_type('a/b; name="q\\"uote"')[2] == {"name": 'q"uote'}
    assert parse_content_type("text") == ("", "", {})
    assert parse_content_type(" text / plain ") == ("text", "plain", {})


def test_rfc2183_disposition() -> None:
    value = (
        "attachment; filename=genome.jpeg;\r\n"
        ' modification-date="Wed, 12 Feb 1997 16:29:51 -0500";'
    )
    assert parse_disposition(value) == (
        "attachment",
        {"filename": "genome.jpeg", "modification-date": "Wed, 12 Feb 1997 16:29:51 -0500"},
    )
    assert parse_disposition("INLINE") == ("inline", {})
    assert parse_disposition(None) == (None, {})
    assert parse_disposition("attachment; filename=my file.pdf")[1] == {"filename": "my file.pdf"}


@given(st.text())
def test_never_raises(value: str) -> None:
    mtype, subtype, params = parse_content_type(value)
    assert mtype == mtype.lower() and subtype == subtype.lower()
    assert all(k == k.lower() for k in params)
    parse_disposition(value)
