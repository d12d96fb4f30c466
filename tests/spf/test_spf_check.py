"""check_host() and verify() (RFC 7208 §2.3, §2.4, §4, §5, §6): limits, semantics, DNSSEC."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kittiwake.dns import MX, MockResolver, RRType
from kittiwake.spf import Status, check_host, verify

IP = "192.0.2.1"


def zone(records: dict[str, str], authentic: bool = True) -> MockResolver:
    r = MockResolver()
    for name, text in records.items():
        r.add("TXT", name, text, authentic=authentic)
    return r


# --- identities (RFC 7208 §2.3, §2.4, §4.3) ---------------------------------------------

async def test_mailfrom_identity_when_given() -> None:
    r = zone({"example.org": "v=spf1 ip4:192.0.2.0/24 -all", "helo.example": "v=spf1 -all"})
    result = await verify(r, IP, "alice@example.org", "helo.example")
    assert (result.status, result.identity, result.domain) == (Status.PASS, "mailfrom",
                                                               "example.org")
    assert result.mechanism == "ip4:192.0.2.0/24"
    assert result.sender == "alice@example.org"


@pytest.mark.parametrize("mailfrom", ["", "<>", None])
async def test_helo_identity_for_the_null_reverse_path(mailfrom: str | None) -> None:
    r = zone({"example.org": "v=spf1 +all", "helo.example": "v=spf1 -all exp=why.helo.example"})
    r.add("TXT", "why.helo.example", "%{s} is not allowed", authentic=True)
    result = await verify(r, IP, mailfrom, "helo.example")
    assert (result.status, result.identity, result.domain) == (Status.FAIL, "helo",
                                                               "helo.example")
    # RFC 7208 §2.3: <sender> is "postmaster@" plus the HELO name.
    assert result.explanation == "postmaster@helo.example is not allowed"


async def test_missing_local_part_becomes_postmaster() -> None:
    r = zone({"example.org": "v=spf1 -all exp=e.example.org"})
    r.add("TXT", "e.example.org", "%{l} / %{s} / %{o}")
    result = await verify(r, IP, "@example.org", "h.example")
    assert result.explanation == "postmaster / postmaster@example.org / example.org"


@pytest.mark.parametrize(("mailfrom", "helo"), [
    ("a@[192.0.2.1]", "h.example"), ("a@localhost", "h.example"), ("", "[192.0.2.1]"),
    ("", "OEMCOMPUTER"), ("a@foo..example", "h"), ("a@" + "x" * 64 + ".example", "h"),
    ("a@", "h"), ("", ""), ("a@exa mple.org", "h"),
])
async def test_malformed_domains_give_none(mailfrom: str, helo: str) -> None:
    result = await verify(MockResolver(), IP, mailfrom, helo)
    assert result.status is Status.NONE
    assert result.problem


async def test_ipv4_mapped_client_is_checked_as_ipv4() -> None:
    r = zone({"example.org": "v=spf1 ip4:192.0.2.1 -all"})
    result = await verify(r, "::ffff:192.0.2.1", "a@example.org", "h")
    assert result.status is Status.PASS
    assert result.ip == "192.0.2.1"


async def test_bad_ip_is_permerror_not_an_exception() -> None:
    result = await verify(zone({"example.org": "v=spf1 -all"}), "300.1.2.3", "a@example.org",
                          "h")
    assert result.status is Status.PERMERROR
    assert "not an IP address" in result.problem


# --- records and errors (§4.4-§4.7) ---------------------------------------------------

async def test_no_record_and_nxdomain_are_none() -> None:
    r = zone({"example.org": "some other text"})
    assert (await verify(r, IP, "a@example.org", "h")).status is Status.NONE
    assert (await verify(r, IP, "a@nx.example.org", "h")).status is Status.NONE


async def test_multiple_records_are_permerror() -> None:
    r = zone({"example.org": "v=spf1 -all"})
    r.add("TXT", "example.org", "v=spf1 +all")
    result = await verify(r, IP, "a@example.org", "h")
    assert result.status is Status.PERMERROR
    assert "2 SPF records" in result.problem


async def test_dns_failure_is_temperror() -> None:
    r = MockResolver()
    r.fail("TXT", "example.org", "servfail")
    result = await verify(r, IP, "a@example.org", "h")
    assert result.status is Status.TEMPERROR
    assert "SERVFAIL" in result.problem
    assert result.authentic is False


async def test_syntax_error_after_a_match_is_still_permerror() -> None:
    # RFC 7208 §4.6: syntax errors anywhere in the record give permerror before evaluation.
    r = zone({"example.org": "v=spf1 +all a:%{x}.example.org"})
    result = await verify(r, IP, "a@example.org", "h")
    assert result.status is Status.PERMERROR
    assert "macro" in result.problem


async def test_default_result_is_neutral() -> None:
    r = zone({"example.org": "v=spf1 ip4:198.51.100.1"})
    result = await verify(r, IP, "a@example.org", "h")
    assert (result.status, result.mechanism) == (Status.NEUTRAL, "default")


# --- mechanisms (§5) ------------------------------------------------------------------

async def test_a_and_mx_with_cidr() -> None:
    r = zone({"example.org": "v=spf1 a:web.example.org/24 mx//64 -all"})
    r.add("A", "web.example.org", "192.0.2.200")
    r.add("MX", "example.org", "10 mx.example.org")
    r.add("AAAA", "mx.example.org", "2001:db8::1")
    assert (await verify(r, IP, "a@example.org", "h")).mechanism == "a:web.example.org/24"
    v6 = await verify(r, "2001:db8::ffff", "a@example.org", "h")
    assert (v6.status, v6.mechanism) == (Status.PASS, "mx//64")
    other = await verify(r, "2001:db8:1::1", "a@example.org", "h")
    assert other.status is Status.FAIL


async def test_mx_has_no_implicit_mx() -> None:
    # RFC 7208 §5.4: no A lookup of the target when it has no MX records.
    r = zone({"example.org": "v=spf1 mx -all"})
    r.add("A", "example.org", IP)
    assert (await verify(r, IP, "a@example.org", "h")).status is Status.FAIL


async def test_exists_uses_a_even_for_ipv6() -> None:
    r = zone({"example.org": "v=spf1 exists:%{ir}.%{v}.ok.example.org -all"})
    nibbles = ".".join(reversed("20010db8" + "0" * 23 + "1"))
    r.add("A", f"{nibbles}.ip6.ok.example.org", "127.0.0.2")
    assert (await verify(r, "2001:db8::1", "a@example.org", "h")).status is Status.PASS
    assert (RRType.A, f"{nibbles}.ip6.ok.example.org") in r.queries


async def test_ptr_validates_names() -> None:
    r = zone({"example.org": "v=spf1 ptr -all", "other.example": "v=spf1 ptr:example.org -all"})
    r.add("PTR", "1.2.0.192.in-addr.arpa", "forged.example.org", "mail.example.org")
    r.add("A", "mail.example.org", IP)  # forged.example.org has no address: not validated
    assert (await verify(r, IP, "a@example.org", "h")).status is Status.PASS
    assert (await verify(r, IP, "a@other.example", "h")).status is Status.PASS
    r2 = zone({"example.org": "v=spf1 ptr -all"})
    r2.add("PTR", "1.2.0.192.in-addr.arpa", "mail.example.org")
    r2.add("A", "mail.example.org", "192.0.2.99")  # the name does not point back
    assert (await verify(r2, IP, "a@example.org", "h")).status is Status.FAIL


async def test_ptr_dns_error_is_no_match() -> None:
    # RFC 7208 §5.5: "If a DNS error occurs while doing the PTR RR lookup, then this
    # mechanism fails to match."
    r = zone({"example.org": "v=spf1 ptr ?all"})
    r.fail("PTR", "1.2.0.192.in-addr.arpa")
    assert (await verify(r, IP, "a@example.org", "h")).status is Status.NEUTRAL


# --- include and redirect (§5.2, §6.1) -------------------------------------------------

@pytest.mark.parametrize(("included", "expected"), [
    ("v=spf1 +all", Status.PASS), ("v=spf1 -all", Status.SOFTFAIL),
    ("v=spf1 ~all", Status.SOFTFAIL), ("v=spf1 ?all", Status.SOFTFAIL),
    ("v=spf1 include:none.example", Status.PERMERROR), ("v=spf1 bogus", Status.PERMERROR),
    (None, Status.PERMERROR),  # no record: "none" → permerror (§5.2 table)
])
async def test_include_result_table(included: str | None, expected: Status) -> None:
    r = zone({"example.org": "v=spf1 include:inc.example ~all"})
    if included is not None:
        r.add("TXT", "inc.example", included)
    assert (await verify(r, IP, "a@example.org", "h")).status is expected


async def test_include_temperror_propagates() -> None:
    r = zone({"example.org": "v=spf1 include:inc.example +all"})
    r.fail("TXT", "inc.example", "timeout")
    result = await verify(r, IP, "a@example.org", "h")
    assert result.status is Status.TEMPERROR
    assert "inc.example" in result.problem


async def test_redirect_and_its_exp() -> None:
    r = zone({
        "example.org": "v=spf1 ip4:198.51.100.1 redirect=_spf.example.net exp=a.example.org",
        "_spf.example.net": "v=spf1 -all exp=b.example.net",
    })
    r.add("TXT", "a.example.org", "from the original")
    r.add("TXT", "b.example.net", "from %{d} for %{o}")
    result = await verify(r, IP, "a@example.org", "h")
    assert result.status is Status.FAIL
    # RFC 7208 §6.2: the redirect target's exp is used, with <domain> the target.
    assert result.explanation == "from _spf.example.net for example.org"


async def test_redirect_to_nothing_is_permerror() -> None:
    r = zone({"example.org": "v=spf1 redirect=nothing.example"})
    result = await verify(r, IP, "a@example.org", "h")
    assert result.status is Status.PERMERROR


async def test_include_ignores_included_exp() -> None:
    r = zone({"example.org": "v=spf1 include:inc.example -all",
              "inc.example": "v=spf1 -all exp=e.inc.example"})
    r.add("TXT", "e.inc.example", "not this")
    result = await verify(r, IP, "a@example.org", "h")
    assert (result.status, result.explanation) == (Status.FAIL, "")


@pytest.mark.parametrize("setup", ["servfail", "nxdomain", "two", "syntax", "nonascii"])
async def test_exp_failures_are_ignored(setup: str) -> None:
    r = zone({"example.org": "v=spf1 -all exp=e.example.org"})
    match setup:
        case "servfail":
            r.fail("TXT", "e.example.org")
        case "two":
            r.add("TXT", "e.example.org", "one", "two")
        case "syntax":
            r.add("TXT", "e.example.org", "100% wrong")
        case "nonascii":
            r.add("TXT", "e.example.org", "\ufeffExplanation")
    result = await verify(r, IP, "a@example.org", "h")
    assert (result.status, result.explanation) == (Status.FAIL, "")


async def test_exp_only_letters_in_explanation() -> None:
    r = zone({"example.org": "v=spf1 -all exp=e.example.org"})
    r.add("TXT", "e.example.org", "%{c} rejected by %{r} at %{t}")
    result = await verify(r, "2001:db8::5", "a@example.org", "h", receiver="mx.example.com",
                          clock=lambda: 1700000000.5)
    assert result.explanation == "2001:db8::5 rejected by mx.example.com at 1700000000"


# --- limits (§4.6.4) ------------------------------------------------------------------

def include_chain(count: int) -> MockResolver:
    """example.org includes inc1, inc1 includes inc2, ... inc{count} has +all."""
    r = zone({"example.org": "v=spf1 include:inc1.example -all"})
    for i in range(1, count):
        r.add("TXT", f"inc{i}.example", f"v=spf1 include:inc{i + 1}.example -all")
    r.add("TXT", f"inc{count}.example", "v=spf1 +all")
    return r


async def test_ten_dns_terms_pass_eleven_are_permerror() -> None:
    at_limit = await verify(include_chain(10), IP, "a@example.org", "h")
    assert (at_limit.status, at_limit.lookups) == (Status.PASS, 10)
    over = await verify(include_chain(11), IP, "a@example.org", "h")
    assert over.status is Status.PERMERROR
    assert "more than 10 DNS-querying" in over.problem


async def test_flat_terms_limit_and_no_lookup_after_it() -> None:
    terms = " ".join(f"a:h{i}.example" for i in range(11))
    r = zone({"example.org": f"v=spf1 {terms} -all"})
    for i in range(11):
        r.add("A", f"h{i}.example", "198.51.100.1")
    result = await verify(r, IP, "a@example.org", "h")
    assert result.status is Status.PERMERROR
    assert (RRType.A, "h10.example") not in r.queries  # the 11th term is not looked up


async def test_include_loop_is_permerror_quickly() -> None:
    r = zone({"example.org": "v=spf1 include:example.org -all"})
    result = await verify(r, IP, "a@example.org", "h")
    assert result.status is Status.PERMERROR
    assert len(r.queries) <= 11


async def test_void_lookup_limit() -> None:
    two = zone({"example.org": "v=spf1 a:nx1.example mx:nx2.example ?all"})
    assert (await verify(two, IP, "a@example.org", "h")).status is Status.NEUTRAL
    three = zone({"example.org": "v=spf1 a:nx1.example mx:nx2.example exists:nx3.example ?all"})
    result = await verify(three, IP, "a@example.org", "h")
    assert result.status is Status.PERMERROR
    assert "void" in result.problem
    assert result.void_lookups == 3


async def test_mx_with_more_than_ten_names_is_permerror() -> None:
    def with_mx(count: int) -> MockResolver:
        r = zone({"example.org": "v=spf1 mx -all"})
        for i in range(count):
            r.add("MX", "example.org", MX(i, f"mx{i}.example.org"))
            r.add("A", f"mx{i}.example.org", IP if i == count - 1 else "198.51.100.1")
        return r

    assert (await verify(with_mx(10), IP, "a@example.org", "h")).status is Status.PASS
    result = await verify(with_mx(11), IP, "a@example.org", "h")
    assert result.status is Status.PERMERROR
    assert "11 MX names" in result.problem


async def test_ptr_looks_at_ten_names_only() -> None:
    r = zone({"example.org": "v=spf1 ptr -all"})
    names = [f"n{i}.example.org" for i in range(11)]
    r.add("PTR", "1.2.0.192.in-addr.arpa", *names)
    r.add("A", "n10.example.org", IP)  # only the 11th name would validate
    assert (await verify(r, IP, "a@example.org", "h")).status is Status.FAIL
    assert (RRType.A, "n10.example.org") not in r.queries


# --- DNSSEC (authentic) -------------------------------------------------------------

async def test_authentic_when_every_answer_is() -> None:
    r = zone({"example.org": "v=spf1 include:inc.example -all",
              "inc.example": "v=spf1 a:h.inc.example -all"})
    r.add("A", "h.inc.example", IP, authentic=True)
    result = await verify(r, IP, "a@example.org", "h")
    assert (result.status, result.authentic) == (Status.PASS, True)


async def test_one_non_authentic_answer_in_an_include_taints_the_result() -> None:
    r = zone({"example.org": "v=spf1 include:inc.example -all",
              "inc.example": "v=spf1 a:h.inc.example -all"})
    r.add("A", "h.inc.example", IP, authentic=False)
    result = await verify(r, IP, "a@example.org", "h")
    assert (result.status, result.authentic) == (Status.PASS, False)


async def test_non_authentic_nomatch_in_include_taints_too() -> None:
    r = zone({"example.org": "v=spf1 include:inc.example ip4:192.0.2.0/24 -all",
              "inc.example": "v=spf1 -all"})
    r.set_authentic("inc.example", False)
    result = await verify(r, IP, "a@example.org", "h")
    assert (result.status, result.authentic) == (Status.PASS, False)


# --- robustness -----------------------------------------------------------------------

async def test_check_host_directly() -> None:
    r = zone({"example.org": "v=spf1 exists:%{l}.%{o}._spf.%{d} -all"})
    r.add("A", "bob.example.org._spf.example.org", "127.0.0.2")
    result = await check_host(r, IP, "example.org", "bob@example.org", helo="h.example")
    assert result.status is Status.PASS


async def test_long_expansions_are_truncated_from_the_left() -> None:
    # RFC 7208 §7.3: a name over 253 characters loses labels on the left.
    local = ".".join(["abcdefghij"] * 30)
    r = zone({"example.org": "v=spf1 exists:%{l}.x.example.org -all"})
    result = await verify(r, IP, f"{local}@example.org", "h")
    assert result.status is Status.FAIL
    queried = [name for kind, name in r.queries if kind is RRType.A]
    assert len(queried) == 1 and len(queried[0]) <= 253
    assert queried[0].endswith(".abcdefghij.x.example.org")


_TERMS = st.sampled_from([
    "a", "mx", "ptr", "-all", "~all", "include:x.example", "include:%{d}", "exists:%{l}.e.x",
    "a:%{ir}.%{v}.x.example/24", "ip4:192.0.2.0/24", "ip6:2001:db8::/32", "redirect=x.example",
    "exp=%{d}", "foo=bar", "%{", "a/40", "mx:%{p}.example", "ptr:%{h}", "?include:y.example",
    "v=spf1", "\u00e9", "a:..", "include:" + "z" * 70 + ".example", "exists:%{S}.%{L}.e.x",
])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_TERMS, max_size=8), st.lists(_TERMS, max_size=6),
       st.sampled_from([IP, "2001:db8::7", "::ffff:192.0.2.9", "nonsense", ""]),
       st.sampled_from(["a@x.example", "", "@x.example", "x.example", "a@", "\"a@b\"@x.example",
                        "a@x.example.", "a b@x.example", "<a@x.example>", "a@\u00e9.example"]))
async def test_verify_never_raises(top: list[str], inner: list[str], ip: str,
                                   mailfrom: str) -> None:
    r = MockResolver()
    r.add("TXT", "x.example", "v=spf1 " + " ".join(top))
    r.add("TXT", "y.example", "v=spf1 " + " ".join(inner))
    r.add("A", "x.example", "192.0.2.1")
    r.add("MX", "x.example", "10 x.example")
    r.add("PTR", "1.2.0.192.in-addr.arpa", "x.example")
    result = await verify(r, ip, mailfrom, "x.example")
    assert result.status in set(Status)
    if result.status in (Status.PERMERROR, Status.TEMPERROR):
        assert result.problem
    assert result.received_spf()


async def test_internationalized_domains_are_checked_in_a_label_form() -> None:
    r = zone({"xn--bcher-kva.example": "v=spf1 -all exp=e.xn--bcher-kva.example"})
    r.add("TXT", "e.xn--bcher-kva.example", "%{d} %{o}")
    result = await verify(r, IP, "jörg@bücher.example", "h")
    assert (result.status, result.domain) == (Status.FAIL, "xn--bcher-kva.example")
    assert result.explanation == "xn--bcher-kva.example xn--bcher-kva.example"
    assert result.sender == "jörg@xn--bcher-kva.example"


async def test_slow_evaluation_is_temperror() -> None:
    # RFC 7208 §4.6.4: past the time limit "the result of authorization SHOULD be
    # "temperror"".
    r = zone({"example.org": "v=spf1 a:slow1.example a:slow2.example -all"})
    r.fail("A", "slow1.example", "timeout")  # the mock takes 10 ms for a timeout
    result = await verify(r, IP, "a@example.org", "h", timeout=0.001)
    assert result.status is Status.TEMPERROR
    assert "longer than 0.001 seconds" in result.problem


async def test_ip_of_the_wrong_type_is_permerror() -> None:
    result = await check_host(MockResolver(), 12345, "example.org", "a@example.org")  # type: ignore[arg-type]
    assert result.status is Status.PERMERROR
