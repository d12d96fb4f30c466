"""One normaliser for mail domains (kittiwake.dns.names.mail_domain) and every place using it.

UTS #46 maps what it maps to something visible (case, width, the full stops
U+3002/U+FF0E/U+FF61); what it would drop (U+200B, U+00AD) and what IDNA 2008
disallows (RFC 5892, CONTEXTJ/CONTEXTO) is refused; address literals are not
domain names.
"""

from __future__ import annotations

import re

import pytest

from kittiwake.config import DomainsConfig
from kittiwake.config.lookup import AccountRecipient, AddressIndex
from kittiwake.dns import DisallowedName, InvalidName, domain_key, mail_domain, to_ascii
from kittiwake.dsn.report import ascii_domain as dsn_ascii_domain
from kittiwake.message.address import parse_addresses
from kittiwake.queue.model import domain_of
from kittiwake.queue.routing import normalize_domain as routing_domain
from kittiwake.queue.store import normalize_domain as store_domain
from kittiwake.smtp.address import (
    AddressSyntaxError,
    DisallowedDomain,
    domain_forms,
    parse_address,
    parse_path,
)

ZWSP = "\u200b"
SOFT_HYPHEN = "\u00ad"
FULLWIDTH_DOTS = ("\uff0e", "\u3002", "\uff61")


# --- the normaliser itself ---------------------------------------------------------

@pytest.mark.parametrize(("typed", "ascii", "unicode"), [
    ("kw.example", "kw.example", "kw.example"),
    ("KW.Example.", "kw.example", "kw.example"),  # case; one trailing dot dropped
    ("Bücher.example", "xn--bcher-kva.example", "bücher.example"),
    ("XN--BCHER-KVA.example", "xn--bcher-kva.example", "bücher.example"),
    ("\uff4b\uff57.example", "kw.example", "kw.example"),  # full-width letters
    *[(f"kw{dot}example", "kw.example", "kw.example") for dot in FULLWIDTH_DOTS],
    ("l\u00b7l.example", "xn--ll-0ea.example", "l\u00b7l.example"),  # CONTEXTO allows l·l
])
def test_uts46_maps_visible_variants(typed: str, ascii: str, unicode: str) -> None:
    assert mail_domain(typed) == (ascii, unicode)


@pytest.mark.parametrize(("typed", "reason"), [
    (f"{ZWSP}kw.example", "invisible character U+200B (ZERO WIDTH SPACE)"),
    (f"k{SOFT_HYPHEN}w.example", "invisible character U+00AD (SOFT HYPHEN)"),
    ("kw\u2060.example", "invisible character U+2060 (WORD JOINER)"),
    ("a\u200db.example", "Joiner U+200D not allowed"),  # CONTEXTJ
    ("a\u00b7b.example", "U+00B7 not allowed"),  # CONTEXTO: middle dot only between l's
    ("\u2603.example", "U+2603"),  # snowman: DISALLOWED
    ("xn--zz.example", "not a valid A-label"),
])
def test_what_idna2008_disallows_is_refused(typed: str, reason: str) -> None:
    with pytest.raises(DisallowedName, match=re.escape(reason)):
        mail_domain(typed)


@pytest.mark.parametrize(("typed", "reason"), [
    ("bad domain", "a space is not allowed"),
    ("x_y.example", "character '_' is not allowed"),
    ("a@b.example", "character '@' is not allowed"),
    ("127.0.0.1", r"IP address, not a domain name \(as an address literal it is written"
                  r" \[127.0.0.1\]\)"),
    ("[127.0.0.1]", "address literal"),
    ("a..b", "empty label"),
    ("-a.example", "starts or ends with a hyphen"),
    ("", "empty domain name"),
])
def test_what_is_no_domain_name_is_refused(typed: str, reason: str) -> None:
    with pytest.raises(InvalidName, match=reason) as info:
        mail_domain(typed)
    assert not isinstance(info.value, DisallowedName)


def test_lookup_names_refuse_invisible_characters_too() -> None:
    # to_ascii (DNS lookups, DMARC, MTA-STS) shares the rule: no silent drop.
    with pytest.raises(InvalidName, match="U\\+200B"):
        to_ascii(f"{ZWSP}kw.example")
    assert to_ascii("_dmarc.Bücher.example") == "_dmarc.xn--bcher-kva.example"


