"""Publishing an MTA-STS policy (RFC 8461 §3): the policy file and its TXT id.

The receiving side of :mod:`kittiwake.mtasts`: what a domain serves at
``https://mta-sts.DOMAIN/.well-known/mta-sts.txt`` (§3.2, §3.3) and the id
announced in its ``_mta-sts`` TXT record (§3.1). Senders fetch the policy
again only when the id changes, so the id must change whenever the policy
text does: :func:`policy_id_for` derives it from the text itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from kittiwake.mtasts.policy import Mode, Policy, _mx_pattern

# RFC 8461 §3.1: sts-id = %s"id=" 1*32(ALPHA / DIGIT). 32 hex digits are 128 bits.
POLICY_ID_LENGTH = 32


def policy_id_for(policy_text: str) -> str:
    """The TXT record id for a policy file: the first 32 hex digits of its SHA-256.

    Any change to the text (mode, an mx line, max_age) gives another id, and
    the same text always gives the same one, across restarts and machines:
    ``config dnsrecords`` prints it and the HTTPS server serves the text.
    """
    return hashlib.sha256(policy_text.encode("utf-8")).hexdigest()[:POLICY_ID_LENGTH]


def mx_pattern(value: str) -> str:
    """An ``mx`` value checked and in A-label form: a host name or ``*.`` + a domain.

    Raises :class:`~kittiwake.mtasts.policy.PolicyError` (RFC 8461 §3.2).
    """
    return _mx_pattern(value)


def build_policy(mode: Mode | str, max_age: int, mx: Iterable[str]) -> Policy:
    """The policy to serve; ``mx`` patterns in order, duplicates dropped (RFC 8461 §3.2)."""
    patterns: list[str] = []
    for value in mx:
        pattern = mx_pattern(value)
        if pattern not in patterns:
            patterns.append(pattern)
    policy = Policy(Mode(mode), max_age, tuple(patterns))
    return Policy(policy.mode, policy.max_age, policy.mx, policy.version, policy.to_text())
