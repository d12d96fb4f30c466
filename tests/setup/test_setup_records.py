"""The record set of kittiwake.setup.records: what a domain publishes, and its renderings."""

from __future__ import annotations

import json

import dns.rdatatype
import dns.zone

from kittiwake.dkim import dns_record, generate_key, load_private_key
from kittiwake.dns import RRType
from kittiwake.setup import records_for, render_json, render_words, render_zone
from kittiwake.setup.facts import MTASTS, DKIMKey, DomainFacts, HostKey

ED = dns_record(load_private_key(generate_key("ed25519")))
RSA = dns_record(load_private_key(generate_key("rsa")))
KEY_A = "a" * 64
KEY_B = "b" * 64


def facts(**changes: object) -> DomainFacts:
    base: dict[str, object] = dict(
        domain="example.org", hostname="mail.example.org",
        ips=("198.51.100.7", "2001:db8::7"), listens_on_any=False, smtp_port=25,
        services={"smtp": 25, "submission": 587, "submissions": 465, "imap": 143,
                  "imaps": 993, "https": 443},
        dkim=(DKIMKey("ed2026", ED, True), DKIMKey("rsa2026", RSA, True)),
        dmarc_rua="dmarc-reports@example.org", tlsrpt_rua="tls-reports@example.org",
        mta_sts=MTASTS("20260101", "enforce", 86400, ("mail.example.org",)),
        host_keys=(HostKey("hostkeys/ecdsa-p256.pem", "ECDSA secp256r1", KEY_A),
                   HostKey("hostkeys/rsa2048.pem", "RSA-2048", KEY_B)),
        caa_issuers=("letsencrypt.org",), acme_name="letsencrypt")
    base.update(changes)
    return DomainFacts(**base)  # type: ignore[arg-type]


def find(records, name: str, rtype: RRType) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.value for r in records if r.name == name and r.rtype is rtype]


def test_every_record_a_domain_needs() -> None:
    records = records_for(facts())
    assert find(records, "example.org", RRType.MX) == ["10 mail.example.org."]
    assert find(records, "mail.example.org", RRType.A) == ["198.51.100.7"]
    assert find(records, "mail.example.org", RRType.AAAA) == ["2001:db8::7"]
    assert find(records, "example.org", RRType.TXT) == [
        "v=spf1 ip4:198.51.100.7 ip6:2001:db8::7 -all"]
    assert find(records, "mail.example.org", RRType.TXT) == ["v=spf1 a -all"]
    assert find(records, "ed2026._domainkey.example.org", RRType.TXT) == [ED]
    assert find(records, "rsa2026._domainkey.example.org", RRType.TXT) == [RSA]
    assert find(records, "_dmarc.example.org", RRType.TXT) == [
        "v=DMARC1; p=reject; rua=mailto:dmarc-reports@example.org!10m"]
    assert find(records, "_mta-sts.example.org", RRType.TXT) == ["v=STSv1; id=20260101"]
    assert find(records, "mta-sts.example.org", RRType.CNAME) == ["mail.example.org."]
    assert find(records, "_smtp._tls.example.org", RRType.TXT) == [
        "v=TLSRPTv1; rua=mailto:tls-reports@example.org"]
    assert find(records, "_smtp._tls.mail.example.org", RRType.TXT) == [
        "v=TLSRPTv1; rua=mailto:tls-reports@example.org"]  # DANE's policy domain (RFC 8460 §3)
    assert find(records, "_25._tcp.mail.example.org", RRType.TLSA) == [
        f"3 1 1 {KEY_A}", f"3 1 1 {KEY_B}"]
    assert find(records, "example.org", RRType.CAA) == ['0 issue "letsencrypt.org"']
    assert find(records, "autoconfig.example.org", RRType.CNAME) == ["mail.example.org."]
    assert find(records, "autodiscover.example.org", RRType.CNAME) == ["mail.example.org."]
    assert find(records, "_submissions._tcp.example.org", RRType.SRV) == [
        "0 1 465 mail.example.org."]
    assert find(records, "_submission._tcp.example.org", RRType.SRV) == [
        "10 1 587 mail.example.org."]
    assert find(records, "_imaps._tcp.example.org", RRType.SRV) == ["0 1 993 mail.example.org."]
    assert find(records, "_imap._tcp.example.org", RRType.SRV) == ["10 1 143 mail.example.org."]
    assert find(records, "_pop3._tcp.example.org", RRType.SRV) == ["0 0 0 ."]
    assert find(records, "_pop3s._tcp.example.org", RRType.SRV) == ["0 0 0 ."]
    assert find(records, "7.100.51.198.in-addr.arpa", RRType.PTR) == ["mail.example.org."]
    assert len(find(records, "7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"
                             ".ip6.arpa", RRType.PTR)) == 1


