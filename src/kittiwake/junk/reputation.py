"""Sender reputation from the account's own history (pure: tallies in, decision out).

The identities of a message are looked at from the most to the least
specific: an address the account wrote to, the verified sender address,
the DMARC-aligned From domain (RFC 7489 §3.1), the SPF/DKIM-verified
domains (RFC 7208 §2.6.3, RFC 6376 §6.1), the connecting IP, and its /24
(IPv4) or /48 (IPv6). The first identity whose past messages the user
classified clearly one way decides; one with mixed history passes the
question on to the next. Identities many senders share (a domain, a
network) need two classified messages before they decide: one rescued
message from a big provider's domain should not vouch for all its users.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kittiwake.junk.database import Tally
from kittiwake.junk.history import Class
from kittiwake.junk.model import Reason

# A clear history: at least this share of the classified messages one way.
CLEAR_SHARE = 0.75
# Classified messages needed before an identity decides (a network is shared
# by more senders than an address, so it needs more).
MIN_CLASSIFIED = {Reason.DMARC_DOMAIN: 2, Reason.VERIFIED_DOMAIN: 2, Reason.NETWORK: 2}


@dataclass(frozen=True)
class Signal:
    """The history of one identity of the message."""

    reason: Reason
    key: str  # the evidence field name: domain, address, ip, net
    value: str
    tally: Tally


@dataclass(frozen=True)
class Decision:
    cls: Class
    signal: Signal


def decide(sent_to_address: str, signals: Iterable[Signal]) -> Decision | None:
    """The first clear signal, or None when the history says nothing clear.

    ``signals`` is taken one at a time and no further than the deciding one (a
    sender the account wrote to takes none), so its tallies may be read lazily."""
    if sent_to_address:
        return Decision(Class.HAM, Signal(Reason.SENT_TO_ADDRESS, "address", sent_to_address,
                                          Tally()))
    for signal in signals:
        classified = signal.tally.ham + signal.tally.junk
        if classified < MIN_CLASSIFIED.get(signal.reason, 1):
            continue
        if signal.tally.ham / classified >= CLEAR_SHARE:
            return Decision(Class.HAM, signal)
        if signal.tally.junk / classified >= CLEAR_SHARE:
            return Decision(Class.JUNK, signal)
    return None


def first_time(signals: list[Signal]) -> bool:
    """No message from any of the identities before (classified or not)."""
    return all(s.tally.total == 0 for s in signals)