def test_domain_key_never_turns_a_look_alike_into_the_real_name() -> None:
    assert domain_key("Kw\uff0eExample") == "kw.example"
    assert domain_key(f"{ZWSP}kw.example") == f"{ZWSP}kw.example"
    assert domain_key(" [IPv6:2001:DB8::1] ") == "[ipv6:2001:db8::1]"


# --- the call sites -----------------------------------------------------------------

def test_smtp_paths_map_and_refuse() -> None:
    path, _ = parse_path("<bob@kw\uff0eexample>", smtputf8=True)
    assert path is not None and path.domain == "kw.example"
    with pytest.raises(DisallowedDomain, match="U\\+200B"):
        parse_path(f"<bob@{ZWSP}kw.example>", smtputf8=True)
    with pytest.raises(DisallowedDomain, match="U\\+00AD"):
        parse_address(f"bob@k{SOFT_HYPHEN}w.example")
    # still syntax errors to callers that only know AddressSyntaxError
    with pytest.raises(AddressSyntaxError):
        domain_forms(f"{ZWSP}kw.example")
    # address literals keep working where RFC 5321 §4.1.3 allows them
    literal, _ = parse_path("<postmaster@[127.0.0.1]>")
    assert literal is not None and literal.domain == "[127.0.0.1]"
    assert domain_forms("Münich.Example") == ("xn--mnich-kva.example", "münich.example")


def test_address_index_maps_full_width_dots_and_ignores_look_alikes() -> None:
    index = AddressIndex(DomainsConfig.model_validate({
        "domains": {"kw.example": {}},
        "accounts": {"bob": {"domain": "kw.example",
                             "destinations": {"bob@kw.example": {}}}}}))
    for dot in FULLWIDTH_DOTS:
        found = index.lookup("bob", f"kw{dot}example")
        assert isinstance(found, AccountRecipient) and found.account == "bob"
        assert index.is_local_domain(f"KW{dot}EXAMPLE")
    for look_alike in (f"{ZWSP}kw.example", f"k{SOFT_HYPHEN}w.example"):
        assert index.lookup("bob", look_alike) is None
        assert not index.is_local_domain(look_alike)


def test_domains_conf_refuses_bad_domain_keys() -> None:
    for bad in ("bad domain", "[127.0.0.1]", f"{ZWSP}kw.example", "x_y.example"):
        with pytest.raises(ValueError, match=r"not allowed|address literal"):
            DomainsConfig.model_validate({"domains": {bad: {}}})
    config = DomainsConfig.model_validate({"domains": {"Kw\uff0eExample": {}}})
    assert list(config.domains) == ["kw.example"]


def test_queue_and_routing_compare_in_one_form() -> None:
    for normalize in (routing_domain, store_domain):
        assert normalize("Bücher.Example.") == "xn--bcher-kva.example"
        assert normalize("kw\u3002example") == "kw.example"
        assert normalize("[127.0.0.1]") == "[127.0.0.1]"
        assert normalize(f"{ZWSP}kw.example") == f"{ZWSP}kw.example"
    assert store_domain("") == ""
    assert domain_of("bob@Kw\uff0eExample") == "kw.example"
    assert domain_of("bob@[IPv6:2001:DB8::1]") == "[ipv6:2001:db8::1]"
    assert domain_of("") == ""


def test_dsn_and_message_addresses_use_the_same_forms() -> None:
    assert dsn_ascii_domain("Bücher.example") == "xn--bcher-kva.example"
    assert dsn_ascii_domain("kw\uff0eexample") == "kw.example"
    assert dsn_ascii_domain("Example.ORG") == "Example.ORG"  # ASCII kept as written
    assert dsn_ascii_domain(f"{ZWSP}kw.example") == f"{ZWSP}kw.example"
    [plain, mapped, look_alike] = parse_addresses(
        f"a@Bücher.example, b@kw\uff0eexample, c@{ZWSP}kw.example")
    assert (plain.ascii_domain, plain.unicode_domain) == ("xn--bcher-kva.example",
                                                          "bücher.example")
    assert mapped.ascii_domain == "kw.example"
    assert look_alike.ascii_domain == f"{ZWSP}kw.example"  # as written, not kw.example
