"""The MTA-STS policy a domain publishes (RFC 8461 §3), from domains.conf.

Served at ``https://mta-sts.DOMAIN/.well-known/mta-sts.txt`` (§3.3) with the
mode and max_age of ``[domains.DOMAIN.mta_sts]`` and as ``mx`` lines the host
names of our listeners that serve smtp, then the configured extra patterns.
The TXT record ``_mta-sts.DOMAIN`` must carry :attr:`PublishedPolicy.id`:
the configured ``policy_id``, or (empty) one derived from the policy text
(:func:`kittiwake.mtasts.policy_id_for`), so that it changes exactly when
the policy does. ``config dnsrecords``/``quickstart`` and ``dnscheck`` call
:func:`published_policy` to print and compare the same id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kittiwake.config.domains import MTASTSPolicy
from kittiwake.mtasts import Mode, Policy, PolicyError, build_policy, policy_id_for


class PolicyUnavailable(Exception):
    """The domain's policy cannot be served (e.g. no mx at all); the reason in words."""


@dataclass(frozen=True)
class PublishedPolicy:
    """A domain's policy: the file text, and the id for its ``_mta-sts`` TXT record."""

    policy: Policy
    id: str

    @property
    def text(self) -> str:
        return self.policy.text

    @property
    def txt_record(self) -> str:
        """The TXT record value (RFC 8461 §3.1)."""
        return f"v=STSv1; id={self.id}"


def published_policy(settings: MTASTSPolicy, mx_hosts: Sequence[str]) -> PublishedPolicy:
    """The policy for ``settings`` when our smtp listeners' host names are ``mx_hosts``.

    Raises :class:`PolicyUnavailable` when a mode other than ``none`` has no
    mx line at all (RFC 8461 §3.2 needs one) or a pattern is not a domain.
    """
    mode = Mode(settings.mode)
    try:
        policy = build_policy(mode, settings.max_age_seconds, [*mx_hosts, *settings.mx])
    except PolicyError as exc:
        raise PolicyUnavailable(str(exc)) from None
    if not policy.mx and mode is not Mode.NONE:
        raise PolicyUnavailable(f"mode {mode} needs an mx line: no listener serves smtp and"
                                " mta_sts.mx is empty")
    return PublishedPolicy(policy, settings.policy_id or policy_id_for(policy.text))
