"""MTA-STS for outgoing mail (RFC 8461).

A recipient domain announces a policy with a ``_mta-sts`` TXT record
(:mod:`.record`) and serves it over HTTPS (:mod:`.fetch`, :mod:`.policy`).
The SMTP client asks :meth:`PolicyCache.get_policy` before delivering: in
``enforce`` mode only MX hosts the policy allows (:func:`mx_allowed`) may be
used, and only with PKIX-valid TLS.

The HTTPS client (:mod:`.https`: :class:`HostMap`, :class:`DNSResolver`,
:func:`make_session`) is on aiohttp and imported when first asked for
(PEP 562 ``__getattr__``), so that importing this package does not load it.
"""

from typing import Any

from kittiwake.mtasts.cache import CachedPolicy, PolicyCache, PolicyResult
from kittiwake.mtasts.fetch import MAX_POLICY_SIZE, fetch_policy, policy_url
from kittiwake.mtasts.policy import MAX_MAX_AGE, Mode, Policy, PolicyError, mx_allowed, parse_policy
from kittiwake.mtasts.publish import build_policy, mx_pattern, policy_id_for
from kittiwake.mtasts.record import (
    RecordError,
    RecordLookup,
    STSRecord,
    lookup_record,
    parse_record,
    select_record,
)
from kittiwake.mtasts.result import FailureType, FetchResult

__all__ = [
    "MAX_MAX_AGE", "MAX_POLICY_SIZE", "CachedPolicy", "DNSResolver", "FailureType",
    "FetchResult", "HostMap", "Mode", "Policy", "PolicyCache", "PolicyError", "PolicyResult",
    "RecordError", "RecordLookup", "STSRecord", "build_policy", "fetch_policy",
    "lookup_record", "make_session", "mx_allowed", "mx_pattern", "parse_policy",
    "parse_record", "policy_id_for", "policy_url", "select_record",
]

_HTTPS = ("DNSResolver", "HostMap", "make_session")


def __getattr__(name: str) -> Any:
    if name in _HTTPS:
        from kittiwake.mtasts import https

        return getattr(https, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
