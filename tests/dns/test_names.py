"""Name checks before lookups (RFC 1035 §2.3.4, IDNA 2008 / RFC 5891, RFC 5895 mapping)."""

import ipaddress

import pytest

from kittiwake.dns import InvalidName, reverse_name, to_ascii, to_unicode


def test_idna_label_becomes_a_label() -> None:
    assert to_ascii("bücher.example.") == "xn--bcher-kva.example"


def test_u_label_is_mapped_to_lower_case_first() -> None:
    # RFC 5895 §2: "Bücher" is mapped to "bücher" before conversion.
    assert to_ascii("Bücher.example") == "xn--bcher-kva.example"


def test_ascii_names_are_kept_as_given() -> None:
    assert to_ascii("_dmarc.Example.ORG") == "_dmarc.Example.ORG"
    assert to_ascii(" sel._domainkey.example.org. ") == "sel._domainkey.example.org"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty domain name"),
        (".", "empty domain name"),
        ("a..b", "empty label"),
        (".example", "empty label"),
        ("x" * 64 + ".example", "64 octets, at most 63"),
        ("ü" * 60 + ".example", "not valid IDNA 2008"),  # A-label over 63 octets
        (".".join(["a" * 63] * 4), "255 characters, at most 253"),
        ("☃.example", "not valid IDNA 2008"),
        ("-bücher.example", "not valid IDNA 2008"),
        ("a\u200db.example", "not valid IDNA 2008"),  # joiner outside its context
    ],
)
def test_malformed_names_are_refused_with_reason(name: str, reason: str) -> None:
    with pytest.raises(InvalidName, match=reason):
        to_ascii(name)


def test_length_limits_are_inclusive() -> None:
    label63 = "a" * 63
    assert to_ascii(label63 + ".example") == label63 + ".example"
    name253 = ".".join([label63, label63, label63, "b" * 61])
    assert len(name253) == 253
    assert to_ascii(name253 + ".") == name253
    with pytest.raises(InvalidName):
        to_ascii(name253 + "b")


def test_non_text_is_refused() -> None:
    with pytest.raises(InvalidName, match="must be text"):
        to_ascii(b"example.org")  # type: ignore[arg-type]


def test_to_unicode_turns_valid_a_labels_back() -> None:
    assert to_unicode("xn--bcher-kva.example.") == "bücher.example"
    assert to_unicode("xn--zz.example") == "xn--zz.example"  # not a valid A-label: kept


def test_reverse_names() -> None:
    assert reverse_name("192.0.2.1") == "1.2.0.192.in-addr.arpa"
    assert reverse_name(ipaddress.ip_address("2001:db8::1")) == (
        "1." + "0." * 23 + "8.b.d.0.1.0.0.2.ip6.arpa"  # 32 nibbles
    )
    with pytest.raises(InvalidName, match="not an IP address"):
        reverse_name("mx.example.org")
