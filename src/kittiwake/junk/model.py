"""Value types of the junk filter: who sent a message, and what the filter decided."""

from __future__ import annotations

import enum
import functools
import ipaddress
from dataclasses import dataclass, field

from kittiwake.message.headers import fold_header


@functools.lru_cache(maxsize=8192)
def _network(ip: str) -> str:
    """(Cached: asked at each message's decision and again when it is recorded, and
    parsing addresses is not cheap.)"""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ""
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


@dataclass(frozen=True)
class SenderIdentities:
    """The verified identities of one incoming message (built by the MX from its checks).

    ``dmarc_domain``: the From domain when DMARC passed (RFC 7489 §3.1 alignment).
    ``verified_domains``: domains an SPF pass (RFC 7208 §2.6.3) or a DKIM pass
    (RFC 6376 §6.1) vouches for. ``address``: the From address when DMARC
    passed, else the MAIL FROM address when SPF passed for its domain; empty
    when neither is verified. ``ip``: the connecting address.
    ``dnsbl_listed``: block-list zones (RFC 5782) that list ``ip``, when known.
    """

    ip: str
    dmarc_domain: str = ""
    verified_domains: frozenset[str] = frozenset()
    address: str = ""
    dnsbl_listed: tuple[str, ...] = ()

    @property
    def network(self) -> str:
        """The /24 (IPv4) or /48 (IPv6) network of the connecting address."""
        return _network(self.ip)


class Action(enum.StrEnum):
    """What happens to the message for one account."""

    ACCEPT = "accept"  # into the mailbox the destination's rules pick
    JUNK = "junk"  # into the Junk mailbox
    REJECT = "reject"  # refused in SMTP (stored in Rejects for rescue)


class Reason(enum.StrEnum):
    """Which signal decided (the ``reason=`` of the header and the log line)."""

    SENT_TO_ADDRESS = "sent-to-address"
    DMARC_DOMAIN = "dmarc-domain-reputation"
    ADDRESS = "address-reputation"
    VERIFIED_DOMAIN = "verified-domain-reputation"
    IP = "ip-reputation"
    NETWORK = "network-reputation"
    DNSBL = "dnsbl"
    CONTENT = "content"
    UNTRAINED = "content-untrained"
    DISABLED = "disabled"


REASONS: tuple[str, ...] = tuple(r.value for r in Reason)
ACTIONS: tuple[str, ...] = tuple(a.value for a in Action)


@dataclass(frozen=True)
class Reject:
    """The SMTP reply for a rejected message (RFC 5321 §4.2, RFC 3463 codes)."""

    code: int
    enhanced: str
    text: str


@dataclass(frozen=True)
class JunkVerdict:
    """The filter's decision for one account, and the evidence it rests on."""

    action: Action
    reason: Reason
    mailbox: str | None = None  # None: the mailbox the destination's rules pick
    score: float | None = None  # the content score, when the classifier decided
    evidence: tuple[tuple[str, str], ...] = ()  # e.g. (("domain", "example.org"),)
    reject: Reject | None = None
    delay: float = 0.0  # seconds to pause before the DATA reply (first-time sender)
    first_time: bool = False
    identities: SenderIdentities | None = None
    message_id: str = ""  # the Message-ID header (for the history)
    already_kept: bool = False  # a retry of a message already in Rejects: store no copy
    words: tuple[tuple[str, float], ...] = field(default=(), compare=False)

    @property
    def verdict_word(self) -> str:
        return "ham" if self.action is Action.ACCEPT else "junk"

    def fields(self) -> dict[str, str]:
        """The verdict as log fields."""
        out = {"verdict": self.verdict_word, "action": str(self.action),
               "reason": str(self.reason)}
        out.update(self.evidence)
        if self.score is not None:
            out["score"] = f"{self.score:.3f}"
        if self.first_time:
            out["first_time"] = "yes"
        return out

    def header(self) -> bytes:
        """``X-Kittiwake-Junk: ham; reason=...; domain=...`` (RFC 5322 §3.6.8 optional field).

        Empty when the filter is off for the account."""
        if self.reason is Reason.DISABLED:
            return b""
        parts = [self.verdict_word, f"reason={self.reason}"]
        parts += [f"{k}={v}" for k, v in self.evidence]
        if self.score is not None:
            parts.append(f"score={self.score:.3f}")
        return fold_header("X-Kittiwake-Junk", "; ".join(parts)).encode("utf-8")
