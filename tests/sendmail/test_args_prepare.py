"""The sendmail command line and message completion, without a server."""

from __future__ import annotations

import io

import pytest

from kittiwake.message import parse_header_section
from kittiwake.sendmail import (
    ArgsError,
    NoRecipients,
    normalize_line_ends,
    parse_args,
    prepare_message,
    read_message,
)


def test_grouped_and_attached_options() -> None:
    opts = parse_args(["-ti", "-fcron@example.org", "-F", "Cron Daemon", "a@example.org"])
    assert opts.from_header_recipients and opts.ignore_dots
    assert opts.sender == "cron@example.org" and opts.full_name == "Cron Daemon"
    assert opts.recipients == ["a@example.org"]


def test_common_flags_are_accepted_and_ignored() -> None:
    opts = parse_args(["-odi", "-oem", "-bm", "-oi", "-B", "8BITMIME", "-N", "never", "-U",
                       "b@example.org"])
    assert opts.ignore_dots and opts.recipients == ["b@example.org"]
    assert not opts.from_header_recipients


def test_null_sender() -> None:
    assert parse_args(["-f", "<>", "x@example.org"]).sender == ""


@pytest.mark.parametrize(("argv", "words"), [
    (["-bs"], "SMTP on standard input"),
    (["-q"], "running the queue"),
    (["-oZ"], "unknown option -oZ"),
    (["-tk"], "unknown option -k"),
    (["-f"], "-f needs a value"),
])
def test_refused_options_say_which(argv: list[str], words: str) -> None:
    with pytest.raises(ArgsError, match=words):
        parse_args(argv)


def test_dot_line_ends_input_unless_i() -> None:
    text = b"a\n.\nb\n"
    assert read_message(io.BytesIO(text), ignore_dots=False) == b"a\n"
    assert read_message(io.BytesIO(text), ignore_dots=True) == text


def test_line_ends_become_crlf() -> None:
    assert normalize_line_ends(b"a\nb\r\nc\rd") == b"a\r\nb\r\nc\r\nd\r\n"


def test_prepare_adds_fields_and_takes_header_recipients() -> None:
    raw = b"To: A <a@example.org>, b@example.org\nCc: group: c@example.org;\nBcc: d@example.net\n" \
          b"Subject: hi\n\nbody\n"
    p = prepare_message(raw, mailfrom="me@example.com", recipients=["e@example.org"],
                        from_header_recipients=True, full_name="Me, Myself")
    assert p.recipients == ["e@example.org", "a@example.org", "b@example.org",
                            "c@example.org", "d@example.net"]
    headers, body = parse_header_section(p.data)
    assert headers.get("From") == '"Me, Myself" <me@example.com>'
    assert headers.get("Message-ID", "").endswith("@example.com>")
    assert headers.get("Date") and "Bcc" not in headers
    assert p.data[body:] == b"body\r\n"
    assert p.added == ["From", "Date", "Message-ID"] and p.removed == ["Bcc"]


def test_prepare_keeps_existing_fields_and_adds_blank_line() -> None:
    raw = b"From: x@example.org\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <1@x>\r\n"
    p = prepare_message(raw, mailfrom="x@example.org", recipients=["y@example.org"],
                        from_header_recipients=False)
    assert p.data == raw + b"\r\n" and p.added == []


def test_no_recipients() -> None:
    with pytest.raises(NoRecipients, match="To, Cc and Bcc had none"):
        prepare_message(b"Subject: x\n\ny\n", mailfrom="x@example.org", recipients=[],
                        from_header_recipients=True)


def test_non_ascii_full_name_is_encoded() -> None:
    p = prepare_message(b"Subject: x\n\ny\n", mailfrom="j@example.org",
                        recipients=["y@example.org"], from_header_recipients=False,
                        full_name="Jörg Müller")
    headers, _ = parse_header_section(p.data)
    value = headers.get("From") or ""
    assert value.isascii() and value.endswith(" <j@example.org>")
    assert headers.decoded("From") == "Jörg Müller <j@example.org>"
