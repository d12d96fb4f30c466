"""DMARC verdicts: statuses as Authentication-Results names them, and the result object.

The statuses are those registered for the ``dmarc`` method (RFC 7489 §11.2):
``none``, ``pass``, ``fail``, ``temperror``, ``permerror``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from kittiwake.dmarc.record import Disposition, Policy

__all__ = ["OverrideReason", "Result", "Status"]


class Status(enum.StrEnum):
    """The ``dmarc`` method results (RFC 7489 §11.2, RFC 8601 §2.7)."""

    NONE = "none"  # no policy published (or none usable, §6.6.3 step 5)
    PASS = "pass"  # an aligned identifier passed (§4.2)
    FAIL = "fail"  # a policy exists and no aligned identifier passed
    TEMPERROR = "temperror"  # DNS trouble, or an aligned SPF/DKIM check had one (§6.6.2)
    PERMERROR = "permerror"  # e.g. a syntactically invalid record, or a bad From domain


class OverrideReason(enum.StrEnum):
    """Why the policy was not applied as published (RFC 7489 Appendix C,
    ``PolicyOverrideType``), for aggregate reports. RFC 7960 §4 describes
    the indirect flows (forwarders, mailing lists) behind most of them."""

    FORWARDED = "forwarded"
    SAMPLED_OUT = "sampled_out"
    TRUSTED_FORWARDER = "trusted_forwarder"
    MAILING_LIST = "mailing_list"
    LOCAL_POLICY = "local_policy"
    OTHER = "other"


@dataclass(frozen=True)
class Result:
    """The DMARC verdict for one message, with its evidence.

    ``reject`` and ``quarantine`` say what the Domain Owner asked for after
    ``pct`` sampling (§6.6.4): a sampled-out ``p=reject`` becomes
    ``quarantine``. Receivers MAY deviate (§6.7); mail from known forwarders
    and mailing lists often fails DMARC without being forged (RFC 7960 §4),
    so a caller that overrides should report it with an
    :class:`OverrideReason`.
    """

    status: Status
    domain: str  # the From (Author) domain, A-labels; "" when it was unusable
    policy_domain: str | None = None  # where the record was found (From or Organizational)
    org_domain: str | None = None  # the Organizational Domain of ``domain`` (§3.2)
    policy: Disposition | None = None  # the applicable p or sp
    record: Policy | None = None
    record_text: str | None = None
    spf_aligned: bool = False  # SPF passed for an aligned MAIL FROM domain (§3.1.2)
    dkim_aligned: bool = False  # some DKIM signature passed with an aligned d= (§3.1.1)
    dkim_domain: str | None = None  # the first aligned passing d= domain
    reject: bool = False
    quarantine: bool = False
    override: OverrideReason | None = None  # SAMPLED_OUT when pct spared the message
    authentic: bool = False  # every DNS answer behind the policy was DNSSEC-authentic
    reason: str = ""

    @property
    def reportable(self) -> bool:
        """Whether an aggregate report can count this evaluation (RFC 7489 §7.2): a
        pass or fail under a record that names report URIs (``rua``)."""
        return self.record is not None and bool(self.record.aggregate_uris) and \
            bool(self.policy_domain) and self.status in (Status.PASS, Status.FAIL)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "domain": self.domain,
            "policy_domain": self.policy_domain,
            "org_domain": self.org_domain,
            "policy": self.policy.value if self.policy else None,
            "record": self.record_text,
            "parsed": self.record.to_json() if self.record else None,
            "spf_aligned": self.spf_aligned,
            "dkim_aligned": self.dkim_aligned,
            "dkim_domain": self.dkim_domain,
            "reject": self.reject,
            "quarantine": self.quarantine,
            "override": self.override.value if self.override else None,
            "authentic": self.authentic,
            "reason": self.reason,
        }
