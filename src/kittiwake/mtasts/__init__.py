"""MTA-STS for outgoing mail (RFC 8461).

A recipient domain announces a policy with a ``_mta-sts`` TXT record
(:mod:`.record`) and serves it over HTTPS (:mod:`.fetch`, :mod:`.policy`).
The SMTP client asks :meth:`PolicyCache.get_policy` before delivering: in
``enforce`` mode only MX hosts the policy allows (:func:`mx_allowed`) may be
used, and only with PKIX-valid TLS.
"""

from kittiwake.mtasts.cache import CachedPolicy, PolicyCache, PolicyResult
from kittiwake.mtasts.fetch import (
    MAX_POLICY_SIZE,
    DNSResolver,
    FailureType,
    FetchResult,
    HostMap,
    fetch_policy,
    make_session,
    policy_url,
)
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

__all__ = [
    "MAX_MAX_AGE", "MAX_POLICY_SIZE", "CachedPolicy", "DNSResolver", "FailureType",
    "FetchResult", "HostMap", "Mode", "Policy", "PolicyCache", "PolicyError", "PolicyResult",
    "RecordError", "RecordLookup", "STSRecord", "build_policy", "fetch_policy",
    "lookup_record", "make_session", "mx_allowed", "mx_pattern", "parse_policy",
    "parse_record", "policy_id_for", "policy_url", "select_record",
]
