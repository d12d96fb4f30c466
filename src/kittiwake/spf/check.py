"""The check_host() function of RFC 7208 §4: evaluate a domain's SPF record for an IP.

:func:`check_host` reads like the RFC's algorithm: initial processing (§4.3),
record lookup and selection (§4.4, §4.5), term evaluation (§4.6) with the DNS
limits of §4.6.4, the mechanisms of §5, redirect (§6.1) and exp (§6.2).
Errors are raised inside as :class:`~kittiwake.spf.status.SPFError` and become
a "temperror"/"permerror" :class:`Result` at the top, with the reason in
``problem``: nothing from the DNS or the record escapes as an exception.
Every DNS answer used is tracked so that the result can say whether all of
them were DNSSEC-authentic.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

from kittiwake.dns import Answer, DNSTemporaryError, InvalidName, Resolver
from kittiwake.dns.names import to_ascii
from kittiwake.spf.macro import MacroContext, MacroString, expand, parse_macro_string
from kittiwake.spf.record import Mechanism, parse_record, select_record
from kittiwake.spf.result import Result
from kittiwake.spf.status import (
    IncludeNone,
    PermError,
    RedirectNone,
    SPFError,
    Status,
    TempError,
    TooManyDNSLookups,
    TooManyMXNames,
    VoidLookupLimit,
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
T = TypeVar("T")

# RFC 7208 §4.6.4: "SPF implementations MUST limit the total number of those terms to 10
# during SPF evaluation".
MAX_DNS_TERMS = 10
# RFC 7208 §4.6.4: 'SPF implementations SHOULD limit "void lookups" to two.'
MAX_VOID_LOOKUPS = 2
# RFC 7208 §4.6.4: at most 10 address lookups per "mx", and 10 PTR names per "ptr"/%{p}.
MAX_MX_NAMES = 10
MAX_PTR_NAMES = 10
# A guard on include/redirect nesting; the 10-term limit stops well before it.
MAX_DEPTH = MAX_DNS_TERMS + 2
MAX_NAME = 253  # RFC 7208 §7.3 (and RFC 1035 §2.3.4, in text form)
# RFC 7208 §4.6.4: "MTAs or other processors SHOULD impose a limit on the maximum amount
# of elapsed time to evaluate check_host(). Such a limit SHOULD allow at least 20
# seconds. If such a limit is exceeded, the result of authorization SHOULD be
# "temperror"."
DEFAULT_TIMEOUT = 20.0


@dataclass(frozen=True)
class _Verdict:
    """The outcome of evaluating one record (one level of check_host())."""

    status: Status
    mechanism: str = ""
    explanation: str = ""
    record: str = ""
    problem: str = ""


def normalize_ip(ip: str | IPAddress) -> IPAddress:
    """Parse ``ip``; an IPv4-mapped IPv6 address becomes its IPv4 address.

    RFC 7208 §5: a client on an IPv4-mapped IPv6 address (RFC 4291 §2.5.5.2) is
    an IPv4 client for SPF. Raises ValueError for anything else.
    """
    if isinstance(ip, str):
        return _parse_ip(ip)
    if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return _unmapped(ip)
    raise ValueError(f"{ip!r} is not an IP address")


@lru_cache(maxsize=1024)
def _parse_ip(text: str) -> IPAddress:
    """The address in ``text`` (cached: clients come again); ValueError is not cached."""
    return _unmapped(ipaddress.ip_address(text.strip()))


def _unmapped(address: IPAddress) -> IPAddress:
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _has_space_or_control(text: str) -> bool:
    """White space, a C0 control or DEL anywhere in ``text`` (RFC 7208 §4.3 malformed)."""
    if text.isascii():
        # ASCII: isprintable() is false exactly for the controls and DEL, true for " ".
        return not text.isprintable() or " " in text
    return any(c.isspace() or ord(c) < 0x20 or c == "\x7f" for c in text)


def domain_problem(domain: str) -> str:
    """Why ``domain`` cannot be checked (RFC 7208 §4.3), or "" when it can.

    §4.3: "If the <domain> is malformed (e.g., label longer than 63 characters,
    zero-length label not at the end, etc.) or is not a multi-label domain name,
    [...] check_host() immediately returns the result "none"."
    """
    if not domain:
        return "empty domain"
    if domain.startswith("["):
        return f"{domain!r} is an address literal, not a domain"
    if _has_space_or_control(domain):
        return f"domain {domain!r} contains white space or control characters"
    try:
        ascii_name = to_ascii(domain)
    except InvalidName as exc:
        return str(exc)
    if "." not in ascii_name:
        return f"domain {domain!r} is not a multi-label domain name"
    return ""


def split_sender(sender: str) -> tuple[str, str]:
    """(local-part, domain) of <sender>; "postmaster" when it has no local-part (§4.3)."""
    local, at, domain = sender.rpartition("@")
    if not at:
        return "postmaster", sender
    return local or "postmaster", domain


async def check_host(
    resolver: Resolver,
    ip: str | IPAddress,
    domain: str,
    sender: str,
    helo: str = "",
    *,
    receiver: str = "unknown",
    identity: str = "mailfrom",
    mailfrom: str | None = None,
    clock: Callable[[], float] = time.time,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> Result:
    """RFC 7208 §4: is ``ip`` authorized to send mail for ``domain`` with ``sender``?

    ``sender`` is the MAIL FROM address, or "postmaster@" + HELO name for the
    HELO identity; a missing local-part becomes "postmaster" (§4.3). Never
    raises for bad input: a malformed domain gives "none", a malformed
    ``ip`` "permerror", each with a reason in ``problem``. An evaluation that
    takes longer than ``timeout`` seconds is a "temperror" (§4.6.4).
    """
    domain = (domain or "").strip()
    if domain.endswith("."):
        domain = domain[:-1]  # RFC 7208 §4.3: a zero-length label is allowed at the end
    base: dict[str, Any] = {
        "domain": domain, "identity": identity, "sender": sender, "helo": helo or "",
        "receiver": receiver, "mailfrom": sender if mailfrom is None else mailfrom,
        "ip": str(ip),
    }
    try:
        address = normalize_ip(ip)
    except (ValueError, TypeError):
        return Result(Status.PERMERROR, problem=f"{ip!r} is not an IP address", **base)
    base["ip"] = str(address)
    problem = domain_problem(domain)
    if problem:
        # RFC 7208 §4.3: a malformed or single-label <domain> gives "none".
        return Result(Status.NONE, problem=problem, **base)
    # RFC 8616 §4: internationalized domain names are used in A-label form, for the
    # lookups and for the macros that expand to them.
    domain = to_ascii(domain)
    local, sender_domain = split_sender(sender)
    if not domain_problem(sender_domain):
        sender = f"{local}@{to_ascii(sender_domain)}"
    base["domain"], base["sender"] = domain, sender
    evaluation = _Evaluation(resolver, address, helo or "", receiver, int(clock()))
    try:
        async with asyncio.timeout(timeout):
            verdict = await evaluation.check(domain, local, sender, depth=0, want_exp=True)
    except SPFError as exc:
        verdict = _Verdict(exc.status, problem=str(exc), record=evaluation.top_record)
        evaluation.authentic = False if exc.status is Status.TEMPERROR else evaluation.authentic
    except TimeoutError:
        verdict = _Verdict(Status.TEMPERROR, record=evaluation.top_record,
                           problem=f"SPF evaluation took longer than {timeout:g} seconds")
        evaluation.authentic = False
    return Result(
        verdict.status,
        explanation=verdict.explanation,
        mechanism=verdict.mechanism,
        authentic=evaluation.authentic,
        problem=verdict.problem,
        record=verdict.record or evaluation.top_record,
        lookups=evaluation.lookups,
        void_lookups=evaluation.void_lookups,
        **base,
    )


class _Evaluation:
    """The state of one check_host() run, shared by its includes and redirects."""

    def __init__(self, resolver: Resolver, ip: IPAddress, helo: str, receiver: str,
                 timestamp: int) -> None:
        self.resolver = resolver
        self.ip = ip
        self.helo = helo
        self.receiver = receiver
        self.timestamp = timestamp
        self.lookups = 0
        self.void_lookups = 0
        self.authentic = True
        self.top_record = ""
        self._validated: list[str] | None = None  # validated PTR names, once looked up
        self._ptr_answer: Answer[str] | None = None
        self._ptr_failed = False

    # -- DNS, limits and DNSSEC bookkeeping -------------------------------------

    async def _dns(self, what: str, lookup: Callable[[], Awaitable[Answer[T]]]) -> Answer[T]:
        """Run one lookup; temporary failures become temperror (RFC 7208 §4.4, §5)."""
        try:
            answer = await lookup()
        except DNSTemporaryError as exc:
            raise TempError(f"DNS lookup of {what} failed: {exc}") from None
        except InvalidName as exc:
            raise PermError(f"cannot look up {what}: {exc}") from None
        self.authentic = self.authentic and answer.authentic
        return answer

    def _count_term(self, term: str) -> None:
        """RFC 7208 §4.6.4: count a DNS-querying term; the 11th is a permerror."""
        self.lookups += 1
        if self.lookups > MAX_DNS_TERMS:
            raise TooManyDNSLookups(
                f"more than {MAX_DNS_TERMS} DNS-querying mechanisms and modifiers"
                f" (at {term!r})"
            )

    def _void(self, answer: Answer[Any], term: str) -> None:
        """RFC 7208 §4.6.4: count lookups with no answer or NXDOMAIN; the 3rd is permerror."""
        if answer.records:
            return
        self.void_lookups += 1
        if self.void_lookups > MAX_VOID_LOOKUPS:
            raise VoidLookupLimit(
                f"more than {MAX_VOID_LOOKUPS} void DNS lookups (at {term!r})"
            )

    # -- check_host() proper ----------------------------------------------------

    async def check(self, domain: str, local: str, sender: str, *, depth: int,
                    want_exp: bool) -> _Verdict:
        """Evaluate the SPF record of ``domain`` (RFC 7208 §4.4-§4.7)."""
        if depth > MAX_DEPTH:
            raise TooManyDNSLookups(f"include/redirect nesting deeper than {MAX_DEPTH}")
        # RFC 7208 §4.4: a TXT lookup; errors other than NXDOMAIN give temperror.
        answer = await self._dns(f"TXT {domain}", lambda: self.resolver.txt(domain))
        if answer.nxdomain:
            return _Verdict(Status.NONE, problem=f"domain {domain} does not exist")
        text = select_record(answer.records)  # RFC 7208 §4.5: MultipleRecords
        if text is None:
            return _Verdict(Status.NONE, problem=f"no SPF record at {domain}")
        if depth == 0:
            self.top_record = text
        record = parse_record(text)  # RFC 7208 §4.6: RecordSyntaxError → permerror
        ctx = MacroContext(
            sender=sender, local=local, sender_domain=split_sender(sender)[1],
            domain=domain, ip=self.ip, helo=self.helo, receiver=self.receiver,
            timestamp=self.timestamp, validated_name=lambda: self._p_macro(domain),
        )
        # RFC 7208 §4.6.2: mechanisms in order; the first match decides.
        for mechanism in record.mechanisms:
            if await self._matches(mechanism, ctx, depth):
                status = mechanism.qualifier.status
                explanation = ""
                if status is Status.FAIL and want_exp and record.exp is not None:
                    explanation = await self._explain(record.exp, ctx)
                return _Verdict(status, mechanism.text, explanation, text)
        # RFC 7208 §6.1: redirect applies only when no mechanism matched.
        if record.redirect is not None:
            term = f"redirect={record.redirect.text}"
            self._count_term(term)
            target = await self._target(record.redirect, ctx, term)
            if domain_problem(target):
                raise RedirectNone(f"{term}: target {target!r} is not a valid domain")
            result = await self.check(target, local, sender, depth=depth + 1,
                                      want_exp=want_exp)
            if result.status is Status.NONE:
                # RFC 7208 §6.1: "if no SPF record is found, or if the <target-name> is
                # malformed, the result is a "permerror" rather than "none"."
                raise RedirectNone(f"{term}: {result.problem}")
            return _Verdict(result.status, result.mechanism, result.explanation, text,
                            result.problem)
        # RFC 7208 §4.7: "If none of the mechanisms match and there is no "redirect"
        # modifier, then the check_host() returns a result of "neutral"".
        return _Verdict(Status.NEUTRAL, "default", record=text)

    async def _matches(self, m: Mechanism, ctx: MacroContext, depth: int) -> bool:
        """Whether mechanism ``m`` matches (RFC 7208 §5); errors are raised."""
        match m.kind:
            case "all":
                return True  # RFC 7208 §5.1
            case "ip4" | "ip6":
                # RFC 7208 §5.6; an ip4 network never matches an IPv6 client and vice versa.
                assert m.network is not None
                return self.ip.version == m.network.version and self.ip in m.network
        self._count_term(m.text)
        target = await self._target(m.domain_spec, ctx, m.text)
        match m.kind:
            case "include":
                return await self._include(m, target, ctx, depth)
            case "a":
                return await self._a(target, m)
            case "mx":
                return await self._mx(target, m)
            case "ptr":
                return await self._ptr(target, m.text)
            case "exists":
                return await self._exists(target, m.text)
        raise AssertionError(m.kind)

    async def _target(self, spec: MacroString | None, ctx: MacroContext, term: str) -> str:
        """The <target-name> of a term (RFC 7208 §4.8): expanded and truncated (§7.3)."""
        if spec is None:
            return ctx.domain
        name = await expand(spec, ctx)
        if name.endswith("."):
            name = name[:-1]
        # RFC 7208 §7.3: "if the expanded domain name exceeds 253 characters [...] the left
        # side is truncated to fit, by removing successive domain labels (and their
        # following dots) until the total length does not exceed 253 characters."
        if len(name) > MAX_NAME:
            cut = name.find(".", len(name) - MAX_NAME - 1)
            if cut >= 0:
                name = name[cut + 1 :]
        return name

    async def _include(self, m: Mechanism, target: str, ctx: MacroContext,
                       depth: int) -> bool:
        """RFC 7208 §5.2: recursive check_host() and its result table."""
        if domain_problem(target):
            raise IncludeNone(f"{m.text}: target {target!r} is not a valid domain")
        result = await self.check(target, ctx.local, ctx.sender, depth=depth + 1,
                                  want_exp=False)
        match result.status:
            case Status.PASS:
                return True
            case Status.FAIL | Status.SOFTFAIL | Status.NEUTRAL:
                return False
            case Status.NONE:
                raise IncludeNone(f"{m.text}: {result.problem}")
        raise AssertionError(result.status)  # errors were raised, not returned

    async def _addresses(self, name: str, term: str, void: bool) -> tuple[IPAddress, ...]:
        """A or AAAA records of ``name`` as fits the client (RFC 7208 §5)."""
        if self.ip.version == 4:
            answer: Answer[Any] = await self._dns(f"A {name}", lambda: self.resolver.a(name))
        else:
            answer = await self._dns(f"AAAA {name}", lambda: self.resolver.aaaa(name))
        if void:
            self._void(answer, term)
        return tuple(answer.records)

    def _in_network(self, addresses: tuple[IPAddress, ...], m: Mechanism) -> bool:
        length = m.ip4_cidr if self.ip.version == 4 else m.ip6_cidr
        network = ipaddress.ip_network(f"{self.ip}/{length}", strict=False)
        return any(a.version == self.ip.version and a in network for a in addresses)

    async def _a(self, target: str, m: Mechanism) -> bool:
        """RFC 7208 §5.3: the client is among the target's addresses (with CIDR)."""
        return self._in_network(await self._addresses(target, m.text, void=True), m)

    async def _mx(self, target: str, m: Mechanism) -> bool:
        """RFC 7208 §5.4: the client is among the addresses of the target's MX hosts."""
        answer = await self._dns(f"MX {target}", lambda: self.resolver.mx(target))
        self._void(answer, m.text)
        # RFC 7208 §5.4: no implicit MX (no A/AAAA lookup of the target when it has no MX).
        names = [r.exchange for r in answer.records if not r.is_null]
        if len(names) > MAX_MX_NAMES:
            # RFC 7208 §4.6.4: "the evaluation of each "MX" record MUST NOT result in
            # querying more than 10 address records [...] If this limit is exceeded, the
            # "mx" mechanism MUST produce a "permerror" result."
            raise TooManyMXNames(
                f"{m.text}: {target} has {len(names)} MX names, at most {MAX_MX_NAMES}"
            )
        for name in names:
            if self._in_network(await self._addresses(name, m.text, void=False), m):
                return True
        return False

    async def _exists(self, target: str, term: str) -> bool:
        """RFC 7208 §5.7: an A lookup, "even when the connection type is IPv6"."""
        answer = await self._dns(f"A {target}", lambda: self.resolver.a(target))
        self._void(answer, term)
        return bool(answer.records)

    async def _validated_names(self, term: str | None) -> list[str]:
        """RFC 7208 §5.5: the <ip>'s PTR names whose addresses include <ip>.

        Errors in the PTR lookup give no names; an error looking up one name's
        addresses skips that name. At most 10 PTR names are tried (§4.6.4).
        """
        if self._ptr_failed:
            return []
        if self._ptr_answer is None:
            try:
                self._ptr_answer = await self.resolver.ptr(self.ip)
            except (DNSTemporaryError, InvalidName):
                self._ptr_failed = True
                return []
            self.authentic = self.authentic and self._ptr_answer.authentic
        answer = self._ptr_answer
        if term is not None:
            # Each "ptr" term whose PTR query found nothing is a void lookup, even when
            # the answer was already at hand.
            self._void(answer, term)
        if self._validated is not None:
            return self._validated
        validated: list[str] = []
        for name in list(answer.records)[:MAX_PTR_NAMES]:
            if domain_problem(name):
                continue
            try:
                if self.ip.version == 4:
                    addrs: Answer[Any] = await self.resolver.a(name)
                else:
                    addrs = await self.resolver.aaaa(name)
            except (DNSTemporaryError, InvalidName):
                continue
            if self.ip in addrs.records:
                self.authentic = self.authentic and addrs.authentic
                validated.append(name.rstrip("."))
        self._validated = validated
        return validated

    async def _ptr(self, target: str, term: str) -> bool:
        """RFC 7208 §5.5: a validated PTR name equals the target or is below it."""
        wanted = target.lower()
        for name in await self._validated_names(term):
            lowered = name.lower()
            if lowered == wanted or lowered.endswith("." + wanted):
                return True
        return False

    async def _p_macro(self, domain: str) -> str:
        """RFC 7208 §7.3 "p": a validated name of <ip>, preferring <domain> or below it."""
        names = await self._validated_names(None)
        if not names:
            return "unknown"
        wanted = domain.lower()
        for name in names:
            if name.lower() == wanted:
                return name
        for name in names:
            if name.lower().endswith("." + wanted):
                return name
        return names[0]

    async def _explain(self, spec: MacroString, ctx: MacroContext) -> str:
        """RFC 7208 §6.2: the exp= explanation; any failure means no explanation.

        "If there are any DNS processing errors (any RCODE other than 0), or if no
        records are returned, or if more than one record is returned, or if there are
        syntax errors in the explanation string, then proceed as if no "exp" modifier
        was given." The lookup does not count against the limits of §4.6.4.
        """
        authentic = self.authentic
        try:
            target = await self._target(spec, ctx, "exp")
            if domain_problem(target):
                return ""
            answer = await self.resolver.txt(target)
            if len(answer.records) != 1:
                return ""
            text = await expand(parse_macro_string(answer.records[0], explain=True), ctx)
        except (SPFError, DNSTemporaryError, InvalidName):
            self.authentic = authentic
            return ""
        self.authentic = authentic and answer.authentic
        return text
