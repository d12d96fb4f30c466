"""May this authority issue for a name? The CAA check before ordering (RFC 8659).

RFC 8659 §3: the relevant record set is the CAA RRset of the name itself or,
if it has none, of its closest ancestor that has one (climbing label by
label, not to the root). An empty search result means any authority may
issue. Otherwise only ``issue`` properties count for a non-wildcard name
(§4.2, §4.3); the authority may issue when one of them names one of its
issuer domain names (§4.2: the value before the first ``;``). A property with
the issuer critical flag (bit 0 of the flags, value 128, §4.1) and a tag we
do not know forbids issuance (§4.1). An ``accounturi`` parameter (RFC 8657
§3) restricts the record to that account.

The CA checks this itself; checking before ordering gives a clear error
instead of a failed order and a spent rate limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from kittiwake.dns.resolver import Resolver
from kittiwake.dns.types import CAA, DNSError

KNOWN_TAGS = ("issue", "issuewild", "iodef", "contactemail", "contactphone", "issuemail",
              "issuevmc")
CRITICAL_FLAG = 128


class CAAForbidden(Exception):
    """CAA records do not allow the authority to issue for a name."""


@dataclass(frozen=True)
class CAAResult:
    """What the check found: the owner of the relevant RRset (None: no CAA anywhere)."""

    name: str
    relevant_owner: str | None
    records: tuple[CAA, ...]


def parent_names(name: str) -> list[str]:
    """``a.b.example.org`` -> itself, ``b.example.org``, ``example.org``, ``org`` (§3)."""
    labels = name.rstrip(".").lower().split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


def _issuer(value: str) -> tuple[str, dict[str, str]]:
    """RFC 8659 §4.2: ``issuer-domain-name *(";" parameter)``."""
    domain, *params = value.split(";")
    out: dict[str, str] = {}
    for param in params:
        key, sep, val = param.strip().partition("=")
        if sep:
            out[key.strip().lower()] = val.strip()
    return domain.strip().lower().rstrip("."), out


def allows(records: tuple[CAA, ...], issuers: list[str], account_uri: str | None) -> bool:
    """Whether the relevant RRset lets one of ``issuers`` issue a non-wildcard certificate."""
    for record in records:
        if record.flags & CRITICAL_FLAG and record.tag.lower() not in KNOWN_TAGS:
            return False  # §4.1: unknown property with the issuer critical flag
    issue = [r for r in records if r.tag.lower() == "issue"]
    if not issue:
        return True  # §4.2: no issue property: unrestricted (for this kind of certificate)
    wanted = {i.lower().rstrip(".") for i in issuers}
    for record in issue:
        domain, params = _issuer(record.value)
        if domain and domain in wanted:
            uri = params.get("accounturi")
            if uri is None or (account_uri is not None and uri == account_uri):
                return True
    return False


async def find_relevant(resolver: Resolver, name: str) -> CAAResult:
    """The relevant CAA RRset of ``name`` (§3); DNS failures raise DNSError."""
    for candidate in parent_names(name):
        answer = await resolver.caa(candidate)
        if answer.records:
            return CAAResult(name, candidate, tuple(answer.records))
    return CAAResult(name, None, ())


async def check_issuer(resolver: Resolver, names: list[str], issuers: list[str],
                       account_uri: str | None = None) -> list[CAAResult]:
    """Raise :class:`CAAForbidden` naming the record when CAA forbids any of ``names``."""
    results = []
    for name in names:
        try:
            result = await find_relevant(resolver, name)
        except DNSError as exc:
            # A failed lookup (not NXDOMAIN or an empty answer): the CA would not issue either.
            raise CAAForbidden(f"{name}: CAA lookup failed ({exc}); the authority will"
                               " refuse too, retrying later") from None
        if not allows(result.records, issuers, account_uri):
            shown = "; ".join(str(r) for r in result.records)
            raise CAAForbidden(
                f"{name}: CAA at {result.relevant_owner} ({shown}) does not allow"
                f" {', '.join(issuers)}: add {result.relevant_owner}. CAA 0 issue"
                f' "{issuers[0]}" or remove the listener\'s tls.acme')
        results.append(result)
    return results


# CAA issuer domain names of well-known authorities, by directory host (their CPS say so).
KNOWN_ISSUERS: dict[str, tuple[str, ...]] = {
    "acme-v02.api.letsencrypt.org": ("letsencrypt.org",),
    "acme-staging-v02.api.letsencrypt.org": ("letsencrypt.org",),
    "acme.zerossl.com": ("sectigo.com",),
    "api.buypass.com": ("buypass.com",),
    "dv.acme-v02.api.pki.goog": ("pki.goog",),
}


def issuers_for(directory_url: str, configured: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The configured issuer names, else those known for the directory; () when unknown."""
    if configured:
        return configured
    from urllib.parse import urlsplit

    return KNOWN_ISSUERS.get((urlsplit(directory_url).hostname or "").lower(), ())
