"""The Author Domain from the From header field (RFC 7489 §6.6.1, RFC 5322 §3.4)."""

from __future__ import annotations

import email
import email.policy

import pytest

from kittiwake.dmarc import FromProblem, from_domain, parse_addresses


@pytest.mark.parametrize(
    ("headers", "domain"),
    [
        (b"From: alice@example.com\r\n\r\n", "example.com"),
        (b"From: Alice <alice@Mail.Example.COM>\r\nTo: bob@example.net\r\n\r\nbody",
         "mail.example.com"),
        (b'From: "Smith, Alice" <alice@example.com>\r\n', "example.com"),  # comma in quotes
        (b'From: "a@evil.example" <alice@example.com>\r\n', "example.com"),
        (b"From: alice@example.com (Alice, at work)\r\n", "example.com"),
        (b"From: (comment (nested)) Alice\r\n <alice@example.com>\r\n", "example.com"),  # folded
        (b'From: "quoted@local"@example.com\r\n', "example.com"),
        (b"From: <@relay.example,@other.example:alice@example.com>\r\n", "example.com"),
        (b"FROM :alice@example.com.\r\n", "example.com"),
        ("From: Jörg <jörg@bücher.example>\r\n".encode(), "xn--bcher-kva.example"),
        (b"From: =?utf-8?q?J=C3=B6rg?= <j@example.org>\r\n", "example.org"),
        (b"From: friends: alice@example.com;\r\n", "example.com"),  # RFC 6854 group
        (b"From: alice@example.com,\r\n", "example.com"),  # obs-mbox-list empty element
        (b"Resent-From: x@other.example\nFrom: a@example.com\n\nFrom: b@example.net\n",
         "example.com"),
    ],
)
def test_author_domain(headers: bytes, domain: str) -> None:
    result = from_domain(headers)
    assert result.problem is None, result.detail
    assert result.domain == domain
    assert result.ok and result.dmarc_status() == ""


@pytest.mark.parametrize(
    ("headers", "problem", "status"),
    [
        (b"To: bob@example.com\r\n\r\nFrom: a@example.com\r\n", FromProblem.NO_FROM, "permerror"),
        (b"From: a@example.com\r\nFrom: b@example.com\r\n", FromProblem.MULTIPLE_FROM,
         "permerror"),
        (b"From: a@example.com, b@example.net\r\n", FromProblem.MULTIPLE_ADDRESSES, "permerror"),
        (b"From: team: a@example.com, b@example.com;\r\n", FromProblem.MULTIPLE_ADDRESSES,
         "permerror"),
        (b"From: undisclosed-recipients:;\r\n", FromProblem.NO_ADDRESS, "none"),
        (b"From: \r\n", FromProblem.NO_ADDRESS, "none"),
        (b"From: alice\r\n", FromProblem.INVALID, "permerror"),
        (b"From: alice@\r\n", FromProblem.INVALID, "permerror"),
        (b"From: @example.com\r\n", FromProblem.INVALID, "permerror"),
        (b"From: alice@[192.0.2.1]\r\n", FromProblem.INVALID, "permerror"),
        (b"From: alice@exa..mple.com\r\n", FromProblem.INVALID, "permerror"),
        (b"From: alice@\xff\xfe.example\r\n", FromProblem.INVALID, "permerror"),
        (b"From: alice@exa$mple.com\r\n", FromProblem.INVALID, "permerror"),
        (b"From: alice@-example.com\r\n", FromProblem.INVALID, "permerror"),
        (b"", FromProblem.NO_FROM, "permerror"),
    ],
)
def test_problems(headers: bytes, problem: FromProblem, status: str) -> None:
    result = from_domain(headers)
    assert result.domain is None
    assert result.problem is problem
    assert result.dmarc_status() == status
    assert result.detail


def test_other_header_representations() -> None:
    msg = email.message_from_bytes(b"From: Alice <alice@example.com>\r\nTo: b@example.net\r\n\r\n",
                                   policy=email.policy.default)
    assert from_domain(msg).domain == "example.com"
    assert from_domain([("To", "x@y.example"), ("from", "a@example.org")]).domain == "example.org"
    assert from_domain([(b"From", b"a@example.net")]).domain == "example.net"
    assert from_domain("From: a@example.com\n").domain == "example.com"


def test_junk_never_raises() -> None:
    for junk in [None, 42, object(), [("From",)], [1, 2], {"From": None}]:
        result = from_domain(junk)
        assert result.domain is None or isinstance(result.domain, str)


def test_parse_addresses() -> None:
    assert parse_addresses('A <a@x.example>, "B, b" <b@y.example>, g: c@z.example, ;') == [
        "a@x.example", "b@y.example", "c@z.example"]
    assert parse_addresses("") == []


def test_stray_closing_characters() -> None:
    # Regression: a ")" outside a comment once stalled the lexer.
    assert from_domain(b"From: ) <x@example.com>\r\n").domain == "example.com"
    assert from_domain(b"From: ]a@example.com)\r\n").problem is FromProblem.INVALID
