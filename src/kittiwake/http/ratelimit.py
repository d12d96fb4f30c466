"""A per-client request budget for the .mobileconfig profiles.

Answering 404 for an address without an account (and a profile for one
with) tells a client which addresses exist. SMTP tells the same at RCPT TO,
so the profile adds no new kind of leak, but it must not be a faster one: a
client address (IPv4 /32, IPv6 /64) gets ``limit`` requests per minute,
counted in fixed one-minute windows; the next ones get 429.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field

WINDOW = 60.0
MAX_KEYS = 100_000  # clients remembered in one window; beyond it everyone shares one budget


def client_key(ip: str) -> str:
    """IPv4 addresses count alone, IPv6 addresses by /64 (one customer's network)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


@dataclass
class RequestBudget:
    limit: int
    clock: Callable[[], float]
    _window: int = -1
    _counts: dict[str, int] = field(default_factory=dict)

    def take(self, ip: str) -> bool:
        """Count one request of ``ip``; False when it is over the limit of this minute."""
        window = int(self.clock() // WINDOW)
        if window != self._window:
            self._window, self._counts = window, {}
        key = client_key(ip)
        if key not in self._counts and len(self._counts) >= MAX_KEYS:
            key = "*"
        count = self._counts.get(key, 0) + 1
        self._counts[key] = count
        return count <= self.limit

    def retry_after(self) -> int:
        """Seconds until the next window starts."""
        return max(1, int(WINDOW - self.clock() % WINDOW))
