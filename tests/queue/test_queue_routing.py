"""Route selection: account, then sender domain, then global routes; first match wins."""

from __future__ import annotations

import tomllib

import pytest

from kittiwake.config import DomainsConfig, StaticConfig
from kittiwake.queue.routing import RoutingError, Selected, select_transport

STATIC = """
hostname = "mail.example.org"
[transports.smarthost.smtp]
host = "relay.example.net"
[transports.isp.submission]
host = "smtp.isp.example"
username = "me"
password_file = "isp.pw"
[transports.backup.socks]
address = "127.0.0.1:1080"
remote_ips = ["192.0.2.1"]
hostname = "out.example.org"
[transports.off.fail]
code = 550
message = "no outgoing mail for this account"
"""


def config(domains_toml: str) -> tuple[StaticConfig, DomainsConfig]:
    static = StaticConfig.model_validate(tomllib.loads(STATIC))
    domains = DomainsConfig.model_validate(tomllib.loads("""
[domains."example.org"]
[domains."xn--bcher-kva.example"]
[accounts.alice]
domain = "example.org"
[accounts.bob]
domain = "example.org"
""" + domains_toml))
    return static, domains


def pick(static: StaticConfig, domains: DomainsConfig, *, account: str | None = "alice",
         from_domain: str = "example.org", to_domain: str = "example.com",
         attempts: int = 0) -> Selected:
    return select_transport(static, domains, account=account, from_domain=from_domain,
                            to_domain=to_domain, attempts=attempts)


def test_no_routes_means_direct() -> None:
    static, domains = config("")
    selected = pick(static, domains)
    assert (selected.name, selected.kind, selected.route) == ("direct", "direct", "")
    assert selected.transport.direct is not None
    assert not selected.transport.direct.disable_ipv4


def test_order_account_then_domain_then_global() -> None:
    static, domains = config("""
[[accounts.alice.routes]]
to_domains = ["example.com"]
transport = "off"
[[domains."example.org".routes]]
to_domains = ["example.com", "example.net"]
transport = "isp"
[[routes]]
transport = "smarthost"
""")
    assert pick(static, domains).route == "account alice route 1"
    assert pick(static, domains).name == "off"
    # alice to example.net: her route does not match, the domain's does.
    sel = pick(static, domains, to_domain="example.net")
    assert (sel.name, sel.kind, sel.route) == ("isp", "submission", "domain example.org route 1")
    # bob has no routes: his sender domain's route applies.
    assert pick(static, domains, account="bob").route == "domain example.org route 1"
    # A sender domain without routes (and no account) falls through to the global route.
    sel = pick(static, domains, account=None, from_domain="other.example")
    assert (sel.name, sel.kind, sel.route) == ("smarthost", "smtp", "global route 1")
    # Everything else to example.org's domain routes misses; global catches the rest.
    assert pick(static, domains, to_domain="example.info").route == "global route 1"


def test_first_matching_route_in_a_list_wins() -> None:
    static, domains = config("""
[[routes]]
to_domains = ["example.net"]
transport = "off"
[[routes]]
transport = "isp"
[[routes]]
transport = "smarthost"
""")
    assert pick(static, domains).route == "global route 2"
    assert pick(static, domains, to_domain="example.net").route == "global route 1"


def test_leading_dot_matches_subdomains_only() -> None:
    static, domains = config("""
[[routes]]
to_domains = [".example.com"]
transport = "smarthost"
""")
    assert pick(static, domains, to_domain="mail.example.com").name == "smarthost"
    assert pick(static, domains, to_domain="a.b.EXAMPLE.com").name == "smarthost"
    assert pick(static, domains, to_domain="example.com").name == "direct"
    assert pick(static, domains, to_domain="badexample.com").name == "direct"


def test_without_dot_is_exact() -> None:
    static, domains = config("""
[[routes]]
to_domains = ["example.com"]
transport = "smarthost"
""")
    assert pick(static, domains, to_domain="Example.COM.").name == "smarthost"
    assert pick(static, domains, to_domain="mail.example.com").name == "direct"


