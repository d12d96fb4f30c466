"""The Received-SPF header field (RFC 7208 §9.1)."""

from __future__ import annotations

import re

from kittiwake.dns import MockResolver
from kittiwake.spf import Result, Status, received_spf_field, verify
from kittiwake.spf.header import header_comment, header_value


def _pairs(value: str) -> dict[str, str]:
    """key=value pairs after the comment, with quoted-strings unquoted."""
    depth, i = 0, value.index("(")
    while True:  # skip the comment, minding quoted-pairs (RFC 5322 §3.2.2)
        ch = value[i]
        if ch == "\\":
            i += 2
            continue
        depth += {"(": 1, ")": -1}.get(ch, 0)
        i += 1
        if depth == 0:
            break
    rest = value[i:]
    out = {}
    for m in re.finditer(r'\s*([a-z-]+)=("(?:[^"\\]|\\.)*"|[^;\s]+);', rest):
        raw = m.group(2)
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        out[m.group(1)] = raw
    return out


async def test_pass_header_like_the_rfc_example() -> None:
    r = MockResolver()
    r.add("TXT", "example.com", "v=spf1 ip4:192.0.2.0/24 -all")
    result = await verify(r, "192.0.2.1", "myname@example.com", "foo.example.com",
                          receiver="mybox.example.org")
    value = result.received_spf()
    # RFC 7208 §9.1: Received-SPF: pass (mybox.example.org: domain of myname@example.com
    #   designates 192.0.2.1 as permitted sender) receiver=mybox.example.org;
    #   client-ip=192.0.2.1; envelope-from="myname@example.com"; helo=foo.example.com;
    assert value.startswith("pass (mybox.example.org: domain of myname@example.com designates"
                            " 192.0.2.1 as permitted sender) ")
    assert 'envelope-from="myname@example.com";' in value
    assert "client-ip=192.0.2.1;" in value
    assert _pairs(value) == {
        "client-ip": "192.0.2.1", "envelope-from": "myname@example.com",
        "helo": "foo.example.com", "mechanism": "ip4:192.0.2.0/24",
        "receiver": "mybox.example.org", "identity": "mailfrom",
    }
    assert received_spf_field(result).startswith("Received-SPF: pass (")


async def test_helo_identity_and_ipv6_are_quoted() -> None:
    r = MockResolver()
    r.add("TXT", "helo.example", "v=spf1 -all")
    result = await verify(r, "2001:db8::1", "", "helo.example")
    value = result.received_spf()
    assert value.startswith("fail (unknown: domain of helo.example does not designate"
                            " 2001:db8::1 as permitted sender)")
    pairs = _pairs(value)
    assert pairs["client-ip"] == "2001:db8::1"
    assert 'client-ip="2001:db8::1";' in value
    assert pairs["identity"] == "helo"
    assert "envelope-from" not in pairs


def test_problem_text_cannot_break_the_field() -> None:
    result = Result(Status.PERMERROR, "example.org", problem='bad "term" (x)\r\nInjected: yes',
                    ip="192.0.2.1", sender="a@example.org", mailfrom="a@example.org")
    value = result.received_spf()
    assert "\r" not in value and "\n" not in value
    assert value.startswith("permerror (unknown: domain of a@example.org has an invalid SPF"
                            " policy: bad \"term\" \\(x\\)")
    assert _pairs(value)["problem"] == 'bad "term" (x) Injected: yes'


def test_value_and_comment_quoting() -> None:
    assert header_value("mx.example.org") == "mx.example.org"
    assert header_value("a b") == '"a b"'
    assert header_value('say "hi"\\') == '"say \\"hi\\"\\\\"'
    assert header_value("") == '""'
    assert header_comment("a (b) \\ c") == "(a \\(b\\) \\\\ c)"


async def test_every_status_has_a_sentence() -> None:
    for status in Status:
        value = Result(status, "example.org", ip="192.0.2.1", sender="a@example.org",
                       problem="why").received_spf()
        assert value.startswith(f"{status} (unknown: ")
        assert "identity=mailfrom;" in value
