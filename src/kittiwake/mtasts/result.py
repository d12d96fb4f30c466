"""What a policy fetch gives (RFC 8461 §3.3): a policy, or the TLSRPT failure type
(RFC 8460 §4.3.2.2) and the reason. Apart from the HTTPS client so that the
queue and the reports can name results without importing aiohttp."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from kittiwake.mtasts.policy import Policy


class FailureType(enum.StrEnum):
    """Policy failures as TLSRPT result types (RFC 8460 §4.3.2.2)."""

    STS_POLICY_FETCH_ERROR = "sts-policy-fetch-error"
    STS_POLICY_INVALID = "sts-policy-invalid"
    STS_WEBPKI_INVALID = "sts-webpki-invalid"


@dataclass(frozen=True)
class FetchResult:
    """A policy, or why there is none: ``failure`` (TLSRPT type) and ``reason``."""

    domain: str
    url: str
    policy: Policy | None
    failure: FailureType | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.policy is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "policy": self.policy.to_json() if self.policy else None,
            "failure": self.failure.value if self.failure else None,
            "reason": self.reason,
        }