def test_idna_domains_compare_as_a_labels() -> None:
    static, domains = config("""
[[domains."bücher.example".routes]]
to_domains = [".bücher.example"]
transport = "isp"
[[routes]]
from_domains = ["xn--bcher-kva.example"]
to_domains = ["münchen.example"]
transport = "smarthost"
""")
    # Sender given as a U-label finds the domain stored as A-labels; recipient U-label
    # matches the route's U-label pattern.
    sel = pick(static, domains, account=None, from_domain="Bücher.example",
               to_domain="mail.bücher.example")
    assert sel.route == "domain xn--bcher-kva.example route 1"
    sel = pick(static, domains, account=None, from_domain="bücher.example",
               to_domain="xn--mnchen-3ya.example")
    assert sel.route == "global route 1"


def test_from_domains_condition() -> None:
    static, domains = config("""
[[routes]]
from_domains = [".example.org"]
transport = "smarthost"
""")
    assert pick(static, domains, from_domain="lists.example.org").name == "smarthost"
    assert pick(static, domains, from_domain="example.org").name == "direct"
    # The null reverse-path (DSNs) matches only routes without a sender condition.
    assert pick(static, domains, from_domain="").name == "direct"


def test_min_attempts_applies_from_the_third_attempt() -> None:
    static, domains = config("""
[[routes]]
min_attempts = 2
transport = "backup"
""")
    # attempts = attempts already made: 0 for the first, 2 for the third.
    assert [pick(static, domains, attempts=n).name for n in range(5)] == \
        ["direct", "direct", "backup", "backup", "backup"]


def test_min_attempts_falls_back_to_a_later_list() -> None:
    static, domains = config("""
[[accounts.alice.routes]]
min_attempts = 3
transport = "backup"
[[routes]]
transport = "smarthost"
""")
    assert pick(static, domains, attempts=1).route == "global route 1"
    assert pick(static, domains, attempts=3).route == "account alice route 1"


def test_empty_transport_is_direct_and_stops_the_search() -> None:
    static, domains = config("""
[[accounts.alice.routes]]
to_domains = ["example.com"]
[[routes]]
transport = "smarthost"
""")
    sel = pick(static, domains)
    assert (sel.name, sel.kind, sel.route) == ("direct", "direct", "account alice route 1")
    assert pick(static, domains, to_domain="example.net").name == "smarthost"


def test_unknown_account_is_ignored() -> None:
    static, domains = config("[[routes]]\ntransport = 'smarthost'\n")
    assert pick(static, domains, account="mallory").route == "global route 1"


@pytest.mark.parametrize("junk", ["[192.0.2.1]", "a..b", "x" * 300, " ", "ex ample.com"])
def test_bad_domains_from_the_network_do_not_raise(junk: str) -> None:
    static, domains = config("""
[[routes]]
to_domains = ["example.com"]
transport = "off"
[[routes]]
transport = "smarthost"
""")
    assert pick(static, domains, to_domain=junk, from_domain=junk).route == "global route 2"


def test_route_to_transport_missing_after_reload_raises_clear_error() -> None:
    # domains.conf reloads are validated alone; load() catches this, a reload may not.
    static, domains = config("[[accounts.alice.routes]]\ntransport = 'relay'\n")
    with pytest.raises(RoutingError, match=r"account alice route 1: transport 'relay' is not "
                       r"defined in kittiwake.conf \(known: backup, isp, off, smarthost\)"):
        pick(static, domains)


def test_selected_describes_itself_for_logs() -> None:
    static, domains = config("[[routes]]\ntransport = 'off'\n")
    sel = pick(static, domains)
    assert str(sel) == "transport off (fail) by global route 1"
    assert sel.transport.fail is not None and sel.transport.fail.code == 550
    assert str(pick(*config(""))) == "transport direct (direct) by no matching route"
