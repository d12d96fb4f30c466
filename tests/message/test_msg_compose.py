"""Composing Received (RFC 5321 §4.4) and Authentication-Results (RFC 8601).

The Authentication-Results oracle is the ``authres`` package (Debian
python3-authres, run with the system Python); the test fails if it is missing.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import subprocess

import pytest

from kittiwake.message import (
    MethodResult,
    WithProtocol,
    authentication_results,
    authserv_id_of,
    count_received,
    parse,
    parse_date,
    parse_header_section,
    received_header,
    with_protocol,
)

WHEN = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def _lines(field: str) -> list[str]:
    assert field.endswith("\r\n")
    return field[:-2].split("\r\n")


def _folded(field: str) -> bool:
    """Lines are at most 78 characters unless a single word is longer (RFC 5322 §2.1.1)."""
    return all(len(line) <= 78 or " " not in line.strip() for line in _lines(field))


def test_received_header() -> None:
    field = received_header(
        by="mx.example.org", date=WHEN, helo="mail.sender.example", ip="2001:db8::1",
        rdns="mail.sender.example.", protocol=with_protocol(tls=True), id="q1w2e3",
        for_rcpt="alice@example.org", tls_version="TLS1.3", tls_cipher="TLS_AES_128_GCM_SHA256",
    )
    assert _folded(field)
    headers, _ = parse_header_section(field.encode() + b"\r\n")
    value = headers.get("Received") or ""
    assert value.startswith(
        "from mail.sender.example (mail.sender.example [IPv6:2001:db8::1]) by mx.example.org"
        " with ESMTPS (TLS1.3, cipher TLS_AES_128_GCM_SHA256) id q1w2e3 for <alice@example.org>;"
    )
    assert parse_date(value.rsplit(";", 1)[1]) == WHEN


def test_received_header_sanitises_network_input() -> None:
    field = received_header(
        by="mx", date=dt.datetime(2024, 1, 2), helo="evil\r\nBcc: victim@example.org (x)",
        ip="::ffff:192.0.2.1", for_rcpt="<a b>\r\nX: y", tls_cipher="c)(\\",
    )
    headers, _ = parse_header_section(field.encode() + b"\r\n")
    assert [h.name for h in headers] == ["Received"]
    value = headers.get("Received") or ""
    assert "([192.0.2.1])" in value  # RFC 5321 §4.1.3 literal; mapped IPv4 shown as IPv4
    assert "(cipher c)" in value
    assert value.count("(") == value.count(")")
    # The stdlib parser agrees there is exactly one field and a date at the end.
    msg = email.message_from_bytes(field.encode() + b"\r\nbody", policy=email.policy.default)
    assert list(msg.keys()) == ["Received"]


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({}, "ESMTP"),
        ({"esmtp": False}, "SMTP"),
        ({"tls": True}, "ESMTPS"),
        ({"authenticated": True}, "ESMTPA"),
        ({"tls": True, "authenticated": True}, "ESMTPSA"),
        ({"smtputf8": True}, "UTF8SMTP"),
        ({"smtputf8": True, "tls": True, "authenticated": True}, "UTF8SMTPSA"),
        ({"lmtp": True, "tls": True}, "LMTPS"),
    ],
)
def test_with_protocol(kw: dict[str, bool], expected: str) -> None:
    assert with_protocol(**kw) == WithProtocol(expected)


def test_count_received() -> None:
    data = b"".join(
        received_header(by=f"hop{i}.example", date=WHEN, helo="h").encode() for i in range(5)
    ) + b"Subject: x\r\n\r\nReceived: in the body\r\n"
    assert count_received(data) == 5
    assert count_received(parse(data).headers) == 5
    assert count_received(b"") == 0


RESULTS = [
    MethodResult("spf", "pass", properties=[("smtp", "mailfrom", "user@example.com")]),
    MethodResult(
        "dkim", "fail", reason="signature did not verify", comment="bad (sig) \\ here",
        properties=[("header", "d", "example.com"), ("header", "i", "@example.com"),
                    ("header", "b", "abcdefgh")],
    ),
    MethodResult("dmarc", "pass", properties=[("header", "from", "example.com")]),
    MethodResult("iprev", "pass", properties=[("policy", "iprev", "192.0.2.1")]),
    MethodResult("x-test", "neutral", reason="several words (with parentheses)",
                 properties=[("smtp", "helo", "two words; and more")]),
    MethodResult(
        "dkim", "pass", properties=[("header", "d", "a-very-long-domain-name." * 3 + "example"),
                                    ("header", "s", "selector2024")],
    ),
]


def _oracle(field: str) -> dict[str, object]:
    script = (
        "import authres, json, sys\n"
        "h = authres.AuthenticationResultsHeader.parse(sys.stdin.read())\n"
        "print(json.dumps({'id': h.authserv_id, 'results': [[r.method, r.result, r.reason,"
        " [[p.type, p.name, p.value] for p in r.properties]] for r in h.results]}))\n"
    )
    out = subprocess.run(
        ["/usr/bin/python3", "-c", script], input=field.rstrip("\r\n"), capture_output=True,
        text=True, timeout=30,
    )
    assert out.returncode == 0, f"authres oracle (Debian python3-authres) failed: {out.stderr}"
    return json.loads(out.stdout)


@pytest.mark.integration
def test_authentication_results_parsed_by_authres() -> None:
    field = authentication_results("mx.example.org", RESULTS)
    assert _folded(field)
    parsed = _oracle(field)
    assert parsed["id"] == "mx.example.org"
    assert parsed["results"] == [
        [r.method, r.result, r.reason, [list(p) for p in r.properties]] for r in RESULTS
    ]


def test_authentication_results_quoting() -> None:
    field = authentication_results(
        "mx.example.org",
        [MethodResult("x-test", "neutral", reason='quote " and back\\slash',
                      properties=[("smtp", "helo", "[192.0.2.1]"), ("smtp", "mailfrom", "")])],
    )
    assert 'reason="quote \\" and back\\\\slash"' in field
    assert 'smtp.helo="[192.0.2.1]"' in field and 'smtp.mailfrom=""' in field


def test_authentication_results_none() -> None:
    field = authentication_results("mx.example.org", [])
    assert field == "Authentication-Results: mx.example.org; none\r\n"
    assert _oracle(field) == {"id": "mx.example.org", "results": []}


def test_authentication_results_sanitises() -> None:
    field = authentication_results(
        "mx.example.org",
        [MethodResult("spf\r\nX-Evil", "pass\r\n", reason="a\r\nb",
                      properties=[("smtp", "mailfrom", "x\r\nBcc: v@example.org")])],
    )
    headers, _ = parse_header_section(field.encode() + b"\r\n")
    assert [h.name for h in headers] == ["Authentication-Results"]


def test_authserv_id_of() -> None:
    assert authserv_id_of("mx.example.org; spf=pass smtp.mailfrom=a@b") == "mx.example.org"
    assert authserv_id_of(" (comment) mx.example.org 1; none") == "mx.example.org"
    assert authserv_id_of('"quoted id"; none') == "quoted id"
    assert authserv_id_of(";") is None and authserv_id_of("") is None