def test_caa_names_the_account_once_it_exists() -> None:
    uri = "https://acme-v02.api.letsencrypt.org/acme/acct/123"
    records = records_for(facts(acme_account_uri=uri))
    assert find(records, "example.org", RRType.CAA) == [
        f'0 issue "letsencrypt.org; accounturi={uri}"']


def test_host_outside_the_domain_gets_its_own_caa_and_no_unknown_issuer_guess() -> None:
    records = records_for(facts(hostname="mx.hoster.example"))
    assert find(records, "mx.hoster.example", RRType.CAA) == ['0 issue "letsencrypt.org"']
    unknown = facts(caa_issuers=())
    assert not [r for r in records_for(unknown) if r.rtype is RRType.CAA]
    assert "set issuer_domain_names" in render_zone(records_for(unknown), unknown)


def test_socks_addresses_are_in_spf_and_disabled_services_are_dot() -> None:
    f = facts(socks=(("out.example.org", ("203.0.113.9",)),),
              services={"smtp": 25, "submissions": 465})
    records = records_for(f)
    assert find(records, "example.org", RRType.TXT) == [
        "v=spf1 ip4:198.51.100.7 ip6:2001:db8::7 ip4:203.0.113.9 -all"]
    assert find(records, "_imap._tcp.example.org", RRType.SRV) == ["0 0 0 ."]
    assert not find(records, "_autodiscover._tcp.example.org", RRType.SRV)


def test_zone_snippet_is_a_valid_zone_file() -> None:
    f = facts()
    text = render_zone(records_for(f), f)
    forward = "\n".join(line for line in text.splitlines()
                        if not line.startswith(";") and ".arpa." not in line)
    zone = dns.zone.from_text("$ORIGIN .\n@ 3600 IN SOA ns. h. 1 2 3 4 5\n@ 3600 IN NS ns.\n"
                              + forward, origin=".", relativize=False, check_origin=False)
    rsa = zone.find_rdataset("rsa2026._domainkey.example.org.", dns.rdatatype.TXT)
    joined = b"".join(next(iter(rsa)).strings).decode()
    assert joined == RSA  # split into 255-octet strings, joined back by receivers
    assert max(len(s) for s in next(iter(rsa)).strings) <= 255
    tlsa = zone.find_rdataset("_25._tcp.mail.example.org.", dns.rdatatype.TLSA)
    assert {r.cert.hex() for r in tlsa} == {KEY_A, KEY_B}


def test_words_and_json_say_the_same() -> None:
    f = facts()
    records = records_for(f)
    words = render_words(records, f)
    assert "MX record at example.org: 10 mail.example.org." in words
    assert "reverse DNS of 198.51.100.7 must be mail.example.org" in words
    assert "accounturi" in words  # tells to run dnsrecords again once the account exists
    data = json.loads(render_json(records, f))
    assert data["domain"] == "example.org"
    assert len(data["records"]) == len(records)
    assert {"name", "type", "value", "rdata", "purpose", "check"} <= set(data["records"][0])
