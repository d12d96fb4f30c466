"""DMARC discovery (RFC 7489 §6.6.3), alignment (§3.1) and policy (§6.6.2, §6.6.4)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import pytest

from kittiwake.dmarc import (
    Disposition,
    LookupStatus,
    OverrideReason,
    Status,
    aligned,
    lookup,
    verify,
)
from kittiwake.dns import MockResolver


@dataclass
class Auth:
    """Stands in for an SPF or DKIM result: .status and .domain."""

    status: str
    domain: str


class OtherStatus(enum.Enum):  # a non-str enum from some other module
    PASS = "pass"
    TEMPERROR = "temperror"


def never() -> float:
    raise AssertionError("rand must not be called")


def resolver(records: dict[str, str | list[str]], authentic: bool = False) -> MockResolver:
    r = MockResolver()
    for name, values in records.items():
        for v in [values] if isinstance(values, str) else values:
            r.add("TXT", name, v, authentic=authentic)
    return r


# --- discovery -------------------------------------------------------------------


async def test_record_at_from_domain() -> None:
    r = resolver({"_dmarc.example.com": ["v=spf1 -all", "v=DMARC1; p=reject"]})
    d = await lookup(r, "Example.COM.")
    assert d.status is LookupStatus.FOUND
    assert (d.domain, d.policy_domain, d.org_domain) == ("example.com", "example.com",
                                                         "example.com")
    assert d.policy is not None and d.policy.policy is Disposition.REJECT
    assert d.record == "v=DMARC1; p=reject"
    assert len(r.queries) == 1


async def test_fallback_to_organizational_domain() -> None:
    r = resolver({"_dmarc.example.co.uk": "v=DMARC1; p=quarantine; sp=reject",
                  "_dmarc.mail.example.co.uk": "some other text"})
    d = await lookup(r, "a.mail.example.co.uk")
    assert d.status is LookupStatus.FOUND
    assert d.policy_domain == "example.co.uk"
    assert d.subdomain
    assert [name for _t, name in r.queries] == ["_dmarc.a.mail.example.co.uk",
                                                "_dmarc.example.co.uk"]


async def test_no_fallback_when_from_domain_has_a_record() -> None:
    # An invalid v=DMARC1 record at the From domain still stops discovery there.
    r = resolver({"_dmarc.sub.example.com": "v=DMARC1; p=bogus",
                  "_dmarc.example.com": "v=DMARC1; p=reject"})
    d = await lookup(r, "sub.example.com")
    assert d.status is LookupStatus.PERMERROR
    assert d.policy_domain == "sub.example.com"
    assert d.policy is None


async def test_no_record() -> None:
    d = await lookup(MockResolver(), "www.example.org")
    assert d.status is LookupStatus.NONE
    assert d.queried == ("_dmarc.www.example.org", "_dmarc.example.org")


async def test_several_records_mean_none() -> None:
    r = resolver({"_dmarc.example.com": ["v=DMARC1; p=reject", "v=DMARC1; p=none"]})
    d = await lookup(r, "example.com")
    assert d.status is LookupStatus.NONE
    assert "2 DMARC records" in d.reason
    r2 = resolver({"_dmarc.example.com": ["v=DMARC1; p=reject", "v=DMARC1; p=none"],
                   "_dmarc.x.example.com": "nothing"})
    assert (await lookup(r2, "x.example.com")).status is LookupStatus.NONE


async def test_temperror_at_either_step() -> None:
    r = MockResolver()
    r.fail("TXT", "_dmarc.example.com", "servfail")
    assert (await lookup(r, "example.com")).status is LookupStatus.TEMPERROR
    assert (await lookup(r, "mail.example.com")).status is LookupStatus.TEMPERROR
    r2 = MockResolver()
    r2.fail("TXT", "_dmarc.mail.example.com", "timeout")
    r2.add("TXT", "_dmarc.example.com", "v=DMARC1; p=reject")
    d = await lookup(r2, "mail.example.com")
    assert d.status is LookupStatus.TEMPERROR
    assert "timeout" in d.reason


async def test_authentic_propagation() -> None:
    r = resolver({"_dmarc.example.com": "v=DMARC1; p=reject"}, authentic=True)
    assert (await lookup(r, "example.com")).authentic
    # The fallback also rests on the From domain's (non-authentic) non-existence.
    assert not (await lookup(r, "mail.example.com")).authentic
    r.all_authentic = True
    assert (await lookup(r, "mail.example.com")).authentic
    plain = resolver({"_dmarc.example.com": "v=DMARC1; p=reject"})
    assert not (await lookup(plain, "example.com")).authentic


async def test_bad_and_long_domains() -> None:
    r = MockResolver()
    assert (await lookup(r, "a..b")).status is LookupStatus.PERMERROR
    # _dmarc. prefix makes the name too long: no record can exist there.
    long = ".".join(["a" * 60] * 4)[:240] + ".example.com"
    r.add("TXT", "_dmarc.example.com", "v=DMARC1; p=reject")
    d = await lookup(r, long)
    assert d.status is LookupStatus.FOUND and d.policy_domain == "example.com"


# --- alignment ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "author", "strict", "relaxed"),
    [
        ("example.com", "example.com", True, True),
        ("EXAMPLE.com.", "example.COM", True, True),
        ("example.com", "news.example.com", False, True),  # RFC 7489 §3.1.1 example
        ("cbg.bounces.example.com", "example.com", False, True),  # §3.1.2 example
        ("a.example.com", "b.example.com", False, True),
        ("com", "example.com", False, False),  # §3.1.1: d=com never aligns
        ("example.net", "example.com", False, False),
        ("example.co.uk", "other.co.uk", False, False),
        ("alice.github.io", "bob.github.io", False, False),  # private PSL section
        ("xn--85x722f.xn--fiqs8s", "www.食狮.中国", False, True),
        ("", "example.com", False, False),
        ("a..b", "example.com", False, False),
    ],
)
def test_alignment_matrix(auth: str, author: str, strict: bool, relaxed: bool) -> None:
    assert aligned(auth, author, "s") is strict
    assert aligned(auth, author, "r") is relaxed


# --- evaluation -------------------------------------------------------------------

POLICY = {"_dmarc.example.com": "v=DMARC1; p=reject; sp=quarantine"}


@pytest.mark.parametrize(
    ("record", "spf", "dkim", "status", "spf_ok", "dkim_ok"),
    [
        # relaxed (default): subdomain identifiers align
        ("v=DMARC1; p=reject", Auth("pass", "bounce.example.com"), [], Status.PASS, True, False),
        ("v=DMARC1; p=reject", None, [Auth("pass", "example.com")], Status.PASS, False, True),
        ("v=DMARC1; p=reject", Auth("pass", "example.com"), [Auth("pass", "s.example.com")],
         Status.PASS, True, True),
        # strict
        ("v=DMARC1; p=reject; aspf=s", Auth("pass", "bounce.example.com"), [], Status.FAIL,
         False, False),
        ("v=DMARC1; p=reject; aspf=s", Auth("pass", "example.com"), [], Status.PASS, True, False),
        ("v=DMARC1; p=reject; adkim=s", None, [Auth("pass", "sub.example.com")], Status.FAIL,
         False, False),
        ("v=DMARC1; p=reject; adkim=s; aspf=r", Auth("pass", "sub.example.com"),
         [Auth("pass", "sub.example.com")], Status.PASS, True, False),
        # passing but unaligned, aligned but not passing
        ("v=DMARC1; p=reject", Auth("pass", "example.net"), [Auth("pass", "example.org")],
         Status.FAIL, False, False),
        ("v=DMARC1; p=reject", Auth("softfail", "example.com"), [Auth("fail", "example.com")],
         Status.FAIL, False, False),
        ("v=DMARC1; p=reject", Auth("neutral", "example.com"),
         [Auth("fail", "example.com"), Auth("pass", "example.net"), Auth("pass", "example.com")],
         Status.PASS, False, True),
    ],
)
async def test_alignment_outcomes(record: str, spf: Auth | None, dkim: list[Auth],
                                  status: Status, spf_ok: bool, dkim_ok: bool) -> None:
    r = resolver({"_dmarc.example.com": record})
    res = await verify(r, "example.com", spf, dkim, rand=never)
    assert res.status is status
    assert (res.spf_aligned, res.dkim_aligned) == (spf_ok, dkim_ok)
    assert res.reject is (status is Status.FAIL)
    assert not res.quarantine


async def test_fail_reports_evidence() -> None:
    r = resolver(POLICY, authentic=True)
    res = await verify(r, "example.com", Auth("fail", "example.com"), [], rand=never)
    assert res.status is Status.FAIL and res.reject and not res.quarantine
    assert res.policy is Disposition.REJECT
    assert (res.domain, res.policy_domain) == ("example.com", "example.com")
    assert res.record_text == POLICY["_dmarc.example.com"]
    assert res.record is not None and res.record.subdomain_policy is Disposition.QUARANTINE
    assert res.authentic
    assert res.to_json()["status"] == "fail"


async def test_sp_applies_to_subdomains_only() -> None:
    r = resolver(POLICY)
    sub = await verify(r, "mail.example.com", None, [], rand=never)
    assert (sub.status, sub.policy, sub.policy_domain) == (Status.FAIL, Disposition.QUARANTINE,
                                                           "example.com")
    assert sub.quarantine and not sub.reject
    top = await verify(r, "example.com", None, [], rand=never)
    assert top.policy is Disposition.REJECT and top.reject


async def test_sp_ignored_for_record_at_the_subdomain_itself() -> None:
    r = resolver({**POLICY, "_dmarc.mail.example.com": "v=DMARC1; p=none; sp=reject"})
    res = await verify(r, "mail.example.com", None, [], rand=never)
    assert res.policy is Disposition.NONE
    assert res.status is Status.FAIL and not res.reject and not res.quarantine


@pytest.mark.parametrize(
    ("p", "pct", "roll", "reject", "quarantine", "sampled_out"),
    [
        ("reject", 50, 0.49, True, False, False),
        ("reject", 50, 0.50, False, True, True),  # §6.6.4: spared reject -> quarantine
        ("quarantine", 50, 0.10, False, True, False),
        ("quarantine", 50, 0.90, False, False, True),
        ("reject", 0, 0.0, False, True, True),
        ("reject", 1, 0.0, True, False, False),
        ("reject", 1, 0.011, False, True, True),
    ],
)
async def test_pct_sampling(p: str, pct: int, roll: float, reject: bool, quarantine: bool,
                            sampled_out: bool) -> None:
    r = resolver({"_dmarc.example.com": f"v=DMARC1; p={p}; pct={pct}"})
    calls: list[int] = []

    def rand() -> float:
        calls.append(1)
        return roll

    res = await verify(r, "example.com", None, [], rand=rand)
    assert res.status is Status.FAIL
    assert (res.reject, res.quarantine) == (reject, quarantine)
    assert (res.override is OverrideReason.SAMPLED_OUT) is sampled_out
    assert calls == [1]


async def test_pct_not_consulted_for_pass_none_or_full() -> None:
    r = resolver({"_dmarc.example.com": "v=DMARC1; p=reject; pct=10",
                  "_dmarc.example.net": "v=DMARC1; p=none; pct=10",
                  "_dmarc.example.org": "v=DMARC1; p=reject"})
    ok = await verify(r, "example.com", Auth("pass", "example.com"), [], rand=never)
    assert ok.status is Status.PASS and not ok.reject
    none = await verify(r, "example.net", None, [], rand=never)
    assert none.status is Status.FAIL and not none.reject and not none.quarantine
    full = await verify(r, "example.org", None, [], rand=never)
    assert full.reject


async def test_temperror_of_aligned_check_blocks_policy() -> None:
    r = resolver(POLICY)
    res = await verify(r, "example.com", Auth("temperror", "example.com"), [], rand=never)
    assert res.status is Status.TEMPERROR and not res.reject
    res = await verify(r, "example.com", None, [Auth("temperror", "example.com")], rand=never)
    assert res.status is Status.TEMPERROR
    # A temperror for an unaligned identifier could not have passed DMARC anyway.
    res = await verify(r, "example.com", Auth("temperror", "example.net"),
                       [Auth("temperror", "example.org")], rand=never)
    assert res.status is Status.FAIL and res.reject
    # A pass wins over another check's temperror.
    res = await verify(r, "example.com", Auth("temperror", "example.com"),
                       [Auth("pass", "example.com")], rand=never)
    assert res.status is Status.PASS


async def test_status_values_from_other_enums() -> None:
    r = resolver(POLICY)

    @dataclass
    class E:
        status: OtherStatus
        domain: str

    res = await verify(r, "example.com", E(OtherStatus.PASS, "example.com"), [], rand=never)
    assert res.status is Status.PASS
    res = await verify(r, "example.com", None, [E(OtherStatus.TEMPERROR, "example.com")],
                       rand=never)
    assert res.status is Status.TEMPERROR


async def test_none_temperror_permerror_results() -> None:
    r = MockResolver()
    r.add("TXT", "_dmarc.bad.example", "v=DMARC1; p=nope")
    r.fail("TXT", "_dmarc.down.example")
    spf = Auth("fail", "x.example")
    none = await verify(r, "nothing.example", spf, [], rand=never)
    assert (none.status, none.reject, none.policy) == (Status.NONE, False, None)
    temp = await verify(r, "down.example", spf, [], rand=never)
    assert (temp.status, temp.reject, temp.authentic) == (Status.TEMPERROR, False, False)
    perm = await verify(r, "bad.example", spf, [], rand=never)
    assert (perm.status, perm.reject) == (Status.PERMERROR, False)
    assert perm.record_text == "v=DMARC1; p=nope"
    bad = await verify(r, "", spf, [], rand=never)
    assert bad.status is Status.PERMERROR


async def test_substituted_record_is_monitoring_only() -> None:
    r = resolver({"_dmarc.example.com": "v=DMARC1; p=bogus; rua=mailto:r@example.com"})
    res = await verify(r, "example.com", None, [], rand=never)
    assert res.status is Status.FAIL and res.policy is Disposition.NONE
    assert not res.reject and not res.quarantine


async def test_idna_from_domain() -> None:
    r = resolver({"_dmarc.xn--85x722f.xn--fiqs8s": "v=DMARC1; p=reject"})
    res = await verify(r, "WWW.食狮.中国", None, [Auth("pass", "xn--85x722f.xn--fiqs8s")],
                       rand=never)
    assert res.status is Status.PASS
    assert res.domain == "www.xn--85x722f.xn--fiqs8s"
    assert res.dkim_domain == "xn--85x722f.xn--fiqs8s"


def test_dkim_pass_with_testing_key_does_not_align() -> None:
    """RFC 6376 §3.6.1: a t=y key's signature counts as no signature for DMARC."""
    from dataclasses import dataclass

    from kittiwake.dmarc import evaluate
    from kittiwake.dmarc.discovery import Discovery, LookupStatus
    from kittiwake.dmarc.record import parse_record

    @dataclass
    class Sig:
        status: str
        domain: str
        testing: bool

    found = Discovery(status=LookupStatus.FOUND, domain="example.org",
                      org_domain="example.org", policy_domain="example.org",
                      record="v=DMARC1; p=reject",
                      policy=parse_record("v=DMARC1; p=reject"), authentic=True)
    passing = evaluate(found, None, [Sig("pass", "example.org", False)])
    testing = evaluate(found, None, [Sig("pass", "example.org", True)])
    assert passing.dkim_aligned and str(passing.status) == "pass"
    assert not testing.dkim_aligned and str(testing.status) == "fail"


async def test_reportable_only_with_report_uris_and_a_pass_or_fail() -> None:
    """RFC 7489 §7.2: only a record with rua= asks for aggregate reports; an SMTP worker
    tells the server nothing about the others."""
    r = resolver({"_dmarc.example.com": "v=DMARC1; p=reject; rua=mailto:d@example.com",
                  "_dmarc.quiet.example": "v=DMARC1; p=reject"})
    passing = await verify(r, "example.com", Auth("pass", "example.com"), [], rand=never)
    failing = await verify(r, "example.com", Auth("fail", "example.com"), [], rand=never)
    quiet = await verify(r, "quiet.example", Auth("pass", "quiet.example"), [], rand=never)
    none = await verify(r, "nothing.example", Auth("pass", "nothing.example"), [], rand=never)
    assert (passing.status, failing.status) == (Status.PASS, Status.FAIL)
    assert passing.reportable and failing.reportable
    assert quiet.status is Status.PASS and not quiet.reportable
    assert not none.reportable
