"""The login limiter's policy, with a fake clock and a sleep that only records."""

from __future__ import annotations

import asyncio

from kittiwake.limits import LoginLimiter, LoginPolicy, source_keys

POLICY = LoginPolicy(window=900, ip_failures_before_delay=3, ip_max_failures=10,
                     network_max_failures=30, account_failures_before_delay=5,
                     max_delay=5.0, trust=86400)


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def limiter(policy: LoginPolicy = POLICY) -> tuple[LoginLimiter, FakeTime]:
    t = FakeTime()
    return LoginLimiter(policy, clock=t.clock, sleep=t.sleep), t


async def attempt(lim: LoginLimiter, ip: str, account: str | None, ok: bool) -> tuple[bool, float]:
    """(refused, delay) of one attempt, recorded with outcome ``ok``."""
    a = await lim.before_attempt(ip, account)
    lim.record(a, ok)
    return a.refused, a.delay


def test_source_keys() -> None:
    assert source_keys("192.0.2.77") == ("192.0.2.77/32", "192.0.2.0/24")
    assert source_keys("2001:db8:1:2::5") == ("2001:db8:1:2::/64", "2001:db8:1::/48")
    assert source_keys("::ffff:192.0.2.77") == ("192.0.2.77/32", "192.0.2.0/24")


async def test_an_address_is_slowed_then_refused_and_recovers() -> None:
    lim, t = limiter()
    results = [await attempt(lim, "198.51.100.7", "alice", ok=False) for _ in range(10)]
    assert [d for _, d in results[:3]] == [0, 0, 0]
    # From the third failure on, each attempt waits longer, up to max_delay; the delays
    # queue behind each other (the fake clock stands still, so they add up).
    assert all(not refused for refused, _ in results)
    assert results[3][1] == 0.5
    assert results[4][1] > results[3][1]
    # The eleventh is refused, whatever the password.
    assert (await lim.before_attempt("198.51.100.7", "alice")).refused
    t.now += 901
    refused, delay = await attempt(lim, "198.51.100.7", "alice", ok=True)
    assert not refused and delay == 0


async def test_parallel_attempts_count_while_in_progress() -> None:
    lim, _t = limiter()
    attempts = await asyncio.gather(*(lim.before_attempt("198.51.100.7", "alice")
                                      for _ in range(20)))
    assert sum(not a.refused for a in attempts) == 10
    assert sum(a.delay > 0 for a in attempts if not a.refused) == 7


async def test_account_failures_slow_strangers_but_never_refuse() -> None:
    lim, _t = limiter()
    for i in range(50):  # 50 addresses in 50 networks, one failure each
        await attempt(lim, f"203.0.{i}.1", "alice", ok=False)
    refused, delay = await attempt(lim, "192.0.2.1", "alice", ok=True)
    assert not refused
    assert delay == POLICY.max_delay  # an unfamiliar place waits ...
    refused, delay = await attempt(lim, "192.0.2.1", "alice", ok=True)
    assert not refused and delay == 0  # ... once: now it is trusted for alice
    # Another account is not slowed by alice's failures.
    assert await attempt(lim, "192.0.2.99", "bob", ok=True) == (False, 0)


async def test_a_trusted_address_is_not_refused_for_its_network() -> None:
    lim, _t = limiter()
    assert await attempt(lim, "192.0.2.10", "alice", ok=True) == (False, 0)
    for i in range(30):  # strangers in the owner's /24, one failure each
        await attempt(lim, f"192.0.2.{100 + i}", "alice", ok=False)
    assert (await lim.before_attempt("192.0.2.200", "bob")).refused
    # The owner's address is familiar for alice: no delay, no refusal.
    assert await attempt(lim, "192.0.2.10", "alice", ok=True) == (False, 0)
    # Another address in the owner's network is not refused for alice, but alice's
    # failures slow it down (it may be a stranger next door).
    assert await attempt(lim, "192.0.2.11", "alice", ok=True) == (False, POLICY.max_delay)


async def test_trust_expires() -> None:
    lim, t = limiter()
    await attempt(lim, "192.0.2.10", "alice", ok=True)
    t.now += 86401
    for i in range(5):
        await attempt(lim, f"203.0.{i}.1", "alice", ok=False)
    refused, delay = await attempt(lim, "192.0.2.10", "alice", ok=True)
    assert not refused and delay > 0


async def test_unknown_login_names_are_counted_like_accounts() -> None:
    lim, _t = limiter()
    for name in ("alice", "nobody@example.org"):
        for i in range(5):
            await attempt(lim, f"203.0.{i}.1", name, ok=False)
    a = await lim.before_attempt("192.0.2.1", "alice")
    b = await lim.before_attempt("192.0.2.2", "nobody@example.org")
    assert (a.refused, a.delay) == (b.refused, b.delay) == (False, 0.5)


async def test_refused_attempts_are_not_counted_and_cancelled_ones_are_forgotten() -> None:
    lim, t = limiter()
    for _ in range(10):
        await attempt(lim, "198.51.100.7", None, ok=False)
    for _ in range(100):
        lim.record(await lim.before_attempt("198.51.100.7", None), ok=False)
    t.now += 901
    assert (await lim.before_attempt("198.51.100.7", None)).refused is False

    async def cancelled_sleep(seconds: float) -> None:
        raise asyncio.CancelledError

    lim2 = LoginLimiter(POLICY, clock=t.clock, sleep=cancelled_sleep)
    for _ in range(3):
        await attempt(lim2, "198.51.100.8", None, ok=False)
    for _ in range(20):
        try:
            await lim2.before_attempt("198.51.100.8", None)
        except asyncio.CancelledError:
            pass
    assert not (await lim2.before_attempt("198.51.100.9", None)).refused
    assert lim2._pending.get("198.51.100.8/32") is None


async def test_memory_stays_bounded_under_a_flood_of_names(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from kittiwake.limits import login

    monkeypatch.setattr(login, "MAX_KEYS", 400)
    lim, t = limiter()
    for i in range(2000):  # made-up login names from a thousand addresses
        await attempt(lim, f"10.{i // 256}.{i % 256}.1", f"user{i}", ok=False)
        t.now += 0.1
    assert sum(k.startswith("account:") for k in lim._failures) <= 400
    # Address counts survive the flood, the oldest too.
    assert len(lim._failures["10.0.0.1/32"]) == 1
