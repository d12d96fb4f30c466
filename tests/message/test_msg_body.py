"""Body decoding, charsets, HTML to text and the search text."""

from __future__ import annotations

import base64
import binascii
import re

from hypothesis import given
from hypothesis import strategies as st

from kittiwake.message import (
    decode_body,
    decode_transfer,
    html_to_text,
    parse,
    searchable_text,
    text_of,
)


def test_base64_with_junk_and_bad_padding() -> None:
    payload = "Grüße aus Köln! ".encode() * 5
    enc = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    assert decode_transfer(enc, "base64") == payload
    junky = b"!!" + enc.replace(b"=", b"") + b"\x00 junk"
    assert decode_transfer(junky, "BASE64").startswith(payload[:90])
    assert decode_transfer(b"YWJj\r\nZA", "base64") == b"abcd"


@given(st.binary(max_size=300))
def test_base64_roundtrip(payload: bytes) -> None:
    assert decode_transfer(base64.encodebytes(payload), "base64") == payload


@given(st.binary(max_size=300))
def test_quoted_printable_roundtrip(payload: bytes) -> None:
    encoded = binascii.b2a_qp(payload, istext=False)
    assert decode_transfer(encoded, "quoted-printable") == payload


def test_quoted_printable_soft_breaks_and_trailing_space() -> None:
    assert decode_transfer(b"caf=C3=A9 =\r\nau lait  \r\nnext", "quoted-printable") == (
        "café au lait\r\nnext".encode()
    )
    assert decode_transfer(b"bad =ZZ escape", "quoted-printable") == b"bad =ZZ escape"


def test_identity_and_unknown_encodings() -> None:
    for enc in ("7bit", "8bit", "binary", "x-uuencode"):
        assert decode_transfer(b"\x00\xffdata", enc) == b"\x00\xffdata"


def _msg(ct: bytes, cte: bytes, body: bytes) -> bytes:
    return b"Content-Type: " + ct + b"\r\nContent-Transfer-Encoding: " + cte + b"\r\n\r\n" + body


def test_text_of_charsets_and_fallbacks() -> None:
    data = _msg(b"text/plain; charset=iso-8859-1", b"8bit", b"caf\xe9")
    assert text_of(parse(data), data) == "café"
    koi8 = base64.b64encode("Привет".encode("koi8-r"))
    data = _msg(b"text/plain; charset=koi8-r", b"base64", koi8)
    assert text_of(parse(data), data) == "Привет"
    # Declared ASCII, sent as UTF-8; no charset, windows-1252; unknown charset, UTF-8.
    data = _msg(b"text/plain; charset=us-ascii", b"8bit", "naïve".encode())
    assert text_of(parse(data), data) == "naïve"
    data = _msg(b"text/plain", b"8bit", b"\x93quoted\x94")
    assert text_of(parse(data), data) == "\u201cquoted\u201d"
    data = _msg(b"text/plain; charset=x-unknown", b"8bit", "ünïcode".encode())
    assert text_of(parse(data), data) == "ünïcode"
    data = _msg(b"text/plain; charset=utf-8", b"8bit", b"bad \xff byte")
    assert text_of(parse(data), data) == "bad \ufffd byte"


def test_decode_body_of_nested_part() -> None:
    data = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--b--\r\n"
    )
    root = parse(data)
    assert decode_body(root.parts[0], data) == b"hello"


def test_html_to_text() -> None:
    html = (
        "<html><head><title>T</title><style>p {color: red}</style></head>"
        "<body><h1>Hi&nbsp;there</h1><p>Fish &amp; chips,\n   twice</p>"
        "<script>alert('x')</script><ul><li>one</li><li>two</ul>a<br>b"
        "<table><tr><td>x</td><td>y</td></tr></table><img alt='logo' src=x></body></html>"
    )
    assert html_to_text(html) == (
        "Hi there\n\nFish & chips, twice\n\none\ntwo\n\na\nb\n\nx y\n\nlogo"
    )
    assert html_to_text("<p>unclosed &bogus; <!-- c --> <![if x]> &#x41;") == "unclosed &bogus; A"


SEARCH = (
    b"From: =?utf-8?q?J=C3=B6rg?= <joerg@example.de>\r\n"
    b"To: team:a@example.org, b@example.org;\r\n"
    b"Subject: =?utf-8?b?w5xiZXJzaWNodA==?=\r\n"
    b"Content-Type: multipart/mixed; boundary=m\r\n\r\n"
    b"--m\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n"
    b"--a\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: "
    b"quoted-printable\r\n\r\nPlain caf=C3=A9\r\n"
    b"--a\r\nContent-Type: text/html\r\n\r\n<p>HTML version</p>\r\n--a--\r\n"
    b"--m\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner topic\r\n"
    b"Content-Type: text/html\r\n\r\n<b>inner</b> <script>x()</script>body\r\n"
    b"--m\r\nContent-Type: application/octet-stream\r\n\r\nBINARYSTUFF\r\n"
    b"--m--\r\n"
)


def test_searchable_text() -> None:
    header, body = searchable_text(parse(SEARCH), SEARCH)
    assert header.split("\n") == [
        "Übersicht",
        "Jörg <joerg@example.de>",
        "team, a@example.org, b@example.org",
    ]
    assert "Plain café" in body
    assert "HTML version" not in body  # alternatives are not doubled
    assert "inner topic" in body and "inner body" in body
    assert "x()" not in body and "BINARYSTUFF" not in body


def test_searchable_text_html_only_alternative_and_limit() -> None:
    data = (
        b"Content-Type: multipart/alternative; boundary=a\r\n\r\n"
        b"--a\r\nContent-Type: image/png\r\n\r\nPNG\r\n"
        b"--a\r\nContent-Type: text/html\r\n\r\n<p>only html</p>\r\n--a--\r\n"
    )
    assert searchable_text(parse(data), data)[1] == "only html"
    assert searchable_text(parse(data), data, max_chars=4)[1] == "only"


@given(st.text(max_size=500))
def test_html_to_text_never_raises(text: str) -> None:
    for html in (text, "<" + text):
        out = html_to_text(html)
        out.encode("utf-8")  # valid Unicode for the index
        assert "<script" not in out.lower() or "<script" in html.lower()
    # Markup is gone, the words between tags stay (in order).
    words = re.findall(r"[A-Za-z0-9]+", text)
    plain = " ".join(words)
    assert html_to_text(f"<p>{plain}</p><b>!</b>").split() == [*words, "!"]
    # What is inside <script> and <style> is never text (HTML 4.01 §18.2.1).
    if "</script" not in text.lower() and "</style" not in text.lower():
        hidden = html_to_text(f"<p>seen</p><script>{text}</script><style>{text}</style>end")
        assert hidden.split() == ["seen", "end"], hidden
