"""Envelope fields (RFC 9051 §7.5.2), msg-ids and dates."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kittiwake.message import Address, Envelope, Group, parse, parse_date, parse_msgids

MSG = (
    b"Date: Fri, 21 Nov 1997 09:55:06 -0600\r\n"
    b"Subject: =?utf-8?q?Saying_Hello?=\r\n"
    b"From: John Doe <jdoe@machine.example>\r\n"
    b"Sender: Michael Jones <mjones@machine.example>\r\n"
    b"To: Mary Smith <mary@example.net>, friends:;\r\n"
    b"Cc: <boss@nil.test>\r\n"
    b"In-Reply-To: <1234@local.machine.example>\r\n"
    b"Message-ID: <5678.21-Nov-1997@example.com>\r\n"
    b"\r\n"
    b"This is a reply to your hello.\r\n"
)


def test_envelope_fields() -> None:
    env = parse(MSG).envelope
    assert env is not None
    assert env.date == "Fri, 21 Nov 1997 09:55:06 -0600"
    assert env.subject == "=?utf-8?q?Saying_Hello?="  # IMAP sends it as written
    assert env.decoded_subject == "Saying Hello"
    assert env.from_ == [Address("John Doe", "jdoe", "machine.example")]
    assert env.sender == [Address("Michael Jones", "mjones", "machine.example")]
    assert env.reply_to is None  # defaulting to From is the IMAP server's job
    assert env.to == [Address("Mary Smith", "mary", "example.net"), Group("friends", ())]
    assert env.cc == [Address("", "boss", "nil.test")]
    assert env.bcc is None
    assert env.in_reply_to == "<1234@local.machine.example>"
    assert env.message_id == "<5678.21-Nov-1997@example.com>"
    assert env.parsed_date == dt.datetime(1997, 11, 21, 15, 55, 6, tzinfo=dt.UTC)
    assert Envelope.from_dict(env.to_dict()) == env


def test_msgids() -> None:
    assert parse_msgids("<1234@local.machine.example> <3456@example.net>") == [
        "1234@local.machine.example", "3456@example.net"
    ]
    assert parse_msgids("<a@b>\r\n\t<c@d>(comment)<e@f>") == ["a@b", "c@d", "e@f"]
    assert parse_msgids("<a @ b>") == ["a@b"]  # RFC 5322 §4.5.4 obsolete white space
    assert parse_msgids("bare@example.org") == ["bare@example.org"]
    assert parse_msgids("") == [] and parse_msgids(None) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Fri, 21 Nov 1997 09:55:06 -0600", dt.datetime(1997, 11, 21, 15, 55, 6)),
        ("21 Nov 97 09:55:06 GMT", dt.datetime(1997, 11, 21, 9, 55, 6)),
        (  # RFC 5322 Appendix A.5
            "Thu,\r\n      13\r\n        Feb\r\n          1969\r\n      23:32\r\n"
            "               -0330 (Newfoundland Time)",
            dt.datetime(1969, 2, 14, 3, 2, 0),
        ),
        ("Mon, 2 Jan 2006 15:04:05 CEST", dt.datetime(2006, 1, 2, 13, 4, 5)),
        ("Tue, 1 Jul 2003 10.52.37 +0200", dt.datetime(2003, 7, 1, 8, 52, 37)),
        ("Mon, 2 Jan 2006 15:04:05", dt.datetime(2006, 1, 2, 15, 4, 5)),
        ("2 Jan 2006 15:04:05 +0000 (UTC)", dt.datetime(2006, 1, 2, 15, 4, 5)),
    ],
)
def test_dates(value: str, expected: dt.datetime) -> None:
    got = parse_date(value)
    assert got is not None
    assert got.astimezone(dt.UTC).replace(tzinfo=None) == expected


@pytest.mark.parametrize("value", ["", "garbage", "Mon, 32 Jan 2006 15:04:05 +0000", None])
def test_bad_dates(value: str | None) -> None:
    assert parse_date(value) is None


@given(st.text())
def test_date_never_raises(value: str) -> None:
    d = parse_date(value)
    assert d is None or d.tzinfo is not None
