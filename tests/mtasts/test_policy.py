"""MTA-STS policy files and MX matching (RFC 8461 §3.2, §4.1)."""

from __future__ import annotations

import re

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


# RFC 5321 §4.1.2 sub-domain, as RFC 8461 §3.2 wants it: letters, digits, inner hyphens.
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def _check_policy_or_error(text: str) -> None:
    """RFC 8461 §3.2: either a policy whose every field obeys the rules, or a
    PolicyError that says what was wrong; nothing else."""
    try:
        policy = parse_policy(text)
    except PolicyError as exc:
        assert str(exc).strip(), "a PolicyError needs a reason"
        return
    assert policy.version == "STSv1"
    assert isinstance(policy.mode, Mode)
    assert 0 <= policy.max_age <= 31557600
    assert policy.mx or policy.mode is Mode.NONE
    for mx in policy.mx:
        name = mx.removeprefix("*.")
        assert mx == mx.lower() and mx.isascii() and not mx.endswith("."), mx
        assert "*" not in name, mx  # a wildcard only as the whole leftmost label
        assert all(_LABEL.fullmatch(label) for label in name.split(".")), mx
        assert len(name) <= 253, mx
    # The policy as we would serve it means the same.
    again = parse_policy(policy.to_text())
    assert (again.version, again.mode, again.max_age, again.mx) == (
        policy.version, policy.mode, policy.max_age, policy.mx)


@given(st.text(max_size=400))
def test_arbitrary_text_is_a_policy_or_a_policy_error(text: str) -> None:
    _check_policy_or_error(text)


_KEYS = st.sampled_from(["version", "mode", "mx", "max_age", "Version", "mx ", "foo", ""])
_VALUES = st.one_of(
    st.sampled_from(["STSv1", "STSv2", "enforce", "testing", "none", "ENFORCE", "0", "86400",
                     "31557600", "31557601", "-1", "1e3", "mail.example.com", "*.example.net",
                     "a.*.example", "MX.Example.ORG.", "xn--bcher-kva.example", "bücher.example",
                     "a..b", "-a.example", "a" * 64 + ".example", "", " ", "*"]),
    st.text(alphabet="abc.*-09 \t:_", max_size=20))


@given(st.lists(st.tuples(_KEYS, _VALUES), max_size=8), st.sampled_from(["\n", "\r\n"]))
def test_policy_like_text_is_a_valid_policy_or_a_policy_error(
        lines: list[tuple[str, str]], eol: str) -> None:
    """Lines built from the policy's own keys and tricky values reach valid policies too."""
    base = [("version", "STSv1"), ("mode", "enforce"), ("max_age", "86400")]
    for prefix in ([], base):
        _check_policy_or_error(eol.join(f"{k}: {v}" for k, v in [*prefix, *lines]))


@pytest.mark.parametrize("value", [":", "a:b", "a_b.example", "a/b.example", "-",
                                   "-a.example", "a-.example", "0 0"])
def test_mx_value_must_be_a_domain(value: str) -> None:
    with pytest.raises(PolicyError, match="not a domain name"):
        parse_policy(f"version: STSv1\nmode: enforce\nmax_age: 1\nmx: {value}\n")
