"""Replies: formatting (RFC 5321 §4.2.1, RFC 2034) and the client-side parser."""

from __future__ import annotations

import pytest

from kittiwake.smtp import MalformedReply, Reply, ReplyParser, parse_reply


def test_single_line_with_enhanced_code() -> None:
    assert Reply(550, "5.7.1", ("rejected",)).to_bytes() == b"550 5.7.1 rejected\r\n"


def test_multiline_format_repeats_enhanced_code() -> None:
    r = Reply(451, "4.7.0", ("first", "second"))
    assert r.to_bytes() == b"451-4.7.0 first\r\n451 4.7.0 second\r\n"
    assert r.to_bytes(enhanced=False) == b"451-first\r\n451 second\r\n"


def test_text_newlines_become_lines_and_controls_are_replaced() -> None:
    r = Reply(250, None, ("a\r\nb\x00c",))
    assert r.to_bytes() == b"250-a\r\n250 b?c\r\n"


def test_enhanced_class_must_match() -> None:
    with pytest.raises(ValueError):
        Reply(550, "4.7.1", ("x",))
    with pytest.raises(ValueError):
        Reply(100, None, ("x",))


def test_long_lines_are_wrapped_to_512() -> None:
    out = Reply(250, "2.0.0", ("x" * 2000,)).to_bytes()
    assert all(len(line) + 2 <= 512 for line in out.split(b"\r\n") if line)


@pytest.mark.parametrize(
    ("reply", "code", "enhanced"),
    [(Reply.policy(), 550, "5.7.1"), (Reply.auth_failed(), 535, "5.7.8"),
     (Reply.dmarc(), 550, "5.7.26"), (Reply.temporary(), 451, "4.7.0"),
     (Reply.syntax(), 501, "5.5.4"), (Reply.too_big(), 552, "5.3.4"),
     (Reply.smtputf8_required(), 553, "5.6.7"), (Reply.requiretls(), 530, "5.7.10"),
     (Reply.policy(temporary=True), 451, "4.7.1")],
)
def test_helpers(reply: Reply, code: int, enhanced: str) -> None:
    assert (reply.code, reply.enhanced) == (code, enhanced)
    assert parse_reply(reply.to_bytes()) == reply


def test_parser_multiline_split_anywhere() -> None:
    data = b"250-mx.example.org hello\r\n250-PIPELINING\r\n250 SIZE 1000\r\n"
    for cut in range(len(data) + 1):
        p = ReplyParser()
        got = p.feed(data[:cut]) + p.feed(data[cut:])
        assert got == [Reply(250, None, ("mx.example.org hello", "PIPELINING", "SIZE 1000"))]


def test_parser_extracts_enhanced_code() -> None:
    r = parse_reply(b"550-5.7.1 no\r\n550 5.7.1 go away\r\n")
    assert r == Reply(550, "5.7.1", ("no", "go away"))


def test_parser_ignores_enhanced_code_of_wrong_class() -> None:
    r = parse_reply(b"250 5.1.1 odd server\r\n")
    assert r.enhanced is None and r.lines == ("5.1.1 odd server",)


def test_parser_tolerates_bad_servers() -> None:
    p = ReplyParser()
    # LF only, bare code, continuation with a different code, trailing spaces.
    got = p.feed(b"220\n250-a  \n251 b\n")
    assert got == [Reply(220, None, ("",)), Reply(250, None, ("a", "b"))]


@pytest.mark.parametrize("data", [b"hello\r\n", b"25\r\n", b"2500 x\r\n", b"099 x\r\n"])
def test_parser_rejects_garbage(data: bytes) -> None:
    with pytest.raises(MalformedReply):
        ReplyParser().feed(data)


def test_parser_line_limit() -> None:
    with pytest.raises(MalformedReply):
        ReplyParser(max_line=100).feed(b"250 " + b"x" * 200)
