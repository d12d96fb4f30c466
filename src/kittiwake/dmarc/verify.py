"""DMARC evaluation: identifier alignment and policy (RFC 7489 §3.1, §6.6.2, §6.6.4).

:func:`verify` discovers the policy (§6.6.3) and hands it to
:func:`evaluate`, which is pure: alignment of the SPF and DKIM results with
the From domain, then the policy and ``pct`` sampling.

What the caller passes:

- ``from_domain``: the Author Domain from :func:`kittiwake.dmarc.from_domain`.
- ``spf``: the SPF result of the **MAIL FROM identity** (RFC 7489 §4.1), an
  object with ``.status`` ("pass", "fail", ...) and ``.domain``, the domain
  that was checked. For a null reverse-path that check is of
  ``postmaster@<HELO domain>`` (RFC 7208 §2.4), so ``.domain`` is the HELO
  domain. Do not pass the result of a separate HELO-identity check (§3.1.2:
  HELO is not used, except to stand in for a null path). ``None`` when SPF
  was not checked.
- ``dkim``: the DKIM results, one per signature, each with ``.status``
  and ``.domain`` (the ``d=`` tag); §6.6.2 step 3.

Statuses may be any str-like values, including enums of other modules.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any

from kittiwake.dmarc.discovery import Discovery, LookupStatus, lookup
from kittiwake.dmarc.record import Alignment, Disposition
from kittiwake.dmarc.result import OverrideReason, Result, Status
from kittiwake.dns.names import to_ascii
from kittiwake.dns.resolver import Resolver
from kittiwake.dns.types import InvalidName
from kittiwake.publicsuffix import organizational_domain

__all__ = ["aligned", "evaluate", "verify"]


def _normal(domain: Any) -> str | None:
    if not isinstance(domain, str) or not domain:
        return None
    try:
        return to_ascii(domain).lower()
    except InvalidName:
        return None


def aligned(domain: str, from_domain: str, mode: Alignment | str) -> bool:
    """Whether an authenticated ``domain`` is in alignment with the From domain.

    Strict: the same name. Relaxed: the same Organizational Domain (RFC 7489
    §3.1.1, §3.1.2). Names compare case-insensitively (§3.1); U-labels and
    A-labels are equivalent; invalid names never align.
    """
    a, b = _normal(domain), _normal(from_domain)
    if a is None or b is None:
        return False
    if a == b:
        return True
    if Alignment(str(mode).lower()) is Alignment.STRICT:
        return False
    return organizational_domain(a) == organizational_domain(b)


def _status(result: Any) -> str:
    status = getattr(result, "status", None)
    status = getattr(status, "value", status)
    return "" if status is None else str(status).strip().lower()


def evaluate(discovery: Discovery, spf: Any, dkim: Iterable[Any] | None, *,
             rand: Callable[[], float] = random.random) -> Result:
    """The DMARC verdict for a message from a discovered policy. No I/O."""
    base: dict[str, Any] = {
        "domain": discovery.domain,
        "policy_domain": discovery.policy_domain,
        "org_domain": discovery.org_domain,
        "record_text": discovery.record,
        "record": discovery.policy,
        "authentic": discovery.authentic,
    }
    if discovery.status is not LookupStatus.FOUND or discovery.policy is None:
        status = {
            LookupStatus.NONE: Status.NONE,
            LookupStatus.TEMPERROR: Status.TEMPERROR,
            LookupStatus.PERMERROR: Status.PERMERROR,
        }.get(discovery.status, Status.NONE)
        return Result(status, reason=discovery.reason, **base)

    record = discovery.policy
    domain = discovery.domain
    # §6.3 "sp": only for subdomains of the domain whose record was found.
    disposition = record.applicable(discovery.subdomain)
    base["policy"] = disposition

    # §3.1.2: SPF aligns when it passed for a MAIL FROM domain in alignment.
    spf_domain = getattr(spf, "domain", None) if spf is not None else None
    spf_status = _status(spf) if spf is not None else ""
    spf_in_line = spf_domain is not None and aligned(spf_domain, domain, record.aspf)
    spf_aligned = spf_in_line and spf_status == "pass"

    # §3.1.1: any DKIM signature that verifies with an aligned d= suffices.
    dkim_aligned_domain: str | None = None
    dkim_temperror = False
    for sig in list(dkim or ()):
        d = getattr(sig, "domain", None)
        if d is None or not aligned(d, domain, record.adkim):
            continue
        if getattr(sig, "testing", False):
            # RFC 6376 §3.6.1 t=y: verifiers "MUST NOT treat messages from Signers in
            # testing mode differently from unsigned email".
            continue
        state = _status(sig)
        if state == "pass" and dkim_aligned_domain is None:
            dkim_aligned_domain = _normal(d)
        elif state == "temperror":
            dkim_temperror = True
    dkim_aligned = dkim_aligned_domain is not None
    base.update(spf_aligned=spf_aligned, dkim_aligned=dkim_aligned,
                dkim_domain=dkim_aligned_domain)

    if spf_aligned or dkim_aligned:
        how = " and ".join(
            x for x, ok in (("SPF", spf_aligned), (f"DKIM d={dkim_aligned_domain}", dkim_aligned))
            if ok)
        return Result(Status.PASS, reason=f"aligned {how} passed", **base)

    # §6.6.2: with no pass and a temporary error in a check whose identifier is
    # aligned (so it could have passed), the policy cannot be applied.
    if (spf_in_line and spf_status == "temperror") or dkim_temperror:
        which = "SPF" if spf_in_line and spf_status == "temperror" else "DKIM"
        return Result(Status.TEMPERROR, reason=f"aligned {which} check had a temporary error",
                      **base)

    # §6.6.4 and §6.3 "pct": apply the policy to pct percent of failing messages.
    selected = True
    if disposition is not Disposition.NONE and record.percentage < 100:
        selected = rand() * 100 < record.percentage
    reject = disposition is Disposition.REJECT and selected
    # §6.6.4: a "reject" spared by sampling is treated as "quarantine".
    quarantine = (disposition is Disposition.QUARANTINE and selected) or (
        disposition is Disposition.REJECT and not selected)
    override = None
    if disposition is not Disposition.NONE and not selected:
        override = OverrideReason.SAMPLED_OUT
    reason = f"no aligned SPF or DKIM pass; policy {disposition}"
    if override:
        reason += f", sampled out by pct={record.percentage}"
    return Result(Status.FAIL, reject=reject, quarantine=quarantine, override=override,
                  reason=reason, **base)


async def verify(resolver: Resolver, from_domain: str, spf: Any, dkim: Iterable[Any] | None,
                 *, rand: Callable[[], float] = random.random) -> Result:
    """Discover the policy of ``from_domain`` (§6.6.3) and evaluate the message (§6.6.2).

    ``rand`` returns a float in [0, 1) for ``pct`` sampling; inject it in tests.
    Never raises for bad domains or DNS failures: see :class:`Result.status`.
    """
    discovery = await lookup(resolver, from_domain)
    return evaluate(discovery, spf, dkim, rand=rand)
