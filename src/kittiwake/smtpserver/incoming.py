"""Checks on incoming (MX) mail and the headers recording them.

iprev (RFC 8601 §3), SPF (RFC 7208) and DKIM (RFC 6376) run concurrently;
DMARC (RFC 7489) then combines SPF and DKIM with the From domain. The
verdict objects become an Authentication-Results header (RFC 8601) and a
Received header (RFC 5321 §4.4) that records TLS and which checks rested on
DNSSEC-authentic answers. A DMARC ``p=reject`` (not sampled out by pct)
turns into ``550 5.7.1`` (RFC 7489 §6.6.4, RFC 7372 5.7.26 for the reason).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from kittiwake import dkim, dmarc, iprev, spf
from kittiwake.junk import SenderIdentities
from kittiwake.message.authres import MethodResult, authentication_results
from kittiwake.message.headers import fold_header
from kittiwake.message.received import received_header, with_protocol
from kittiwake.smtpserver.spool import MessageHead

CHECK_TIMEOUT = 30.0


@dataclass
class Analysis:
    """Everything learned about one incoming message."""

    iprev: iprev.Result | None = None
    spf: spf.Result | None = None
    dkim: list[dkim.Result] = field(default_factory=list)
    dmarc: dmarc.Result | None = None
    author: dmarc.AuthorDomain | None = None
    headers: bytes = b""  # Received + Authentication-Results + Received-SPF, to prepend

    @property
    def verified_domains(self) -> frozenset[str]:
        """Domains an SPF pass or DKIM pass vouches for (rulesets' verified_domain)."""
        out = set()
        if self.spf and self.spf.status == spf.Status.PASS and self.spf.domain:
            out.add(self.spf.domain.lower())
        for r in self.dkim:
            if r.status == dkim.Status.PASS and r.domain:
                out.add(r.domain.lower())
        return frozenset(out)

    @property
    def reject(self) -> bool:
        return bool(self.dmarc and self.dmarc.reject)

    def identities(self, ip: str, mailfrom: str) -> SenderIdentities:
        """The verified identities the junk filter judges the sender by.

        The From address counts when DMARC passed (RFC 7489 §3.1: it is aligned),
        else the MAIL FROM address when SPF passed for its domain (RFC 7208 §2.4).
        """
        dmarc_pass = self.dmarc is not None and self.dmarc.status == dmarc.Status.PASS
        address = ""
        if dmarc_pass and self.author is not None and len(self.author.addresses) == 1:
            address = self.author.addresses[0]
        elif self.spf is not None and self.spf.status == spf.Status.PASS and \
                self.spf.identity == "mailfrom" and mailfrom:
            address = mailfrom
        return SenderIdentities(
            ip=ip, dmarc_domain=self.dmarc.domain if dmarc_pass and self.dmarc else "",
            verified_domains=self.verified_domains, address=address)


@dataclass
class Connection:
    """Facts about the SMTP session that the checks and headers need."""

    ip: str
    helo: str
    hostname: str  # our host name (authserv-id, "by")
    tls_version: str | None = None
    tls_cipher: str | None = None
    authenticated: bool = False
    smtputf8: bool = False
    esmtp: bool = True
    session_id: str = ""


async def _guard(coro: Any) -> Any:
    """The check's result, or None when it takes longer than :data:`CHECK_TIMEOUT`
    (a timeout scope in the caller's task: no task per check, as wait_for makes)."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            return await coro
    except TimeoutError:
        return None


async def _none_on_timeout(coro: Any) -> Any:
    try:
        return await coro
    except TimeoutError:
        return None


async def _concurrently(*coros: Any) -> list[Any]:
    """Each check's result, or None for one that raised TimeoutError or was still
    running :data:`CHECK_TIMEOUT` after they started together (then it is cancelled),
    as :func:`_guard` around each. One timer for all: at the deadline the gather is
    cancelled, which cancels the checks still running and waits for them."""
    tasks = [asyncio.ensure_future(_none_on_timeout(c)) for c in coros]
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            return await asyncio.gather(*tasks)
    except TimeoutError:
        return [None if t.cancelled() else t.result() for t in tasks]


async def analyze(resolver: Any, conn: Connection, mailfrom: str, head: MessageHead,
                  body_hashes: dict[dkim.BodyHashKey, tuple[bytes, int]],
                  recipients: list[str]) -> Analysis:
    """Run the checks on the parsed header and the body hashes computed while the
    body arrived; build the headers to prepend."""
    result = Analysis()
    result.author = dmarc.from_domain([(h.name, h.value) for h in head.headers.fields("from")])
    ip_check, spf_check, dkim_check = await _concurrently(
        iprev.check(resolver, conn.ip),
        spf.verify(resolver, conn.ip, mailfrom, conn.helo, receiver=conn.hostname),
        dkim.verify_parsed(resolver, head.dkim_fields, body_hashes),
    )
    result.iprev = ip_check
    result.spf = spf_check
    result.dkim = list(dkim_check or [])
    if result.author and result.author.ok and result.author.domain:
        result.dmarc = await _guard(dmarc.verify(resolver, result.author.domain, result.spf,
                                                 result.dkim))
    result.headers = (received(conn, result, recipients) +
                      auth_results(conn.hostname, mailfrom, conn.helo, result)).encode("utf-8")
    if result.spf is not None:
        # Folded like the fields beside it (RFC 5322 §2.1.1: lines of at most 78
        # characters where possible); the value is long with its comment.
        result.headers = fold_header("Received-SPF", result.spf.received_spf()).encode(
            "utf-8") + result.headers
    return result


def _dnssec(authentic: bool) -> str | None:
    return "dnssec" if authentic else None


def auth_results(hostname: str, mailfrom: str, helo: str, a: Analysis) -> str:
    """Authentication-Results (RFC 8601 §2.2) from the verdicts."""
    results: list[MethodResult] = []
    if a.iprev is not None:
        results.append(MethodResult("iprev", str(a.iprev.status),
                                    properties=[("policy", "iprev", a.iprev.ip)],
                                    comment=" ".join(x for x in (a.iprev.host,
                                                     _dnssec(a.iprev.authentic)) if x) or None))
    if a.spf is not None:
        prop = ("smtp", "mailfrom", mailfrom) if a.spf.identity == "mailfrom" and mailfrom \
            else ("smtp", "helo", helo)
        results.append(MethodResult("spf", str(a.spf.status), properties=[prop],
                                    reason=a.spf.problem or None,
                                    comment=_dnssec(a.spf.authentic)))
    if not a.dkim:
        results.append(MethodResult("dkim", "none"))
    for d in a.dkim:
        props = [("header", "d", d.domain), ("header", "s", d.selector),
                 ("header", "a", d.algorithm)]
        if d.header_b:
            props.append(("header", "b", d.header_b))
        results.append(MethodResult("dkim", str(d.status), properties=[p for p in props if p[2]],
                                    reason=d.error or None, comment=_dnssec(d.authentic)))
    if a.dmarc is not None:
        results.append(MethodResult("dmarc", str(a.dmarc.status),
                                    properties=[("header", "from", a.dmarc.domain or "")],
                                    reason=a.dmarc.reason or None,
                                    comment=_dnssec(a.dmarc.authentic)))
    elif a.author is not None and a.author.dmarc_status():
        results.append(MethodResult("dmarc", a.author.dmarc_status(), reason=a.author.detail))
    return authentication_results(hostname, results)


def received(conn: Connection, a: Analysis, recipients: list[str]) -> str:
    """The Received header: TLS details, and which checks DNSSEC backed."""
    backed = []
    if a.iprev is not None:
        backed.append(f"iprev {'dnssec' if a.iprev.authentic else 'insecure'}")
    if a.spf is not None:
        backed.append(f"spf {'dnssec' if a.spf.authentic else 'insecure'}")
    if a.dkim:
        backed.append("dkim " + ("dnssec" if all(d.authentic for d in a.dkim) else "insecure"))
    if a.dmarc is not None:
        backed.append(f"dmarc {'dnssec' if a.dmarc.authentic else 'insecure'}")
    return received_header(
        by=conn.hostname, date=dt.datetime.now(dt.UTC), helo=conn.helo, ip=conn.ip,
        rdns=a.iprev.host if a.iprev is not None and a.iprev.host else None,
        protocol=with_protocol(esmtp=conn.esmtp, tls=conn.tls_version is not None,
                               authenticated=conn.authenticated, smtputf8=conn.smtputf8),
        id=conn.session_id or None,
        for_rcpt=recipients[0] if len(recipients) == 1 else None,
        tls_version=conn.tls_version, tls_cipher=conn.tls_cipher,
        comment=", ".join(backed) or None)


def submission_received(conn: Connection, recipients: list[str]) -> bytes:
    """Received header for submitted mail (no checks)."""
    return received_header(
        by=conn.hostname, date=dt.datetime.now(dt.UTC), helo=conn.helo, ip=conn.ip,
        protocol=with_protocol(esmtp=conn.esmtp, tls=conn.tls_version is not None,
                               authenticated=conn.authenticated, smtputf8=conn.smtputf8),
        id=conn.session_id or None,
        for_rcpt=recipients[0] if len(recipients) == 1 else None,
        tls_version=conn.tls_version, tls_cipher=conn.tls_cipher).encode("utf-8")
