"""``kittiwake config dnscheck``: is the published DNS what the configuration needs?

One function per check in :mod:`.checks` (MX, addresses, reverse DNS,
DNSSEC, SPF, DKIM, DMARC, MTA-STS record and policy, TLSRPT, TLSA against
host keys and the served certificate, CAA, client SRV records), each
returning :class:`~.results.CheckResult` lines. :func:`run_checks` runs them
all; the expected records come from :mod:`kittiwake.setup.records`.
"""

from __future__ import annotations

import asyncio

from kittiwake.dns.resolver import Resolver
from kittiwake.dnscheck.checks import CHECKS, Environment
from kittiwake.dnscheck.probes import Probes, ServedCertificate, default_probes
from kittiwake.dnscheck.results import CheckResult, Level, render
from kittiwake.setup.facts import DomainFacts


async def check_resolver(resolver: Resolver, probe: str = ".") -> list[CheckResult]:
    """Whether the resolver answers at all, and validates DNSSEC (RFC 4035 §3.2.3).

    Only a :class:`~kittiwake.dns.StubResolver` can be probed; an unreachable
    one is one ERROR line instead of an ERROR per check.
    """
    from kittiwake.dns import DNSSECSupport, StubResolver, probe_dnssec

    if not isinstance(resolver, StubResolver):
        return []
    found = await probe_dnssec(resolver, probe)
    if found.support is DNSSECSupport.NO_ANSWER:
        return [CheckResult("resolver", Level.ERROR, f"the DNS resolver does not answer:"
                            f" {found.detail}", "check /etc/resolv.conf, dns.resolvers in"
                            " kittiwake.conf or KITTIWAKE_DNS")]
    if found.support is DNSSECSupport.NOT_VALIDATING:
        return [CheckResult("resolver", Level.WARN, "the DNS resolver does not validate DNSSEC"
                            f" ({found.detail}): the dnssec and tlsa lines cannot be OK",
                            "use a validating resolver, e.g. unbound on localhost")]
    return []


async def run_checks(facts: DomainFacts, resolver: Resolver, probes: Probes | None = None,
                     dnssec_probe: str = ".") -> list[CheckResult]:
    """Every check's lines, in the order of :data:`~.checks.CHECKS` (run concurrently)."""
    first = await check_resolver(resolver, dnssec_probe)
    if any(r.level is Level.ERROR for r in first):
        return first
    env = Environment(facts, resolver, probes or default_probes(resolver))
    groups = await asyncio.gather(*(check(env) for _name, check in CHECKS))
    return first + [line for group in groups for line in group]


__all__ = ["CHECKS", "CheckResult", "Environment", "Level", "Probes", "ServedCertificate",
           "default_probes", "render", "run_checks"]
