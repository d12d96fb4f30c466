"""Numbers on the network are ASCII digits only (RFC 5321 §4.2, RFC 5234 DIGIT = %x30-39).

``str.isdigit``, ``re``'s ``\\d`` and ``int`` all take other digits: "①"
and "²" pass ``isdigit`` but make ``int`` raise a bare ValueError, and
Arabic-Indic "٢٥٠" is read as 250. Every parser of network input must refuse
them with its own error.
"""

from __future__ import annotations

import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kittiwake.dsn.report import Action, RecipientReport
from kittiwake.message.params import decode_params
from kittiwake.mtasts.policy import PolicyError, parse_policy
from kittiwake.queue.model import DeliveryError
from kittiwake.smtp import (
    CommandError,
    MalformedReply,
    ParamError,
    ReplyParser,
    parse_command,
    parse_mail_params,
    parse_reply,
)
from kittiwake.smtp.reply import Reply
from kittiwake.smtpclient.capabilities import Capabilities

# Every character Python calls a digit that is not an ASCII digit: "①", "²", "٢", "५", ...
NON_ASCII_DIGITS = [c for c in map(chr, range(sys.maxunicode + 1))
                    if c.isdigit() and not c.isascii()]
non_ascii_digit = st.sampled_from(NON_ASCII_DIGITS)
any_digit = st.one_of(st.sampled_from("0123456789"), non_ascii_digit)


def _has_non_ascii(text: str) -> bool:
    return not text.isascii()


# Three "digits" of which at least one is not ASCII.
codes = st.tuples(any_digit, any_digit, any_digit).map("".join).filter(_has_non_ascii)


def test_the_issue_examples() -> None:
    with pytest.raises(MalformedReply):
        parse_reply(b"00\xe2\x91\xa0\n")  # "00①"
    with pytest.raises(MalformedReply):
        parse_reply("٢٥٠ ok\r\n".encode())
    with pytest.raises(MalformedReply):
        parse_reply("25² ok\r\n".encode())


@given(code=codes, text=st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")),
                                max_size=20))
@settings(max_examples=300)
def test_reply_codes_with_non_ascii_digits_are_malformed(code: str, text: str) -> None:
    for line in (f"{code} {text}\r\n", f"{code}-{text}\r\n250 x\r\n", f"{code}\n"):
        with pytest.raises(MalformedReply):
            ReplyParser().feed(line.encode("utf-8"))


@given(a=any_digit, b=any_digit, c=any_digit)
@settings(max_examples=200)
def test_enhanced_codes_are_ascii_only(a: str, b: str, c: str) -> None:
    enhanced = f"5.{a}{b}.{c}"
    reply = parse_reply(f"550 {enhanced} no\r\n".encode())
    if enhanced.isascii():
        assert reply.enhanced is not None
    else:
        assert reply.enhanced is None  # not an enhanced code: it stays in the text
        assert reply.lines == (f"{enhanced} no",)
        with pytest.raises(ValueError, match="does not fit"):
            Reply(550, enhanced)


@given(digits=st.lists(any_digit, min_size=1, max_size=8).map("".join).filter(_has_non_ascii))
@settings(max_examples=200)
def test_numbers_in_commands_and_capabilities(digits: str) -> None:
    # MAIL FROM SIZE= (RFC 1870 §3), BDAT chunk-size (RFC 3030 §2).
    with pytest.raises(ParamError):
        parse_mail_params(f"SIZE={digits}")
    with pytest.raises(CommandError):
        parse_command(f"BDAT {digits} LAST".encode())
    # EHLO SIZE and LIMITS values from the server (RFC 1870 §4, RFC 9422 §4).
    caps = Capabilities.from_ehlo(parse_reply(
        f"250-mx.example\r\n250-SIZE {digits}\r\n250 LIMITS RCPTMAX={digits}\r\n".encode()))
    assert caps.size is None
    assert caps.rcptmax is None


@given(digit=non_ascii_digit)
def test_mime_parameter_sections(digit: str) -> None:
    # RFC 2231 §3: "name*0", "name*1"; "name*①" is just a parameter name.
    params = decode_params([("filename*" + digit, "a.txt", False)])
    assert params == {"filename*" + digit: "a.txt"}


@given(digits=st.lists(any_digit, min_size=1, max_size=8).map("".join).filter(_has_non_ascii))
def test_mtasts_max_age(digits: str) -> None:
    with pytest.raises(PolicyError):
        parse_policy(f"version: STSv1\nmode: enforce\nmx: mx.example\nmax_age: {digits}\n")


@given(a=any_digit, b=any_digit)
def test_dsn_status_from_an_enhanced_code(a: str, b: str) -> None:
    report = RecipientReport("bob@example.org", Action.FAILED,
                             DeliveryError(550, f"5.{a}.{b}", "no", "mx.example"))
    status = report.status_code()
    assert status == (f"5.{a}.{b}" if (a + b).isascii() else "5.0.0")


@given(digit=non_ascii_digit)
def test_resolver_port(digit: str) -> None:
    from kittiwake.dns import ResolverConfigError, parse_nameservers

    with pytest.raises(ResolverConfigError, match="port must be a number"):
        parse_nameservers(f"127.0.0.1:5{digit}")


async def test_client_reports_a_non_ascii_reply_code_as_a_protocol_error() -> None:
    """The bare ValueError used to escape Client.connect instead of ProtocolError."""
    import asyncio

    from kittiwake.smtpclient import Client, ProtocolError

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write("22① mx.example ready\r\n".encode())
        await writer.drain()
        await reader.read(100)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ProtocolError, match="malformed reply"):
            await Client.connect("127.0.0.1", port, local_hostname="client.example",
                                 timeouts=5)
    finally:
        server.close()
        await server.wait_closed()


@given(digit=non_ascii_digit)
def test_imap_section_numbers(digit: str) -> None:
    from kittiwake.message.part import parse

    message = parse(b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n"
                            b"one\r\n--b\r\n\r\ntwo\r\n--b--\r\n")
    assert message.section("2") is not None
    assert message.section(digit) is None and message.section(f"1.{digit}") is None
