"""The client's fast path for plain mailboxes gives what the general parser gives.

``plan_delivery`` parses every recipient for its RCPT line; a plain
``dot-string@ldh.domain`` skips the general parser (RFC 5321 §4.1.2). For any
text, the fast path either declines or returns exactly
:func:`kittiwake.smtp.parse_address`'s answer, and the RCPT lines are the same.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from kittiwake.smtp import AddressError, format_path, parse_address
from kittiwake.smtpclient.capabilities import Capabilities
from kittiwake.smtpclient.transaction import _PLAIN_MAILBOX, _parse_text, plan_delivery

ATEXT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
# What mailboxes are made of, plus what makes them not plain: quotes, dots in odd
# places, upper case and IDNA in the domain, literals, spaces, non-ASCII.
ALPHABET = ATEXT + '."@[]\\ :-' + "äß\u00a0Ω"


def general(text: str) -> object:
    try:
        return parse_address(text, smtputf8=True)
    except AddressError as exc:
        return type(exc)


def fast(text: str) -> object:
    try:
        return _parse_text(text)
    except AddressError as exc:
        return type(exc)


@settings(max_examples=1500, deadline=None)
@given(st.text(ALPHABET, max_size=80))
@example("user1@d1.bench.test")
@example("a@b")
@example("a@1")
@example("a@0.0.0.0")
@example("x@xn--bcher-kva.example")
@example("x@ab--cd.example")
@example("x@-a.example")
@example("x@a-.example")
@example("x@Example.ORG")
@example("first.last@example.org")
@example(".a@example.org")
@example("a..b@example.org")
@example("a" * 64 + "@example.org")
@example("a" * 65 + "@example.org")
@example("a@" + "b" * 63)
@example("a@" + "b" * 64)
@example("a@" + "b" * 30 + "." + "c" * 32)
def test_any_text_parses_as_the_general_parser_says(text: str) -> None:
    assert fast(text) == general(text)


@settings(max_examples=200, deadline=None)
@given(st.from_regex(_PLAIN_MAILBOX, fullmatch=True))
def test_plain_mailboxes_parse_as_the_general_parser_says(text: str) -> None:
    assert fast(text) == general(text)
    if not isinstance(general(text), type):
        assert format_path(_parse_text(text)) == format_path(parse_address(text)) == f"<{text}>"


def test_rcpt_lines_for_plain_and_other_recipients() -> None:
    rcpts = ["bob@example.org", "Bob.Smith+tag@mail.example.org", '"a b"@example.org',
             "x@Example.ORG", "y@bücher.example"]
    plan = plan_delivery(Capabilities(smtputf8=True), remote="mx.test", tls=False,
                         mailfrom="alice@example.com", recipients=rcpts, data=b"x\r\n",
                         smtputf8=True)
    assert plan.mail_command == "MAIL FROM:<alice@example.com> SMTPUTF8"
    assert [line for batch in plan.batches for _, _, line in batch] == [
        f"RCPT TO:{format_path(parse_address(r), utf8=True)}" for r in rcpts]
