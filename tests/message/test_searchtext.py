"""SEARCH text semantics: decoded, case-folded substrings (RFC 9051 §6.4.4)."""

from __future__ import annotations

import base64

from kittiwake.message.part import parse
from kittiwake.message.searchtext import MessageText


def text(data: bytes) -> MessageText:
    return MessageText(parse(data), data)


ENCODED = (b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.org>\r\n"
           b"Subject: =?utf-8?b?" + base64.b64encode("Straße Übersicht".encode()) + b"?=\r\n"
           b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
           b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n"
           + base64.b64encode(b"Der Kittiwake-Bericht ist fertig.") + b"\r\n"
           b"--b\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
           b"<p>Gr=C3=BC=C3=9Fe aus <b>Hamburg</b></p>\r\n"
           b"--b\r\nContent-Type: message/rfc822\r\n\r\n"
           b"Subject: inner note\r\n\r\nthe attached albatross\r\n"
           b"--b\r\nContent-Type: application/octet-stream\r\n\r\nsecretbinaryword\r\n"
           b"--b--\r\n")


def test_encoded_subject_and_names_match_decoded_and_casefolded() -> None:
    t = text(ENCODED)
    assert t.header_contains("Subject", "strasse")  # ß folds to ss
    assert t.header_contains("subject", "ÜBERSICHT")
    assert t.header_contains("From", "jürgen")
    assert not t.header_contains("Subject", "=?utf-8")


def test_body_is_decoded_text_of_every_text_part() -> None:
    t = text(ENCODED)
    assert t.body_contains("kittiwake-bericht")  # base64 text/plain
    assert t.body_contains("aus hamburg")  # HTML as text, tags gone
    assert not t.body_contains("<b>")
    assert t.body_contains("albatross") and t.body_contains("inner note")  # attached message
    assert not t.body_contains("secretbinaryword")  # not text


def test_text_covers_header_and_body_and_empty_header_needle() -> None:
    t = text(ENCODED)
    assert t.text_contains("übersicht") and t.text_contains("hamburg")
    assert t.header_contains("Content-Type", "")
    assert not t.header_contains("X-Missing", "")
