"""One function per DNS check: the published records against what the config says.

Each ``check_*`` takes the :class:`Environment` and returns its lines
(:class:`~kittiwake.dnscheck.results.CheckResult`), never raising for DNS
failures: a lookup that fails temporarily is an ERROR line that says so.
The expected values come from :mod:`kittiwake.setup.records`, so
``config dnsrecords`` and ``config dnscheck`` cannot disagree.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from kittiwake.dns.resolver import Resolver
from kittiwake.dns.types import CAA, TLSA, Answer, DNSTemporaryError, InvalidName, RRType
from kittiwake.dnscheck.probes import Probes
from kittiwake.dnscheck.results import CheckResult, error, ok, warn
from kittiwake.setup.facts import DomainFacts
from kittiwake.setup.records import DNSRecord, dmarc_value, records_for, spf_value, tlsrpt_value

T = TypeVar("T")


@dataclass
class Environment:
    """What every check needs: the config's facts, a resolver and the server probes."""

    facts: DomainFacts
    resolver: Resolver
    probes: Probes
    records: list[DNSRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.records:
            self.records = records_for(self.facts)

    def expected(self, check: str) -> list[DNSRecord]:
        return [r for r in self.records if r.check == check]


Check = Callable[["Environment"], Awaitable[list[CheckResult]]]


class LookupFailed(Exception):
    """A lookup failed temporarily; the message names it."""


async def _lookup(what: Callable[[], Awaitable[Answer[T]]], rtype: str, name: str) -> Answer[T]:
    try:
        return await what()
    except DNSTemporaryError as exc:
        raise LookupFailed(f"{rtype} lookup of {name} failed ({exc.reason}); try again,"
                           " or check the zone's name servers") from None
    except InvalidName as exc:
        raise LookupFailed(f"{name}: {exc}") from None


def never_raises(name: str) -> Callable[[Check], Check]:
    """Make a check turn a failed lookup into its ERROR line instead of raising."""
    def wrap(check: Check) -> Check:
        @functools.wraps(check)
        async def checked(env: Environment) -> list[CheckResult]:
            try:
                return await check(env)
            except LookupFailed as exc:
                return [error(name, str(exc))]
        return checked
    return wrap


def _publish(records: list[DNSRecord]) -> str:
    return "publish " + ", ".join(f"{r.name} {r.rtype.value} {r.rdata()}" for r in records)


def _ip_set(ips: tuple[str, ...] | list[str]) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    return {ipaddress.ip_address(ip) for ip in ips}


@never_raises("mx")
async def check_mx(env: Environment) -> list[CheckResult]:
    """MX of the domain names this host (RFC 5321 §5.1); not a null MX (RFC 7505)."""
    f = env.facts
    answer = await _lookup(lambda: env.resolver.mx(f.domain), "MX", f.domain)
    fix = _publish(env.expected("mx"))
    if not answer.records:
        return [error("mx", f"{f.domain} has no MX record ({answer.status}): mail goes to its"
                      " A/AAAA address, if anywhere", fix)]
    if any(r.is_null for r in answer.records):
        return [error("mx", f"{f.domain} has a null MX (RFC 7505): it accepts no mail", fix)]
    hosts = [r.exchange.lower() for r in answer.records]
    if f.hostname not in hosts:
        return [error("mx", f"MX of {f.domain} is {', '.join(map(str, answer.records))},"
                      f" not {f.hostname}", fix)]
    others = [h for h in hosts if h != f.hostname]
    if others:
        return [warn("mx", f"MX of {f.domain} includes {f.hostname} and also"
                     f" {', '.join(others)}", "make sure the other hosts relay to this one, or"
                     " remove them")]
    return [ok("mx", f"MX of {f.domain} is {f.hostname}")]


@never_raises("spf")
async def check_spf(env: Environment) -> list[CheckResult]:
    """SPF (RFC 7208): every sending address passes, ``-all``/``~all`` at the end, and
    fewer than the 10 DNS-querying terms of §4.6.4."""
    from kittiwake.spf import Mechanism, Qualifier, Status, check_host, lookup_record

    f = env.facts
    fix = f"publish {f.domain} TXT \"{spf_value(f)}\""
    found = await lookup_record(env.resolver, f.domain)
    if found.status is Status.TEMPERROR:
        return [error("spf", f"SPF lookup of {f.domain} failed: {found.problem}; try again")]
    if found.record is None:
        return [error("spf", f"{f.domain} has no valid SPF record"
                      f" ({found.problem or found.status})", fix)]
    out: list[CheckResult] = []
    failing = []
    for ip in f.all_sending_ips:
        result = await check_host(env.resolver, ip, f.domain, f"postmaster@{f.domain}",
                                  f.hostname)
        if result.status is not Status.PASS:
            why = f": {result.problem}" if result.problem else ""
            failing.append(f"{ip} ({result.status}{why})")
    # An address nobody uses walks every term, so the lookups counted are all of them.
    probe = await check_host(env.resolver, "192.0.2.255", f.domain, f"postmaster@{f.domain}")
    if probe.status is Status.PERMERROR:
        out.append(error("spf", f"SPF record of {f.domain} is broken: {probe.problem}", fix))
    elif probe.lookups >= 10:
        out.append(error("spf", f"SPF record of {f.domain} needs {probe.lookups} DNS lookups;"
                         " RFC 7208 §4.6.4 allows 10", "replace include/a/mx terms by ip4:/ip6:"))
    terms = found.record.terms
    final = next((t for t in reversed(terms) if isinstance(t, Mechanism)), None)
    redirect = any(not isinstance(t, Mechanism) and t.name == "redirect" for t in terms)
    ends_well = final is not None and final.kind == "all" and final.qualifier in (
        Qualifier.FAIL, Qualifier.SOFTFAIL)
    if not ends_well and not redirect:
        out.append(error("spf", f"SPF record of {f.domain} does not end in -all or ~all"
                         f" ({found.text!r}): others may send as {f.domain}", fix))
    if failing:
        out.append(error("spf", f"SPF of {f.domain} does not authorise {', '.join(failing)}",
                         fix))
    if not out:
        qualifier = "-all" if final is not None and final.qualifier is Qualifier.FAIL else \
            "~all" if final is not None else "redirect"
        out.append(ok("spf", f"SPF of {f.domain} authorises {', '.join(f.all_sending_ips)}"
                      f" and ends in {qualifier} ({probe.lookups} of 10 DNS lookups)"))
    if f.hostname != f.domain:
        host = await lookup_record(env.resolver, f.hostname)
        host_fix = f"publish {f.hostname} TXT \"v=spf1 a -all\""
        if host.record is None and host.status is not Status.TEMPERROR:
            out.append(warn("spf", f"the HELO name {f.hostname} has no SPF record: bounces"
                            " (empty MAIL FROM) are checked against it", host_fix))
        elif host.record is not None:
            # RFC 7208 §2.3: the HELO identity, checked for bounces (empty MAIL FROM).
            refused = []
            for ip in f.ips:
                helo = await check_host(env.resolver, ip, f.hostname,
                                        f"postmaster@{f.hostname}", f.hostname,
                                        identity="helo")
                if helo.status is not Status.PASS:
                    refused.append(f"{ip} ({helo.status})")
            if refused:
                out.append(warn("spf", f"the SPF record of the HELO name {f.hostname} does"
                                f" not authorise {', '.join(refused)}", host_fix))
    return out


@never_raises("dkim")
async def check_dkim(env: Environment) -> list[CheckResult]:
    """Each selector's TXT record holds the public key of its private key (RFC 6376 §3.6.2.1)."""
    from kittiwake.dkim import dns_record
    from kittiwake.dkim.keys import KeyRecordError, parse_key_record

    out: list[CheckResult] = []
    if not env.facts.dkim:
        return [warn("dkim", f"{env.facts.domain} has no DKIM selector: outgoing mail is not"
                     " signed", "add one with `kittiwake dkim gen` and domains.conf")]
    for key in env.facts.dkim:
        name = f"{key.selector}._domainkey.{env.facts.domain}"
        fix = f"publish {name} TXT \"{key.record}\""
        try:
            answer = await _lookup(lambda n=name: env.resolver.txt(n), "TXT", name)
        except LookupFailed as exc:
            out.append(error("dkim", str(exc)))
            continue
        published = []
        problems = []
        for text in answer.records:
            try:
                record = parse_key_record(text)
            except KeyRecordError as exc:
                problems.append(str(exc))
                continue
            if record.public_key is not None:
                published.append(dns_record(record.public_key))
        if key.record in published:
            out.append(ok("dkim", f"selector {key.selector}: {name} has the key of"
                          f" {'the signing' if key.signing else 'the'} private key"))
        elif published:
            out.append(error("dkim", f"selector {key.selector}: {name} has another key than"
                             " the private key: signatures fail", fix))
        else:
            why = f" ({'; '.join(problems)})" if problems else f" ({answer.status})"
            out.append(error("dkim", f"selector {key.selector}: no DKIM key at {name}{why}",
                             fix))
    return out


@never_raises("dmarc")
async def check_dmarc(env: Environment) -> list[CheckResult]:
    """A valid DMARC record of the domain itself (RFC 7489 §6.3), with our rua address."""
    from kittiwake.dmarc import Disposition, LookupStatus, lookup

    f = env.facts
    fix = f"publish _dmarc.{f.domain} TXT \"{dmarc_value(f)}\""
    found = await lookup(env.resolver, f.domain)
    if found.status is LookupStatus.TEMPERROR:
        return [error("dmarc", f"DMARC lookup failed: {found.reason}; try again")]
    if found.status is not LookupStatus.FOUND or found.policy is None:
        return [error("dmarc", f"{f.domain} has no valid DMARC record"
                      f"{' (' + found.reason + ')' if found.reason else ''}", fix)]
    out: list[CheckResult] = []
    policy = found.policy
    if found.policy_domain != f.domain:
        out.append(warn("dmarc", f"the DMARC record of {f.domain} is inherited from"
                        f" {found.policy_domain}", fix))
    if policy.applicable(found.subdomain) is Disposition.NONE:
        out.append(warn("dmarc", f"DMARC policy of {f.domain} is p=none: forged mail is only"
                        " reported, not rejected", fix))
    addresses = [u.address.lower() for u in policy.aggregate_uris if u.address]
    if f.dmarc_rua and f.dmarc_rua not in addresses:
        shown = ", ".join(addresses) or "no rua"
        out.append(warn("dmarc", f"DMARC reports of {f.domain} go to {shown}, not to"
                        f" {f.dmarc_rua} where kittiwake files them", fix))
    if not out:
        rua = f", reports to {f.dmarc_rua}" if f.dmarc_rua else ""
        out.append(ok("dmarc", f"DMARC of {f.domain}: p={policy.policy}{rua}"))
    return out


@never_raises("mta-sts")
async def check_mta_sts(env: Environment) -> list[CheckResult]:
    """The ``_mta-sts`` TXT record's id is the configured policy id (RFC 8461 §3.1)."""
    from kittiwake.mtasts import lookup_record

    f = env.facts
    found = await lookup_record(env.resolver, f.domain)
    if found.temporary:
        return [error("mta-sts", f"{found.reason}; try again")]
    if f.mta_sts is None:
        if found.record is not None:
            return [warn("mta-sts", f"_mta-sts.{f.domain} is published but domains.conf has no"
                         " mta_sts policy, so none is served", "add mta_sts to the domain or"
                         " remove the record")]
        return [warn("mta-sts", f"{f.domain} has no MTA-STS policy: senders cannot require TLS"
                     " without DNSSEC", f"add [domains.\"{f.domain}\".mta_sts] to domains.conf")]
    fix = _publish(env.expected("mta-sts")[:1])
    if found.record is None:
        return [error("mta-sts", f"no MTA-STS record: {found.reason}", fix)]
    if found.record.id != f.mta_sts.policy_id:
        return [error("mta-sts", f"_mta-sts.{f.domain} has id={found.record.id}, the policy is"
                      f" id={f.mta_sts.policy_id}: senders keep a stale policy", fix)]
    return [ok("mta-sts", f"_mta-sts.{f.domain} has id={found.record.id}")]


@never_raises("mta-sts-policy")
async def check_mta_sts_policy(env: Environment) -> list[CheckResult]:
    """The policy served at https://mta-sts.DOMAIN/.well-known/mta-sts.txt (RFC 8461 §3.3)
    is the configured one and allows this host."""
    f = env.facts
    if f.mta_sts is None:
        return []
    fetched = await env.probes.mta_sts_policy(f.domain)
    if fetched.policy is None:
        return [error("mta-sts-policy", f"cannot fetch the MTA-STS policy: {fetched.reason}",
                      f"mta-sts.{f.domain} must reach kittiwake's https service (or the web"
                      " server proxying to it) with a valid certificate")]
    policy = fetched.policy
    out: list[CheckResult] = []
    if not policy.allows(f.hostname):
        out.append(error("mta-sts-policy", f"the served policy's mx ({', '.join(policy.mx)})"
                         f" does not allow {f.hostname}: senders in enforce mode refuse it"))
    if policy.mode.value != f.mta_sts.mode:
        out.append(error("mta-sts-policy", f"the served policy has mode {policy.mode}, the"
                         f" config says {f.mta_sts.mode}", "restart or fix the web server"))
    if policy.max_age != f.mta_sts.max_age:
        out.append(warn("mta-sts-policy", f"the served policy has max_age {policy.max_age},"
                        f" the config says {f.mta_sts.max_age}"))
    if not out:
        out.append(ok("mta-sts-policy", f"{fetched.url}: mode {policy.mode}, mx"
                      f" {', '.join(policy.mx)}"))
    return out


@never_raises("tlsrpt")
async def check_tlsrpt(env: Environment) -> list[CheckResult]:
    """A TLSRPT record at ``_smtp._tls`` (RFC 8460 §3) sending reports to us."""
    from kittiwake.tlsrpt import RecordError, is_tlsrpt_record, parse_record

    f = env.facts
    name = f"_smtp._tls.{f.domain}"
    fix = f"publish {name} TXT \"{tlsrpt_value(f)}\""
    try:
        answer = await _lookup(lambda: env.resolver.txt(name), "TXT", name)
    except LookupFailed as exc:
        return [error("tlsrpt", str(exc))]
    candidates = [t for t in answer.records if is_tlsrpt_record(t)]
    if not candidates:
        return [warn("tlsrpt", f"no TLSRPT record at {name}: you get no reports about failed"
                     " TLS to your server", fix)]
    if len(candidates) > 1:
        return [error("tlsrpt", f"{name} has {len(candidates)} TLSRPT records; one is"
                      " allowed (RFC 8460 §3)", fix)]
    try:
        record = parse_record(candidates[0])
    except RecordError as exc:
        return [error("tlsrpt", f"{name}: {exc}", fix)]
    if f.tlsrpt_rua not in record.addresses:
        return [warn("tlsrpt", f"TLS reports go to {', '.join(record.rua)}, not to"
                     f" {f.tlsrpt_rua}", fix)]
    return [ok("tlsrpt", f"TLS reports go to {f.tlsrpt_rua}")]


async def _tlsa_records(env: Environment) -> Answer[TLSA]:
    name = f"_25._tcp.{env.facts.hostname}"
    return await _lookup(lambda: env.resolver.tlsa(name), "TLSA", name)


@never_raises("tlsa")
async def check_tlsa(env: Environment) -> list[CheckResult]:
    """TLSA ``3 1 1`` at ``_25._tcp.HOST`` for every host key, DNSSEC-signed
    (RFC 7672 §2.2: without DNSSEC, senders ignore TLSA)."""
    f = env.facts
    name = f"_25._tcp.{f.hostname}"
    if not f.host_keys:
        return [warn("tlsa", "no host private keys are configured"
                     " (tls.host_private_key_files), so there is no stable key to publish"
                     " TLSA records for", "run `kittiwake quickstart` or add keys")]
    try:
        answer = await _tlsa_records(env)
    except LookupFailed as exc:
        return [error("tlsa", str(exc))]
    published = {(r.usage, r.selector, r.mtype, r.data.hex()) for r in answer.records}
    out: list[CheckResult] = []
    for key in f.host_keys:
        if (3, 1, 1, key.tlsa_data) in published:
            out.append(ok("tlsa", f"{name} has 3 1 1 for the {key.description} host key"))
        else:
            out.append(error("tlsa", f"{name} has no 3 1 1 record for the {key.description}"
                             f" host key {key.file}", f"publish {name} TLSA 3 1 1"
                             f" {key.tlsa_data}"))
    ours = {(3, 1, 1, k.tlsa_data) for k in f.host_keys}
    for extra in sorted(published - ours):
        out.append(warn("tlsa", f"{name} also has {extra[0]} {extra[1]} {extra[2]}"
                        f" {extra[3][:16]}..., which matches no host key",
                        "remove it once no certificate of yours uses that key"))
    if answer.records and not answer.authentic:
        out.append(error("tlsa", f"the TLSA records of {name} are not DNSSEC-signed (no AD"
                         " bit): senders ignore them (RFC 7672 §2.2)",
                         f"sign the zone of {f.hostname} (and add its DS at the parent)"))
    return out


@never_raises("tlsa-served")
async def check_tlsa_served(env: Environment) -> list[CheckResult]:
    """The certificate served after STARTTLS on each address matches a published TLSA
    record (RFC 7672 §3.1) and one of the host keys (renewals keep it)."""
    from kittiwake.dane import matches, record_for, usable_for_smtp

    f = env.facts
    answer = await _tlsa_records(env)
    addresses = list(f.ips)
    if not addresses:
        # Listening on all addresses: connect where senders do, the host's A/AAAA.
        found = await _lookup(lambda: env.resolver.ips(f.hostname), "A/AAAA", f.hostname)
        addresses = [str(a) for a in found.records]
        if not addresses:
            return [error("tlsa-served", f"{f.hostname} has no address to connect to",
                          _publish(env.expected("host-address")) or
                          f"publish A/AAAA records for {f.hostname}")]
    records = [r for r in answer.records if usable_for_smtp(r)]
    host_key_data = {k.tlsa_data for k in f.host_keys}
    out: list[CheckResult] = []
    for ip in addresses:
        served = await env.probes.smtp_certificate(f.hostname, ip, f.smtp_port)
        where = f"{ip} port {f.smtp_port}"
        if served.leaf_der is None:
            out.append(error("tlsa-served", f"no certificate from {where}: {served.problem}",
                             "start kittiwake; the first ACME certificate may take a minute"))
            continue
        try:
            spki = record_for(served.leaf_der).data.hex()
        except ValueError as exc:
            out.append(error("tlsa-served", f"{where} sent a certificate that cannot be read:"
                             f" {exc}"))
            continue
        matched = [r for r in records if matches(r, served.leaf_der)]
        if not matched:
            out.append(error("tlsa-served", f"the certificate served on {where} (SPKI SHA-256"
                             f" {spki[:16]}...) matches no TLSA record of _25._tcp.{f.hostname}:"
                             " DANE senders will not deliver",
                             "publish the records of `config dnsrecords`, or serve a"
                             " certificate for a host key"))
        elif spki not in host_key_data:
            out.append(warn("tlsa-served", f"the certificate served on {where} matches TLSA,"
                            " but is not for a configured host key: the next renewal breaks"
                            " DANE", "let ACME use tls.host_private_key_files"))
        else:
            out.append(ok("tlsa-served", f"the certificate served on {where} matches TLSA"
                          f" {matched[0].usage} {matched[0].selector} {matched[0].mtype}"))
    return out


def _caa_names(f: DomainFacts) -> list[str]:
    """The names kittiwake's certificates are for."""
    names = [f.hostname]
    if f.mta_sts is not None:
        names.append(f"mta-sts.{f.domain}")
    names.append(f"autoconfig.{f.domain}")
    return names


async def relevant_caa(resolver: Resolver, name: str) -> tuple[str, list[CAA]]:
    """The relevant CAA RRset of ``name`` (RFC 8659 §3): the first non-empty set found at
    the name or, climbing one label at a time, its parents (not the root). Returns the
    name it was found at and the records ("" and [] when there are none)."""
    labels = name.rstrip(".").split(".")
    for i in range(len(labels)):
        candidate = ".".join(labels[i:])
        answer = await _lookup(lambda c=candidate: resolver.caa(c), "CAA", candidate)
        if answer.records:
            return candidate, list(answer.records)
    return "", []


def _caa_issuer(value: str) -> tuple[str, dict[str, str]]:
    """Issuer domain and parameters of an issue property value (RFC 8659 §4.2)."""
    issuer, _, rest = value.partition(";")
    params: dict[str, str] = {}
    for item in rest.split(";"):
        key, eq, val = item.strip().partition("=")
        if eq:
            params[key.strip().lower()] = val.strip()
    return issuer.strip().lower(), params


@never_raises("caa")
async def check_caa(env: Environment) -> list[CheckResult]:
    """CAA (RFC 8659) lets the configured ACME issuer issue for our names, and names our
    account when it says accounturi (RFC 8657 §3)."""
    f = env.facts
    if not f.acme_name:
        return []
    out: list[CheckResult] = []
    for name in _caa_names(f):
        try:
            where, records = await relevant_caa(env.resolver, name)
        except LookupFailed as exc:
            out.append(error("caa", str(exc)))
            continue
        if not records:
            fix = _publish(env.expected("caa")) if env.expected("caa") else ""
            out.append(warn("caa", f"no CAA record for {name}: any authority may issue"
                            " certificates for it", fix))
            continue
        if not f.caa_issuers:
            out.append(warn("caa", f"CAA at {where} is set, but the issuer name of"
                            f" [acme.{f.acme_name}] is unknown, so it cannot be checked",
                            "set issuer_domain_names in kittiwake.conf"))
            continue
        issue = [r.value for r in records if r.tag.lower() == "issue"]
        allowed = [_caa_issuer(v) for v in issue]
        ours = [(i, p) for i, p in allowed if i in f.caa_issuers]
        if not ours:
            shown = ", ".join(i or ";" for i, _ in allowed) or "nobody (no issue property)"
            out.append(error("caa", f"CAA at {where} lets {shown} issue for {name}, not"
                             f" {', '.join(f.caa_issuers)}: ACME will fail",
                             _publish(env.expected("caa"))))
            continue
        uris = [p["accounturi"] for _i, p in ours if "accounturi" in p]
        if uris and all(p.get("accounturi") for _i, p in ours) and (
                f.acme_account_uri is None or f.acme_account_uri not in uris):
            account = f.acme_account_uri or "(no account yet)"
            out.append(error("caa", f"CAA at {where} allows only account(s) {', '.join(uris)},"
                             f" not kittiwake's {account}", _publish(env.expected("caa"))))
            continue
        out.append(ok("caa", f"CAA at {where} lets {ours[0][0]} issue for {name}"))
    return out


@never_raises("dnssec")
async def check_dnssec(env: Environment) -> list[CheckResult]:
    """The domain's zone and the MX host's are DNSSEC-signed: the resolver's AD bit
    (RFC 4035 §3.2.3) on their answers. DANE needs it (RFC 7672 §2.2)."""
    f = env.facts
    out: list[CheckResult] = []
    checks = [(f.domain, "the zone of", lambda: env.resolver.mx(f.domain), "MX"),
              (f.hostname, "the MX host", lambda: env.resolver.ips(f.hostname), "A/AAAA")]
    for name, what, lookup, rtype in checks:
        try:
            answer = await _lookup(lookup, rtype, name)
        except LookupFailed as exc:
            out.append(error("dnssec", str(exc)))
            continue
        if answer.authentic:
            out.append(ok("dnssec", f"{what} {name} is DNSSEC-signed ({rtype} answer"
                          " authentic)"))
        else:
            out.append(warn("dnssec", f"{what} {name} is not DNSSEC-signed, or the resolver"
                            " does not validate: no DANE, and lookups can be forged",
                            "enable DNSSEC at your DNS provider and publish the DS at the"
                            " registrar"))
    return out


@never_raises("host-address")
async def check_host_address(env: Environment) -> list[CheckResult]:
    """A/AAAA of the host are the listener addresses."""
    f = env.facts
    try:
        answer = await _lookup(lambda: env.resolver.ips(f.hostname), "A/AAAA", f.hostname)
    except LookupFailed as exc:
        return [error("host-address", str(exc))]
    found = {ipaddress.ip_address(str(a)) for a in answer.records}
    if not f.ips:
        shown = ", ".join(sorted(map(str, found))) or "none"
        return [warn("host-address", f"{f.hostname} has addresses {shown}; the listeners bind"
                     " all addresses, so they cannot be compared",
                     "set listeners.NAME.ips to the public addresses")]
    wanted = _ip_set(f.ips)
    missing = wanted - found
    extra = found - wanted
    fix = _publish(env.expected("host-address"))
    if missing:
        return [error("host-address", f"{f.hostname} lacks {', '.join(sorted(map(str, missing)))}"
                      f" (has {', '.join(sorted(map(str, found))) or 'none'})", fix)]
    if extra:
        return [warn("host-address", f"{f.hostname} also has {', '.join(sorted(map(str, extra)))},"
                     " where kittiwake does not listen", "remove those records")]
    return [ok("host-address", f"{f.hostname} is at {', '.join(f.ips)}")]


@never_raises("reverse-dns")
async def check_reverse_dns(env: Environment) -> list[CheckResult]:
    """Each sending address has a PTR name whose A/AAAA leads back (FCrDNS, RFC 8601 §3),
    and the name is the one announced in EHLO."""
    from kittiwake import iprev

    f = env.facts
    senders = [(ip, f.hostname) for ip in f.ips]
    senders += [(ip, name) for name, ips in f.socks for ip in ips]
    out: list[CheckResult] = []
    for ip, name in senders:
        result = await iprev.check(env.resolver, ip)
        fix = f"ask your hosting provider to set the reverse DNS of {ip} to {name}"
        if result.status is iprev.Status.TEMPERROR:
            out.append(error("reverse-dns", f"reverse DNS of {ip}: {result.reason}; try again"))
        elif result.status is not iprev.Status.PASS:
            names = ", ".join(result.names) or "no PTR name"
            out.append(error("reverse-dns", f"reverse DNS of {ip} ({names}) does not confirm"
                             f" forward: {result.reason}", fix))
        elif name not in (n.lower().rstrip(".") for n in result.names):
            out.append(error("reverse-dns", f"reverse DNS of {ip} is {', '.join(result.names)},"
                             f" not {name} (the EHLO name)", fix))
        else:
            out.append(ok("reverse-dns", f"{ip} has reverse DNS {name}, which points back"))
    return out


@never_raises("clients")
async def check_clients(env: Environment) -> list[CheckResult]:
    """SRV records (RFC 6186 §3, RFC 8314 §5.1) and the autoconfig/autodiscover names."""
    out: list[CheckResult] = []
    for record in env.expected("clients"):
        try:
            if record.rtype is RRType.SRV:
                answer = await _lookup(lambda r=record: env.resolver.srv(r.name), "SRV",
                                       record.name)
                want = record.value.rstrip(".")
                have = [str(r).rstrip(".") for r in answer.records]
                if want in have:
                    continue
                out.append(warn("clients", f"{record.name} SRV is"
                                f" {', '.join(have) or 'missing'}; expected {record.value}",
                                f"publish {record.name} SRV {record.value}"))
            else:
                answer = await _lookup(lambda r=record: env.resolver.ips(r.name), "A/AAAA",
                                       record.name)
                if answer.records:
                    continue
                out.append(warn("clients", f"{record.name} has no address: mail clients do not"
                                " find their settings", _publish([record])))
        except LookupFailed as exc:
            out.append(warn("clients", str(exc)))
    if not out:
        out.append(ok("clients", "SRV records and autoconfig/autodiscover names are published"))
    return out


CHECKS: tuple[tuple[str, Check], ...] = (
    ("mx", check_mx),
    ("host-address", check_host_address),
    ("reverse-dns", check_reverse_dns),
    ("dnssec", check_dnssec),
    ("spf", check_spf),
    ("dkim", check_dkim),
    ("dmarc", check_dmarc),
    ("mta-sts", check_mta_sts),
    ("mta-sts-policy", check_mta_sts_policy),
    ("tlsrpt", check_tlsrpt),
    ("tlsa", check_tlsa),
    ("tlsa-served", check_tlsa_served),
    ("caa", check_caa),
    ("clients", check_clients),
)
