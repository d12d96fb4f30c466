"""Open connections per IP address and for the whole process.

One :class:`ConnectionSlots` is shared by every listener of the process. A
listener asks for a slot when it accepts a connection; it gets a
:class:`Slot`, which it releases exactly once when the connection ends, or a
:class:`Refusal`, which holds nothing and has nothing to release. (Counting
a refused connection's end as a release was the leak this shape prevents:
every refusal would have freed another connection's slot.)

An IPv6 client is counted per /64, the block one host usually has, so it
cannot escape the per-IP limit by hopping addresses.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from kittiwake.limits.login import source_keys


class Refusal(enum.StrEnum):
    """Which limit a refused connection hit."""

    PER_IP = "per-ip"
    TOTAL = "total"


@dataclass
class Slot:
    """A counted open connection; :meth:`release` gives it back (once; again is a no-op)."""

    key: str  # the address, or an IPv6 /64
    _owner: ConnectionSlots
    _held: bool = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._owner._release(self.key)


@dataclass
class ConnectionSlots:
    """At most ``max_total`` connections in all, ``max_per_ip`` from one address."""

    max_total: int = 1000
    max_per_ip: int = 20
    _per_ip: dict[str, int] = field(default_factory=dict)
    _total: int = 0

    def acquire(self, ip: str) -> Slot | Refusal:
        """A slot for a new connection from ``ip``, or which limit refuses it."""
        if self._total >= self.max_total:
            return Refusal.TOTAL
        key = _key(ip)
        open_here = self._per_ip.get(key, 0)
        if open_here >= self.max_per_ip:
            return Refusal.PER_IP
        self._per_ip[key] = open_here + 1
        self._total += 1
        return Slot(key, self)

    def open_from(self, ip: str) -> int:
        """Connections from ``ip`` (IPv6: its /64) holding a slot now."""
        return self._per_ip.get(_key(ip), 0)

    @property
    def total(self) -> int:
        """Connections holding a slot now."""
        return self._total

    def _release(self, key: str) -> None:
        left = self._per_ip.get(key, 0) - 1
        if left > 0:
            self._per_ip[key] = left
        else:
            self._per_ip.pop(key, None)
        self._total = max(0, self._total - 1)


def _key(ip: str) -> str:
    try:
        return source_keys(ip)[0]
    except ValueError:  # not an address (no peer name): count it under what we have
        return ip
