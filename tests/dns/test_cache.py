"""The in-process answer cache: within TTL, negative answers briefly, errors never."""

from __future__ import annotations

import asyncio

import pytest

from kittiwake.dns import Answer, DNSTemporaryError, RRType, Status
from kittiwake.dns.cache import MAX_TTL, AnswerCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def found(ttl: int) -> Answer[str]:
    return Answer("example.org", RRType.TXT, ("v=spf1 -all",), False, Status.FOUND, ttl=ttl)


async def test_answer_kept_for_its_ttl_then_asked_again() -> None:
    clock = Clock()
    cache = AnswerCache(clock)
    asked = 0

    async def fetch() -> Answer[str]:
        nonlocal asked
        asked += 1
        return found(60)

    await cache.get(RRType.TXT, "Example.org", fetch)
    await cache.get(RRType.TXT, "example.org", fetch)
    assert asked == 1
    clock.now += 61
    await cache.get(RRType.TXT, "example.org", fetch)
    assert asked == 2


async def test_long_ttl_capped_negative_short_errors_not_kept() -> None:
    clock = Clock()
    cache = AnswerCache(clock)
    calls: list[str] = []

    async def long() -> Answer[str]:
        calls.append("long")
        return found(86400)

    async def nxdomain() -> Answer[str]:  # its SOA said 45 s (RFC 2308 §5)
        calls.append("nx")
        return Answer("nx.example", RRType.TXT, (), False, Status.NXDOMAIN, ttl=45)

    async def failing() -> Answer[str]:
        calls.append("fail")
        raise DNSTemporaryError("t.example", RRType.TXT, "timeout")

    await cache.get(RRType.TXT, "a.example", long)
    await cache.get(RRType.TXT, "nx.example", nxdomain)
    for _ in range(2):
        with pytest.raises(DNSTemporaryError):
            await cache.get(RRType.TXT, "t.example", failing)
    await cache.get(RRType.TXT, "nx.example", nxdomain)  # kept
    clock.now += 46
    await cache.get(RRType.TXT, "nx.example", nxdomain)
    await cache.get(RRType.TXT, "a.example", long)
    clock.now += MAX_TTL
    await cache.get(RRType.TXT, "a.example", long)
    assert calls == ["long", "nx", "fail", "fail", "nx", "long"]


async def test_concurrent_lookups_share_one_query() -> None:
    cache = AnswerCache(Clock())
    release = asyncio.Event()
    asked = 0

    async def fetch() -> Answer[str]:
        nonlocal asked
        asked += 1
        await release.wait()
        return found(60)

    tasks = [asyncio.ensure_future(cache.get(RRType.TXT, "example.org", fetch))
             for _ in range(5)]
    await asyncio.sleep(0)
    release.set()
    answers = await asyncio.gather(*tasks)
    assert asked == 1 and all(a.records == ("v=spf1 -all",) for a in answers)


async def test_bounded_size_drops_least_recently_used() -> None:
    cache = AnswerCache(Clock(), max_entries=2)
    asked: list[str] = []

    def fetcher(name: str):  # type: ignore[no-untyped-def]
        async def fetch() -> Answer[str]:
            asked.append(name)
            return found(60)
        return fetch

    for name in ("a", "b", "a", "c", "a", "b"):
        await cache.get(RRType.TXT, name, fetcher(name))
    assert asked == ["a", "b", "c", "b"]


async def test_negative_answers_without_a_time_are_not_kept() -> None:
    """RFC 2308 §5: a negative answer without an SOA SHOULD NOT be cached, and one
    whose SOA gives 0 is not to be kept either."""
    cache = AnswerCache(Clock())
    calls: list[str] = []

    def negative(name: str, status: Status, ttl: int):  # type: ignore[no-untyped-def]
        async def fetch() -> Answer[str]:
            calls.append(name)
            return Answer(name, RRType.TXT, (), False, status, ttl=ttl)
        return fetch

    for name, status, ttl in (("nosoa.example", Status.NXDOMAIN, 0),
                              ("zero.example", Status.NODATA, 0),
                              ("kept.example", Status.NODATA, 30)):
        for _ in range(2):
            await cache.get(RRType.TXT, name, negative(name, status, ttl))
    assert calls == ["nosoa.example", "nosoa.example", "zero.example", "zero.example",
                     "kept.example"]
