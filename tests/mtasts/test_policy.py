"""MTA-STS policy files and MX matching (RFC 8461 §3.2, §4.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kittiwake.mtasts import Mode, PolicyError, mx_allowed, parse_policy

RFC_EXAMPLE = ("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
               "mx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n")


def test_rfc_example() -> None:
    policy = parse_policy(RFC_EXAMPLE)
    assert policy.mode is Mode.ENFORCE and policy.enforce
    assert policy.max_age == 604800
    assert policy.mx == ("mail.example.com", "*.example.net", "backupmx.example.com")
    assert parse_policy(policy.to_text()) == parse_policy(RFC_EXAMPLE)


def test_lf_lines_unknown_keys_and_spacing() -> None:
    text = "version: STSv1\nmode:testing\nfoo: bar baz\nmx:  MX.Example.ORG.  \nmax_age: 86400"
    policy = parse_policy(text)
    assert policy.mode is Mode.TESTING and not policy.enforce
    assert policy.mx == ("mx.example.org",)


def test_mode_none_needs_no_mx() -> None:
    policy = parse_policy("version: STSv1\nmode: none\nmax_age: 0\n")
    assert policy.mode is Mode.NONE and policy.mx == ()


@pytest.mark.parametrize(("text", "why"), [
    ("mode: enforce\nmx: a.example\nmax_age: 1", "version is 'missing'"),
    ("version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1", "not 'STSv1'"),
    ("version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1", "mode 'strict'"),
    ("version: STSv1\nmode: enforce\nmx: a.example", "max_age 'missing'"),
    ("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1", "not a number"),
    ("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601", "more than 31557600"),
    ("version: STSv1\nmode: enforce\nmax_age: 600", "needs at least one mx"),
    ("version: STSv1\nmode: enforce\nmx: a.*.example\nmax_age: 600", "wildcard"),
    ("version: STSv1\nmode: enforce\nmx: a..example\nmax_age: 600", "not a domain name"),
    ("version: STSv1\nmode enforce\nmx: a.example\nmax_age: 600", "no 'key: value'"),
    ("<html>version: STSv1</html>", "not a field name"),
])
def test_invalid_policies(text: str, why: str) -> None:
    with pytest.raises(PolicyError, match=why):
        parse_policy(text)


def test_largest_max_age_is_allowed() -> None:
    policy = parse_policy("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557600")
    assert policy.max_age == 31557600


@pytest.mark.parametrize(("host", "allowed"), [
    ("mail.example.com", True),
    ("MAIL.EXAMPLE.COM.", True),
    ("mx1.example.net", True),
    ("example.net", False),
    ("a.b.example.net", False),
    ("xexample.net", False),
    ("other.example.com", False),
    ("bad..name", False),
])
def test_mx_allowed(host: str, allowed: bool) -> None:
    assert mx_allowed(parse_policy(RFC_EXAMPLE), host) is allowed


@given(st.text(max_size=400))
def test_arbitrary_text_is_a_policy_or_a_policy_error(text: str) -> None:
    try:
        parse_policy(text)
    except PolicyError:
        pass
