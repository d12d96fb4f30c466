"""Command line parsing: RFC 5321 §4.1.1 and extension parameters."""

from __future__ import annotations

import pytest

from kittiwake.smtp import (
    Address,
    AuthCommand,
    BdatCommand,
    Body,
    CommandError,
    DataCommand,
    EhloCommand,
    HeloCommand,
    HelpCommand,
    MailCommand,
    Notify,
    ORcpt,
    QuitCommand,
    RcptCommand,
    Ret,
    StartTLSCommand,
    VrfyCommand,
    parse_command,
    xtext_decode,
    xtext_encode,
)


def err(line: bytes, **kw: bool) -> str:
    with pytest.raises(CommandError) as e:
        parse_command(line, **kw)
    return f"{e.value.reply.code} {e.value.reply.enhanced}"


def test_verbs_are_case_insensitive() -> None:
    assert parse_command(b"ehlo client.example") == EhloCommand("client.example")
    assert parse_command(b"HeLo client.example") == HeloCommand("client.example")
    assert parse_command(b"quit") == QuitCommand()
    assert parse_command(b"StartTLS") == StartTLSCommand()
    assert parse_command(b"data") == DataCommand()
    assert parse_command(b"mail from:<a@b.example>").path == Address("a", "b.example", "b.example")


def test_unknown_command_500() -> None:
    assert err(b"FROB x") == "500 5.5.1"


def test_arguments_where_none_allowed_501() -> None:
    assert err(b"DATA now") == "501 5.5.4"
    assert err(b"QUIT please") == "501 5.5.4"
    assert err(b"EHLO") == "501 5.5.4"


def test_mail_with_all_parameters() -> None:
    cmd = parse_command(
        b"MAIL FROM:<a@example.com> SIZE=1234 BODY=8bitmime SMTPUTF8 REQUIRETLS"
        b" AUTH=a+2Bb@example.com RET=HDRS ENVID=QQ+3D1", smtputf8=True)
    assert isinstance(cmd, MailCommand)
    p = cmd.params
    assert (p.size, p.body, p.smtputf8, p.requiretls) == (1234, Body.EIGHT_BIT_MIME, True, True)
    assert (p.auth, p.ret, p.envid) == ("a+b@example.com", Ret.HDRS, "QQ=1")


def test_mail_null_path_and_tolerated_space() -> None:
    cmd = parse_command(b"MAIL FROM: <>")
    assert isinstance(cmd, MailCommand) and cmd.path is None


@pytest.mark.parametrize(
    ("line", "expect"),
    [(b"MAIL FROM:<a@example.com> FOO=bar", "555 5.5.4"),
     (b"MAIL FROM:<a@example.com> SIZE=abc", "501 5.5.4"),
     (b"MAIL FROM:<a@example.com> SIZE=1 SIZE=2", "501 5.5.4"),
     (b"MAIL FROM:<a@example.com> BODY=9BIT", "501 5.5.4"),
     (b"MAIL FROM:<a@example.com> SMTPUTF8=yes", "501 5.5.4"),
     (b"MAIL FROM:a@example.com", "501 5.5.4"),
     (b"MAIL TO:<a@example.com>", "501 5.5.4"),
     (b"MAIL FROM:<a@@example.com>", "501 5.1.7"),
     (b"RCPT TO:<b@@example.com>", "501 5.1.3"),
     (b"RCPT TO:<>", "501 5.1.3"),
     (b"MAIL FROM:<a@example.com>x", "501 5.5.4")],
)
def test_mail_rcpt_errors(line: bytes, expect: str) -> None:
    assert err(line) == expect


def test_rcpt_dsn_parameters() -> None:
    cmd = parse_command(b"RCPT TO:<b@example.org> NOTIFY=SUCCESS,failure ORCPT=rfc822;b+40x")
    assert isinstance(cmd, RcptCommand)
    assert cmd.params.notify == frozenset({Notify.SUCCESS, Notify.FAILURE})
    assert cmd.params.orcpt == ORcpt("rfc822", "b@x")
    assert err(b"RCPT TO:<b@example.org> NOTIFY=NEVER,DELAY") == "501 5.5.4"


def test_rcpt_utf8_orcpt() -> None:
    cmd = parse_command(b"RCPT TO:<b@example.org> ORCPT=utf-8;j\\x{00F6}rg@example.org")
    assert isinstance(cmd, RcptCommand)
    assert cmd.params.orcpt == ORcpt("utf-8", "jörg@example.org")


def test_rcpt_postmaster() -> None:
    cmd = parse_command(b"RCPT TO:<Postmaster>")
    assert isinstance(cmd, RcptCommand) and cmd.path.is_postmaster


def test_utf8_mail_only_with_smtputf8_parameter_and_extension() -> None:
    line = "MAIL FROM:<jörg@bücher.example> SMTPUTF8".encode()
    cmd = parse_command(line, smtputf8=True)
    assert isinstance(cmd, MailCommand) and cmd.path is not None
    assert cmd.path.domain == "xn--bcher-kva.example"
    assert err("MAIL FROM:<jörg@example.org>".encode(), smtputf8=True) == "553 5.6.7"
    assert err(line, smtputf8=False) == "553 5.6.7"
    assert err("RCPT TO:<jörg@example.org>".encode()) == "553 5.6.7"
    assert isinstance(parse_command("RCPT TO:<jörg@example.org>".encode(), rcpt_utf8=True),
                      RcptCommand)


def test_non_ascii_outside_addresses_rejected() -> None:
    assert err("EHLO bücher.example".encode()) == "500 5.5.2"
    assert err(b"NOOP \xff\xfe") == "500 5.5.2"
    assert err(b"NOOP a\x00b") == "500 5.5.2"


def test_bdat() -> None:
    assert parse_command(b"BDAT 100") == BdatCommand(100, False)
    assert parse_command(b"bdat 0 last") == BdatCommand(0, True)
    assert err(b"BDAT") == "501 5.5.4"
    assert err(b"BDAT -1") == "501 5.5.4"
    assert err(b"BDAT 10 FIRST") == "501 5.5.4"


def test_auth() -> None:
    assert parse_command(b"AUTH plain AGEAYg==") == AuthCommand("PLAIN", b"\x00a\x00b")
    assert parse_command(b"AUTH LOGIN") == AuthCommand("LOGIN", None)
    assert parse_command(b"AUTH PLAIN =") == AuthCommand("PLAIN", b"")
    assert err(b"AUTH PLAIN !!!") == "501 5.5.2"
    assert err(b"AUTH") == "501 5.5.4"


def test_vrfy_help() -> None:
    assert parse_command(b"VRFY root") == VrfyCommand("root")
    assert err(b"VRFY") == "501 5.5.4"
    assert parse_command(b"HELP") == HelpCommand(None)


def test_xtext_roundtrip() -> None:
    assert xtext_encode("a+b=c ü") == "a+2Bb+3Dc+20+C3+BC"
    assert xtext_decode(xtext_encode("a+b=c ü")) == "a+b=c ü"
    with pytest.raises(ValueError):
        xtext_decode("a+zz")
