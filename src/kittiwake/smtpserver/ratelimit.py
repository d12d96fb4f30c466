"""Rate limits per IP class: new connections and messages per minute.

(Failed logins have their own policy: :mod:`kittiwake.limits.login`.)

An address is counted in three classes at once, so a spammer cannot escape
by hopping within a network: IPv4 /32, /26 and /21; IPv6 /64, /48 and /32.
Each class has its own limit per window. Windows are fixed-size buckets
(the current and previous one, weighted), which is cheap and smooth enough.
The clock is injected so tests run without waiting.
"""

from __future__ import annotations

import functools
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass, field

IPV4_CLASSES = (32, 26, 21)
IPV6_CLASSES = (64, 48, 32)


@functools.lru_cache(maxsize=8192)
def ip_classes(ip: str) -> tuple[str, ...]:
    """The networks an address belongs to, smallest first (cached: asked several times
    per message, and parsing addresses is not cheap)."""
    address = ipaddress.ip_address(ip)
    prefixes = IPV4_CLASSES if address.version == 4 else IPV6_CLASSES
    return tuple(str(ipaddress.ip_network(f"{address}/{p}", strict=False)) for p in prefixes)


@dataclass
class Limiter:
    """Counts events per key in a sliding window; ``limits`` per IP class."""

    window: float
    limits: tuple[int, int, int]
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    def _count(self, key: str, now: float) -> float:
        index = int(now // self.window)
        bucket, current, previous = self._buckets.get(key, (index, 0, 0))
        if bucket != index:
            previous = current if bucket == index - 1 else 0
            current = 0
        self._buckets[key] = (index, current, previous)
        weight = 1 - (now % self.window) / self.window
        return current + previous * weight

    def allowed(self, ip: str, n: int = 1) -> bool:
        """Whether ``n`` more events from ``ip`` fit in every class's limit."""
        now = self.clock()
        return all(self._count(key, now) + n <= limit
                   for key, limit in zip(ip_classes(ip), self.limits, strict=True))

    def add(self, ip: str, n: int = 1) -> None:
        now = self.clock()
        for key in ip_classes(ip):
            self._count(key, now)
            index, current, previous = self._buckets[key]
            self._buckets[key] = (index, current + n, previous)
        if len(self._buckets) > 100_000:
            self._expire(now)

    def give_back(self, ip: str, n: int = 1) -> None:
        """Uncount ``n`` events taken earlier (:meth:`take`) that did not happen after all:
        from the current window, or from the previous one if the window moved on
        meanwhile (never below zero)."""
        now = self.clock()
        for key in ip_classes(ip):
            if key not in self._buckets:
                continue
            self._count(key, now)  # roll the buckets to now
            index, current, previous = self._buckets[key]
            from_current = min(current, n)
            self._buckets[key] = (index, current - from_current,
                                  max(previous - (n - from_current), 0))

    def take(self, ip: str, n: int = 1) -> bool:
        """Count the events if they fit; False (and nothing counted) if not."""
        if not self.allowed(ip, n):
            return False
        self.add(ip, n)
        return True

    def _expire(self, now: float) -> None:
        index = int(now // self.window)
        for key in [k for k, (b, _c, _p) in self._buckets.items() if b < index - 1]:
            del self._buckets[key]
