"""The verdict of an SPF check, with its evidence and its Received-SPF field (RFC 7208 §9.1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kittiwake.spf.status import Status


@dataclass(frozen=True)
class Result:
    """What ``check_host()`` / ``verify()`` concluded, and on what.

    ``authentic`` is true only when every DNS answer the verdict used was
    DNSSEC-authentic. ``problem`` explains temperror and permerror (and
    "none"); ``mechanism`` is the term that matched, "redirect=..." when the
    verdict came through a redirect, or "default" when nothing matched.
    """

    status: Status
    domain: str
    identity: str = "mailfrom"  # "mailfrom" or "helo" (RFC 7208 §2.3, §2.4)
    explanation: str = ""  # the exp= text for "fail" (§6.2), else ""
    mechanism: str = ""
    authentic: bool = False
    problem: str = ""
    ip: str = ""
    sender: str = ""  # <sender> as checked (with "postmaster@" added when needed)
    mailfrom: str = ""  # the MAIL FROM as given ("" for the null reverse-path)
    helo: str = ""
    receiver: str = ""
    record: str = ""  # the SPF record of ``domain`` that was evaluated, if any
    lookups: int = 0  # DNS-querying terms counted (§4.6.4)
    void_lookups: int = 0

    def received_spf(self) -> str:
        """The value of a Received-SPF header field for this result (RFC 7208 §9.1)."""
        from kittiwake.spf.header import received_spf_value

        return received_spf_value(self)

    def to_json(self) -> dict[str, Any]:
        return {
            "result": str(self.status),
            "domain": self.domain,
            "explanation": self.explanation,
            "authentic": self.authentic,
            "identity": self.identity,
            "mechanism": self.mechanism,
            "problem": self.problem,
            "ip": self.ip,
            "sender": self.sender,
            "mailfrom": self.mailfrom,
            "helo": self.helo,
            "record": self.record,
            "lookups": self.lookups,
            "void_lookups": self.void_lookups,
            "received_spf": self.received_spf(),
        }
