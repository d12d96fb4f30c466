"""Fast paths for printable ASCII in the Received-SPF field and domain checks."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from kittiwake.spf import check, header


@given(st.text(max_size=60))
def test_safe_equals_regex(text: str) -> None:
    assert header._safe(text) == re.sub(r"[\x00-\x1f\x7f]+", " ", text).strip()


@given(st.text(alphabet=st.characters(max_codepoint=0x3000), max_size=40))
def test_space_or_control_equals_per_character_test(text: str) -> None:
    expected = any(c.isspace() or ord(c) < 0x20 or c == "\x7f" for c in text)
    assert check._has_space_or_control(text) is expected


def test_space_or_control_examples() -> None:
    for bad in ("a b", "a\tb", "a\x1cb", "a\x7fb", "a\u00a0b", "a\x00"):
        assert check._has_space_or_control(bad)
    assert not check._has_space_or_control("mail.example.org")
    assert check.domain_problem("exa mple.org").startswith("domain ")


@given(st.text(alphabet=st.sampled_from(list("ab ()\\\x01\u00e9:")), max_size=30))
def test_header_comment_equals_regex(text: str) -> None:
    safe = re.sub(r"[\x00-\x1f\x7f]+", " ", text).strip()
    assert header.header_comment(text) == "(" + re.sub(r"([()\\])", r"\\\1", safe) + ")"


@given(st.one_of(st.ip_addresses().map(str), st.text(max_size=20),
                 st.ip_addresses(v=4).map(lambda a: f" ::ffff:{a} ")))
def test_normalize_ip_cached_equals_uncached(text: str) -> None:
    import ipaddress

    def reference(ip: str) -> object:
        address = ipaddress.ip_address(ip.strip())
        if address.version == 6 and address.ipv4_mapped is not None:
            return address.ipv4_mapped
        return address

    try:
        expected: object = reference(text)
    except ValueError:
        expected = ValueError
    try:
        got: object = check.normalize_ip(text)
        again: object = check.normalize_ip(text)
    except ValueError:
        got = again = ValueError
    assert got == expected == again
    if got is not ValueError:
        assert check.normalize_ip(got) == got  # type: ignore[arg-type]
