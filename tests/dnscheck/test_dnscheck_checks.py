"""Each dnscheck check against a mock DNS: OK when the records are as published, and
the right level and fix for each way they can be wrong."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import replace

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kittiwake.dkim import dns_record, generate_key, load_private_key
from kittiwake.dns import MockResolver, RRType
from kittiwake.dnscheck import Level, Probes, ServedCertificate, render, run_checks
from kittiwake.dnscheck import checks as c
from kittiwake.mtasts import FailureType, FetchResult, parse_policy
from kittiwake.setup import records_for
from kittiwake.setup.facts import MTASTS, DKIMKey, DomainFacts, HostKey
from kittiwake.setup.hostkeys import tlsa_3_1_1

D, HOST, IP = "example.org", "mail.example.org", "198.51.100.7"
ED = dns_record(load_private_key(generate_key("ed25519")))
HOST_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())


def certificate(key: ec.EllipticCurvePrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def facts(**changes: object) -> DomainFacts:
    base = DomainFacts(
        domain=D, hostname=HOST, ips=(IP,), listens_on_any=False, smtp_port=25,
        services={"smtp": 25, "submission": 587, "submissions": 465, "imap": 143,
                  "imaps": 993},
        dkim=(DKIMKey("ed2026", ED, True),), dmarc_rua=f"dmarc-reports@{D}",
        tlsrpt_rua=f"tls-reports@{D}",
        mta_sts=MTASTS("20260101", "enforce", 86400, (HOST,)),
        host_keys=(HostKey("hostkeys/ecdsa-p256.pem", "ECDSA secp256r1",
                           tlsa_3_1_1(HOST_KEY)),),
        caa_issuers=("letsencrypt.org",), acme_name="letsencrypt")
    return replace(base, **changes)  # type: ignore[arg-type]


def published(f: DomainFacts, skip: set[tuple[str, str]] = frozenset()) -> MockResolver:
    """A DNS that holds exactly the records of ``config dnsrecords``, all DNSSEC-signed."""
    r = MockResolver()
    r.all_authentic = True
    for record in records_for(f):
        if (record.name, record.rtype.value) in skip:
            continue
        if record.rtype is RRType.CNAME:
            r.cname(record.name, record.value)
        else:
            r.add(record.rtype, record.name, record.value)
    return r


class FakeServer:
    """The probes: which certificate port 25 serves and which policy HTTPS serves."""

    def __init__(self, key: ec.EllipticCurvePrivateKey | None = HOST_KEY,
                 policy: str | None = f"version: STSv1\nmode: enforce\nmx: {HOST}\n"
                                      "max_age: 86400\n") -> None:
        self.leaf = certificate(key) if key is not None else None
        self.policy = policy
        self.asked: list[tuple[str, str, int]] = []

    async def smtp(self, hostname: str, ip: str, port: int) -> ServedCertificate:
        self.asked.append((hostname, ip, port))
        return ServedCertificate(ip, port, self.leaf, "" if self.leaf else "connection refused")

    async def fetch(self, domain: str) -> FetchResult:
        url = f"https://mta-sts.{domain}/.well-known/mta-sts.txt"
        if self.policy is None:
            return FetchResult(domain, url, None, FailureType.STS_POLICY_FETCH_ERROR,
                               "connection refused")
        return FetchResult(domain, url, parse_policy(self.policy))

    @property
    def probes(self) -> Probes:
        return Probes(self.smtp, self.fetch)


async def run(check, f: DomainFacts, resolver: MockResolver,  # type: ignore[no-untyped-def]
              server: FakeServer | None = None):
    env = c.Environment(f, resolver, (server or FakeServer()).probes)
    return await check(env)


def levels(results) -> list[Level]:  # type: ignore[no-untyped-def]
    return [r.level for r in results]


async def test_everything_published_is_ok_on_every_line() -> None:
    f = facts()
    server = FakeServer()
    results = await run_checks(f, published(f), server.probes)
    assert {r.check for r in results} == {name for name, _ in c.CHECKS}
    assert all(r.level is Level.OK for r in results), render(results)
    assert server.asked == [(HOST, IP, 25)]


async def test_mx_missing_other_host_and_null() -> None:
    f = facts()
    missing = await run(c.check_mx, f, published(f, {(D, "MX")}))
    assert levels(missing) == [Level.ERROR] and "no MX record" in missing[0].message
    assert missing[0].fix == f"publish {D} MX 10 {HOST}."
    other = published(f, {(D, "MX")})
    other.add("MX", D, "10 mx.elsewhere.example.")
    wrong = await run(c.check_mx, f, other)
    assert levels(wrong) == [Level.ERROR] and "not mail.example.org" in wrong[0].message
    null = published(f, {(D, "MX")})
    null.add("MX", D, "0 .")
    assert "null MX" in (await run(c.check_mx, f, null))[0].message
    backup = published(f)
    backup.add("MX", D, "20 backup.example.net.")
    assert levels(await run(c.check_mx, f, backup)) == [Level.WARN]


async def test_mx_lookup_failure_is_an_error_saying_try_again() -> None:
    f = facts()
    r = published(f)
    r.fail("MX", D)
    results = await run(c.check_mx, f, r)
    assert levels(results) == [Level.ERROR] and "try again" in results[0].message


async def test_spf_missing_not_authorising_open_ended_and_too_many_lookups() -> None:
    f = facts()
    assert "no valid SPF" in (await run(c.check_spf, f, published(f, {(D, "TXT")})))[0].message
    for record, expected in (
            ("v=spf1 ip4:192.0.2.1 -all", f"does not authorise {IP}"),
            (f"v=spf1 ip4:{IP} ?all", "does not end in -all or ~all"),
            (f"v=spf1 ip4:{IP} " + " ".join(f"a:h{i}.example.org" for i in range(11)) + " -all",
             "")):
        r = published(f, {(D, "TXT")})
        r.add("TXT", D, record)
        results = await run(c.check_spf, f, r)
        assert Level.ERROR in levels(results), render(results)
        assert expected in render(results)
    soft = published(f, {(D, "TXT")})
    soft.add("TXT", D, f"v=spf1 ip4:{IP} ~all")
    assert levels(await run(c.check_spf, f, soft)) == [Level.OK]


async def test_spf_counts_socks_addresses_and_the_helo_record() -> None:
    f = facts(socks=(("out.example.org", ("203.0.113.9",)),))
    r = published(facts(), {(HOST, "TXT")})  # SPF made without the proxy's address
    results = await run(c.check_spf, f, r)
    assert "does not authorise 203.0.113.9" in render(results)
    assert "HELO name mail.example.org has no SPF record" in render(results)


async def test_dkim_missing_and_other_key() -> None:
    f = facts()
    name = f"ed2026._domainkey.{D}"
    missing = await run(c.check_dkim, f, published(f, {(name, "TXT")}))
    assert levels(missing) == [Level.ERROR] and missing[0].fix.startswith(f"publish {name} TXT")
    r = published(f, {(name, "TXT")})
    r.add("TXT", name, dns_record(load_private_key(generate_key("ed25519"))))
    other = await run(c.check_dkim, f, r)
    assert levels(other) == [Level.ERROR] and "another key" in other[0].message


async def test_dmarc_missing_none_policy_and_other_rua() -> None:
    f = facts()
    name = f"_dmarc.{D}"
    assert levels(await run(c.check_dmarc, f, published(f, {(name, "TXT")}))) == [Level.ERROR]
    r = published(f, {(name, "TXT")})
    r.add("TXT", name, "v=DMARC1; p=none; rua=mailto:someone@example.net")
    results = await run(c.check_dmarc, f, r)
    assert levels(results) == [Level.WARN, Level.WARN]
    assert "p=none" in results[0].message and "not to dmarc-reports@" in results[1].message


async def test_mta_sts_record_missing_and_stale_id() -> None:
    f = facts()
    name = f"_mta-sts.{D}"
    assert levels(await run(c.check_mta_sts, f, published(f, {(name, "TXT")}))) == [Level.ERROR]
    r = published(f, {(name, "TXT")})
    r.add("TXT", name, "v=STSv1; id=19990101")
    stale = await run(c.check_mta_sts, f, r)
    assert levels(stale) == [Level.ERROR] and "id=19990101" in stale[0].message
    none = facts(mta_sts=None)
    assert levels(await run(c.check_mta_sts, none, published(none))) == [Level.WARN]


async def test_mta_sts_policy_unreachable_and_not_allowing_this_host() -> None:
    f = facts()
    down = await run(c.check_mta_sts_policy, f, published(f), FakeServer(policy=None))
    assert levels(down) == [Level.ERROR] and "cannot fetch" in down[0].message
    other = FakeServer(policy="version: STSv1\nmode: testing\nmx: mx.other.example\n"
                              "max_age: 600\n")
    results = await run(c.check_mta_sts_policy, f, published(f), other)
    assert levels(results) == [Level.ERROR, Level.ERROR, Level.WARN], render(results)


async def test_tlsrpt_missing_duplicate_and_elsewhere() -> None:
    f = facts()
    name = f"_smtp._tls.{D}"
    assert levels(await run(c.check_tlsrpt, f, published(f, {(name, "TXT")}))) == [Level.WARN]
    r = published(f)
    r.add("TXT", name, "v=TLSRPTv1; rua=mailto:x@example.net")
    assert levels(await run(c.check_tlsrpt, f, r)) == [Level.ERROR]
    bad = published(f, {(name, "TXT")})
    bad.add("TXT", name, "v=TLSRPTv1; rua=ftp://x")
    assert levels(await run(c.check_tlsrpt, f, bad)) == [Level.ERROR]
    elsewhere = published(f, {(name, "TXT")})
    elsewhere.add("TXT", name, "v=TLSRPTv1; rua=mailto:x@example.net")
    assert levels(await run(c.check_tlsrpt, f, elsewhere)) == [Level.WARN]


async def test_tlsa_missing_extra_and_unsigned() -> None:
    f = facts()
    name = f"_25._tcp.{HOST}"
    missing = await run(c.check_tlsa, f, published(f, {(name, "TLSA")}))
    assert levels(missing) == [Level.ERROR]
    assert missing[0].fix == f"publish {name} TLSA 3 1 1 {tlsa_3_1_1(HOST_KEY)}"
    extra = published(f)
    extra.add("TLSA", name, f"3 1 1 {tlsa_3_1_1(OTHER_KEY)}")
    assert levels(await run(c.check_tlsa, f, extra)) == [Level.OK, Level.WARN]
    unsigned = published(f)
    unsigned.all_authentic = False
    results = await run(c.check_tlsa, f, unsigned)
    assert Level.ERROR in levels(results) and "not DNSSEC-signed" in render(results)


async def test_served_certificate_must_match_tlsa_and_a_host_key() -> None:
    f = facts()
    wrong = await run(c.check_tlsa_served, f, published(f), FakeServer(key=OTHER_KEY))
    assert levels(wrong) == [Level.ERROR] and "matches no TLSA record" in wrong[0].message
    down = await run(c.check_tlsa_served, f, published(f), FakeServer(key=None))
    assert levels(down) == [Level.ERROR] and "connection refused" in down[0].message
    # A TLSA record for a key that is not a host key: DANE works today, not after renewal.
    r = published(f)
    r.add("TLSA", f"_25._tcp.{HOST}", f"3 1 1 {tlsa_3_1_1(OTHER_KEY)}")
    other = await run(c.check_tlsa_served, f, r, FakeServer(key=OTHER_KEY))
    assert levels(other) == [Level.WARN] and "next renewal" in other[0].message


async def test_caa_climbs_the_tree_and_checks_issuer_and_account() -> None:
    f = facts()
    none = published(f, {(D, "CAA")})
    assert set(levels(await run(c.check_caa, f, none))) == {Level.WARN}
    other = published(f, {(D, "CAA")})
    other.add("CAA", "org", '0 issue "other-ca.example"')  # found by climbing to the TLD
    results = await run(c.check_caa, f, other)
    assert set(levels(results)) == {Level.ERROR}
    assert "CAA at org lets other-ca.example issue" in results[0].message
    account = published(f, {(D, "CAA")})
    account.add("CAA", D, '0 issue "letsencrypt.org; accounturi=https://ca/acct/1"')
    mismatch = await run(c.check_caa, replace(f, acme_account_uri="https://ca/acct/2"), account)
    assert set(levels(mismatch)) == {Level.ERROR} and "acct/1" in mismatch[0].message
    match = await run(c.check_caa, replace(f, acme_account_uri="https://ca/acct/1"), account)
    assert set(levels(match)) == {Level.OK}
    # The closest set wins (RFC 8659 §3): a host's own CAA overrides the domain's, also
    # for mta-sts. and autoconfig., CNAMEs to the host (the CAA query follows them).
    closer = published(f)
    closer.add("CAA", HOST, '0 issue "other-ca.example"')
    results = await run(c.check_caa, f, closer)
    assert levels(results) == [Level.ERROR] * 3
    assert results[0].message.startswith(f"CAA at {HOST} lets other-ca.example issue")


async def test_dnssec_unsigned_zone_is_a_warning_per_name() -> None:
    f = facts()
    r = published(f)
    r.all_authentic = False
    results = await run(c.check_dnssec, f, r)
    assert levels(results) == [Level.WARN, Level.WARN]


async def test_host_address_missing_and_extra() -> None:
    f = facts()
    missing = await run(c.check_host_address, f, published(f, {(HOST, "A")}))
    assert levels(missing) == [Level.ERROR] and IP in missing[0].message
    extra = published(f)
    extra.add("AAAA", HOST, "2001:db8::99")
    assert levels(await run(c.check_host_address, f, extra)) == [Level.WARN]


async def test_reverse_dns_missing_other_name_and_not_confirmed() -> None:
    f = facts()
    ptr = ipaddress.ip_address(IP).reverse_pointer
    missing = await run(c.check_reverse_dns, f, published(f, {(ptr, "PTR")}))
    assert levels(missing) == [Level.ERROR] and "hosting provider" in missing[0].fix
    other = published(f, {(ptr, "PTR")})
    other.add("PTR", ptr, "host-7.provider.example.")
    other.add("A", "host-7.provider.example", IP)
    named = await run(c.check_reverse_dns, f, other)
    assert levels(named) == [Level.ERROR] and "not mail.example.org" in named[0].message
    unconfirmed = published(f, {(HOST, "A")})
    assert levels(await run(c.check_reverse_dns, f, unconfirmed)) == [Level.ERROR]


async def test_client_srv_records() -> None:
    f = facts()
    results = await run(c.check_clients, f, published(f, {(f"_imaps._tcp.{D}", "SRV")}))
    assert levels(results) == [Level.WARN] and "_imaps._tcp" in results[0].message


async def test_an_unreachable_resolver_is_one_line() -> None:
    import socket

    from kittiwake.dns import Nameserver, StubResolver

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing answers there
    resolver = StubResolver([Nameserver("127.0.0.1", port)], timeout=0.5)
    results = await run_checks(facts(), resolver, FakeServer().probes)
    assert [(r.check, r.level) for r in results] == [("resolver", Level.ERROR)]


def test_cli_exit_status_and_aligned_lines(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from kittiwake.cli.main import cli

    made = CliRunner().invoke(cli, ["quickstart", f"admin@{D}", "--dir", str(tmp_path),
                                    "--ip", IP, "--user", ""])
    assert made.exit_code == 0, made.output
    from kittiwake.config import load
    from kittiwake.setup import domain_facts

    real = domain_facts(load(tmp_path / "config"), D)
    resolver = published(real)
    # Nothing listens: tlsa-served and the policy are the two ERROR lines.
    server = FakeServer(key=None, policy=None)
    monkeypatch.setattr("kittiwake.dnscheck.default_probes", lambda *a, **k: server.probes)
    monkeypatch.setattr("kittiwake.cli.config.dnscheck_resolver", lambda ctx: resolver)
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "config"), "config",
                                      "dnscheck", D])
    assert result.exit_code == 2, result.output
    lines = result.output.splitlines()
    assert [ln.split()[0] for ln in lines if ln.split()[0] != "OK"] == ["ERROR", "ERROR"]
    columns = {ln.index(ln.split()[1]) for ln in lines}
    assert len(columns) == 1
    assert any("mta-sts-policy" in ln and "cannot fetch" in ln for ln in lines)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks under test never dial out: probes are fakes."""
    async def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network probe used in a unit test")

    monkeypatch.setattr("kittiwake.dnscheck.probes.smtp_certificate", refuse)


async def test_served_certificate_found_through_dns_when_listening_on_any_address() -> None:
    f = facts(ips=(), listens_on_any=True)
    r = published(facts())  # the DNS has the host's address
    server = FakeServer()
    results = await run(c.check_tlsa_served, f, r, server)
    assert levels(results) == [Level.OK] and server.asked == [(HOST, IP, 25)]
    nowhere = await run(c.check_tlsa_served, f, published(facts(), {(HOST, "A")}), server)
    assert levels(nowhere) == [Level.ERROR] and "no address" in nowhere[0].message


async def test_helo_spf_record_that_refuses_our_address_is_a_warning() -> None:
    f = facts()
    r = published(f, {(HOST, "TXT")})
    r.add("TXT", HOST, "v=spf1 ip4:192.0.2.1 -all")
    results = await run(c.check_spf, f, r)
    assert levels(results) == [Level.OK, Level.WARN]
    assert f"HELO name {HOST} does not authorise {IP} (fail)" in results[1].message
