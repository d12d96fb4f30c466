"""Failed-login limits: password guessing gets slow, the owner never gets locked out.

RFC 4954 §4 and RFC 9051 §6.2 leave the defence against guessing to the
server. A plain "N failures and the account is locked" rule hands that lock
to anyone who knows a login name: a few dozen wrong passwords from a few
addresses would keep the owner out, repeatably. So this module counts in
three places and gives each count a different power.

Every failed login is counted, for ``window`` seconds (sliding), under:

- its **address**: an IPv4 address, or the IPv6 /64 (one host usually has a
  whole /64 and can hop within it);
- its **network**: the IPv4 /24 or the IPv6 /48;
- the **account**: the caller resolves every login name (the account's name,
  each of its addresses) to the account, so ``alice`` and ``alice@example.org``
  share one count. A login name that is no account is counted under the name
  itself, so the answers look the same whether an account exists or not.

What an attempt gets, in :meth:`LoginLimiter.before_attempt`:

1. **Its address pays for its own failures.** From ``ip_failures_before_delay``
   failures on, each attempt from the address waits, doubling from 0.5 s up to
   ``max_delay``; attempts from one address are spaced by that delay, so
   parallel connections gain nothing. At ``ip_max_failures`` the address is
   refused until its failures age out of the window.
2. **Its network** is refused at ``network_max_failures`` failures, except
   for addresses trusted for the account (4).
3. **The account's count only slows, never refuses.** From
   ``account_failures_before_delay`` failures on the account (from anywhere),
   attempts from sources not trusted for it wait, doubling up to
   ``max_delay``. Strangers' failures make guessing from new places slow; they
   cannot keep the owner out.
4. **Trust.** A successful login makes its address familiar for that account
   for ``trust`` seconds, and its network too. From a familiar address the
   account's count does not slow the owner; from a familiar network the
   network's count does not refuse them (strangers in that network are still
   slowed by the account's count). Only the address's own failures count
   against it everywhere. Trust lives in memory (a restart forgets it; the
   account count then still only slows).

A refusal is answered like a wrong password, after ``max_delay``, so a
refused guesser learns nothing from it, not even that it was refused; the
protocol driver must send its ordinary "authentication failed" reply.
Refused attempts test no password and are not counted. Attempts in progress
count as failures until recorded, so N parallel guesses from one address get
no further than N sequential ones.

The API is protocol-neutral (SMTP AUTH now, IMAP LOGIN/AUTHENTICATE next)::

    attempt = await limiter.before_attempt(ip, account)   # waits out the delay
    if attempt.refused: reply "authentication failed" (whatever the password was)
    else: limiter.record(attempt, ok); reply with the real outcome

The clock and the sleep are injected, so tests need not wait.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

FIRST_DELAY = 0.5  # seconds; each further failure doubles it, up to max_delay
MAX_KEYS = 100_000  # above this many tracked keys, stale ones are dropped (once a minute)
SWEEP_INTERVAL = 60.0
MAX_REMEMBERED = 1024  # failures kept per key (every limit is far below this)


@dataclass(frozen=True)
class LoginPolicy:
    """The numbers of the policy in the module docstring (kittiwake.conf ``[limits.login]``)."""

    window: float = 15 * 60.0
    ip_failures_before_delay: int = 3
    ip_max_failures: int = 10
    network_max_failures: int = 30
    account_failures_before_delay: int = 5
    max_delay: float = 5.0
    trust: float = 30 * 86400.0


@functools.lru_cache(maxsize=8192)
def source_keys(ip: str) -> tuple[str, str]:
    """(address key, network key): IPv4 /32 and /24, IPv6 /64 and /48 (cached)."""
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    own, network = (32, 24) if address.version == 4 else (64, 48)
    return (str(ipaddress.ip_network(f"{address}/{own}", strict=False)),
            str(ipaddress.ip_network(f"{address}/{network}", strict=False)))


def _growing_delay(count: int, threshold: int, cap: float) -> float:
    if count < threshold:
        return 0.0
    return min(cap, FIRST_DELAY * 2.0 ** min(count - threshold, 32))


@dataclass
class Attempt:
    """One login attempt, from :meth:`LoginLimiter.before_attempt` to :meth:`LoginLimiter.record`.

    ``reason`` says why it was refused (``"address"`` or ``"network"``), for the log only.
    """

    ip: str
    account: str | None
    address_key: str
    network_key: str
    started: float
    delay: float = 0.0
    refused: bool = False
    reason: str = ""
    recorded: bool = False


@dataclass
class LoginLimiter:
    """Counts failed logins and decides each attempt's delay or refusal (module docstring)."""

    policy: LoginPolicy = field(default_factory=LoginPolicy)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _pending: dict[str, list[float]] = field(default_factory=dict)
    _trusted: dict[tuple[str, str], float] = field(default_factory=dict)  # -> until
    _address_free_at: dict[str, float] = field(default_factory=dict)
    _next_sweep: float = 0.0

    async def before_attempt(self, ip: str, account: str | None) -> Attempt:
        """Decide an attempt by ``ip`` on ``account`` (the account, or the login name
        when it is no account; None when unknown), wait its delay and return it.

        Unless refused, the attempt must then be passed to :meth:`record`.
        """
        now = self.clock()
        address_key, network_key = source_keys(ip)
        attempt = Attempt(ip, account, address_key, network_key, now)
        p = self.policy
        familiar_address = self._is_trusted(account, address_key, now)
        familiar_network = familiar_address or self._is_trusted(account, network_key, now)
        address_count = self._count(address_key, now)
        if address_count >= p.ip_max_failures:
            attempt.refused, attempt.reason = True, "address"
        elif not familiar_network and self._count(network_key, now) >= p.network_max_failures:
            attempt.refused, attempt.reason = True, "network"
        own_delay = p.max_delay if attempt.refused else \
            _growing_delay(address_count, p.ip_failures_before_delay, p.max_delay)
        wait = 0.0
        if own_delay > 0:
            # One address's attempts queue behind each other: parallel connections gain nothing.
            start = max(now, self._address_free_at.get(address_key, now))
            self._address_free_at[address_key] = start + own_delay
            wait = start + own_delay - now
        if account is not None and not familiar_address and not attempt.refused:
            wait = max(wait, _growing_delay(self._count(_account_key(account), now),
                                            p.account_failures_before_delay, p.max_delay))
        attempt.delay = wait
        if not attempt.refused:
            for key in self._keys(attempt):
                self._pending.setdefault(key, []).append(now)
        if wait > 0:
            try:
                await self.sleep(wait)
            except BaseException:
                self._forget_pending(attempt)
                raise
        return attempt

    def record(self, attempt: Attempt, ok: bool) -> None:
        """The outcome of an attempt that was not refused: a failure counts, a success trusts."""
        if attempt.refused or attempt.recorded:
            return
        attempt.recorded = True
        self._forget_pending(attempt)
        now = self.clock()
        if ok:
            if attempt.account is not None:
                until = now + self.policy.trust
                account = _account_key(attempt.account)
                self._trusted[(account, attempt.address_key)] = until
                self._trusted[(account, attempt.network_key)] = until
        else:
            for key in self._keys(attempt):
                self._failures.setdefault(key, deque(maxlen=MAX_REMEMBERED)).append(now)
        if now >= self._next_sweep and len(self._failures) + len(self._pending) + \
                len(self._trusted) + len(self._address_free_at) > MAX_KEYS:
            self._next_sweep = now + SWEEP_INTERVAL
            self._drop_stale(now)

    # --- counting -------------------------------------------------------------

    @staticmethod
    def _keys(attempt: Attempt) -> list[str]:
        keys = [attempt.address_key, attempt.network_key]
        if attempt.account is not None:
            keys.append(_account_key(attempt.account))
        return keys

    def _count(self, key: str, now: float) -> int:
        """Failures within the window plus attempts still in progress."""
        window = self.policy.window
        failures = self._failures.get(key)
        if failures is not None:
            while failures and now - failures[0] >= window:
                failures.popleft()
        pending = self._pending.get(key)
        in_progress = sum(1 for t in pending if now - t < window) if pending else 0
        return (len(failures) if failures else 0) + in_progress

    def _is_trusted(self, account: str | None, key: str, now: float) -> bool:
        """Whether ``key`` (an address or network) logged in to ``account`` recently."""
        if account is None:
            return False
        return self._trusted.get((_account_key(account), key), 0.0) > now

    def _forget_pending(self, attempt: Attempt) -> None:
        for key in self._keys(attempt):
            pending = self._pending.get(key)
            if pending and attempt.started in pending:
                pending.remove(attempt.started)
            if not pending:
                self._pending.pop(key, None)

    def _drop_stale(self, now: float) -> None:
        """Forget what no longer counts; past MAX_KEYS even then, the oldest counts.

        (A flood of made-up login names could only flush account counts that way,
        which slow and never refuse; address counts need failures from the address.)
        """
        window = self.policy.window
        for key in [k for k, d in self._failures.items() if not d or now - d[-1] >= window]:
            del self._failures[key]
        for key in [k for k, ts in self._pending.items() if all(now - t >= window for t in ts)]:
            del self._pending[key]
        excess = len(self._failures) - MAX_KEYS * 3 // 4
        for key in [k for k in self._failures if k.startswith("account:")][:max(0, excess)]:
            del self._failures[key]
        for pair in [k for k, until in self._trusted.items() if until <= now]:
            del self._trusted[pair]
        for key in [k for k, t in self._address_free_at.items() if t <= now]:
            del self._address_free_at[key]


def _account_key(account: str) -> str:
    """Accounts and login names share one namespace, apart from the address keys."""
    return "account:" + account.casefold()
