"""Policy discovery with the SQLite cache (RFC 8461 §5.1, §10.2), against the loopback
HTTPS server and the mock resolver."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from kittiwake.dns import MockResolver, RRType
from kittiwake.mtasts import FailureType, Mode, PolicyCache, fetch_policy

from .conftest import PolicyServer

T0 = 1_800_000_000.0
DAY = 86400.0


def policy(mode: str = "enforce", mx: str = "mx.example.org", max_age: int = 7 * 86400) -> str:
    return f"version: STSv1\nmode: {mode}\nmx: {mx}\nmax_age: {max_age}\n"


@pytest.fixture
async def session(policy_server: PolicyServer) -> AsyncIterator[aiohttp.ClientSession]:
    async with policy_server.session() as client:
        yield client


@pytest.fixture
def cache(tmp_path: Path, session: aiohttp.ClientSession) -> PolicyCache:
    return PolicyCache(tmp_path, fetch=lambda domain: fetch_policy(domain, session))


def publish(resolver: MockResolver, ident: str, domain: str = "example.org",
            authentic: bool = False) -> None:
    """Replace the domain's ``_mta-sts`` record with one for policy id ``ident``."""
    resolver.records.pop((RRType.TXT, f"_mta-sts.{domain}"), None)
    resolver.add("TXT", f"_mta-sts.{domain}", f"v=STSv1; id={ident}", authentic=authentic)


async def test_first_fetch_then_cached(cache: PolicyCache, policy_server: PolicyServer,
                                       mock_resolver: MockResolver) -> None:
    publish(mock_resolver, "one", authentic=True)
    policy_server.serve("example.org", policy())
    first = await cache.get_policy(mock_resolver, "example.org", T0)
    assert first.policy is not None and first.enforce and not first.from_cache
    assert first.authentic and first.policy_id == "one" and first.failure is None
    assert first.mx_allowed("mx.example.org") and not first.mx_allowed("evil.example")
    second = await cache.get_policy(mock_resolver, "Example.ORG", T0 + DAY)
    assert second.from_cache and second.policy == first.policy
    assert policy_server.count("example.org") == 1
    assert (cache.path.name, cache.path.exists()) == ("mtasts.db", True)
    mode = sqlite3.connect(cache.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


async def test_id_change_triggers_refetch(cache: PolicyCache, policy_server: PolicyServer,
                                          mock_resolver: MockResolver) -> None:
    publish(mock_resolver, "one")
    policy_server.serve("example.org", policy())
    await cache.get_policy(mock_resolver, "example.org", T0)
    publish(mock_resolver, "two")
    policy_server.serve("example.org", policy("testing", "*.example.org"))
    result = await cache.get_policy(mock_resolver, "example.org", T0 + 60)
    assert not result.from_cache and result.policy_id == "two"
    assert result.policy is not None and result.policy.mode is Mode.TESTING
    assert policy_server.count("example.org") == 2


async def test_first_fetch_failing_means_no_policy(cache: PolicyCache,
                                                   mock_resolver: MockResolver) -> None:
    publish(mock_resolver, "one")  # the server answers 404 for example.org
    result = await cache.get_policy(mock_resolver, "example.org", T0)
    assert result.policy is None and not result.enforce and result.mx_allowed("any.example")
    assert result.failure is FailureType.STS_POLICY_FETCH_ERROR and "HTTP 404" in result.reason


async def test_failed_refresh_keeps_cached_policy(cache: PolicyCache,
                                                  policy_server: PolicyServer,
                                                  mock_resolver: MockResolver) -> None:
    publish(mock_resolver, "one")
    policy_server.serve("example.org", policy())
    await cache.get_policy(mock_resolver, "example.org", T0)
    publish(mock_resolver, "two")
    policy_server.serve("example.org", "<html>oops</html>", content_type="text/html")
    result = await cache.get_policy(mock_resolver, "example.org", T0 + DAY)
    assert result.from_cache and result.enforce and result.policy_id == "one"
    assert result.failure is FailureType.STS_POLICY_INVALID
    assert "using the cached policy one" in result.reason


async def test_vanished_record_keeps_cached_policy(cache: PolicyCache,
                                                   policy_server: PolicyServer,
                                                   mock_resolver: MockResolver) -> None:
    publish(mock_resolver, "one")
    policy_server.serve("example.org", policy())
    await cache.get_policy(mock_resolver, "example.org", T0)
    empty = MockResolver()
    gone = await cache.get_policy(empty, "example.org", T0 + DAY)
    assert gone.from_cache and gone.enforce
    failing = MockResolver()
    failing.fail("TXT", "_mta-sts.example.org", "servfail")
    broken = await cache.get_policy(failing, "example.org", T0 + DAY)
    assert broken.from_cache and broken.enforce and "SERVFAIL" in broken.reason


async def test_expired_policy_is_no_policy(cache: PolicyCache, policy_server: PolicyServer,
                                           mock_resolver: MockResolver) -> None:
    publish(mock_resolver, "one")
    policy_server.serve("example.org", policy(max_age=3600))
    await cache.get_policy(mock_resolver, "example.org", T0)
    later = T0 + 3600 + 1
    assert (await cache.get_policy(MockResolver(), "example.org", later)).policy is None
    # With the record still there, an expired policy is fetched again, even with the same id.
    again = await cache.get_policy(mock_resolver, "example.org", later)
    assert again.policy is not None and not again.from_cache
    assert policy_server.count("example.org") == 2


async def test_expired_policy_and_failing_fetch(cache: PolicyCache,
                                                policy_server: PolicyServer,
                                                mock_resolver: MockResolver) -> None:
    publish(mock_resolver, "one")
    policy_server.serve("example.org", policy(max_age=3600))
    await cache.get_policy(mock_resolver, "example.org", T0)
    del policy_server.replies["mta-sts.example.org"]
    result = await cache.get_policy(mock_resolver, "example.org", T0 + 7200)
    assert result.policy is None and result.failure is FailureType.STS_POLICY_FETCH_ERROR


async def test_cache_survives_restart(tmp_path: Path, session: aiohttp.ClientSession,
                                      policy_server: PolicyServer,
                                      mock_resolver: MockResolver) -> None:
    publish(mock_resolver, "one")
    policy_server.serve("example.org", policy())
    first = PolicyCache(tmp_path, fetch=lambda d: fetch_policy(d, session))
    await first.get_policy(mock_resolver, "example.org", T0)
    first.close()
    policy_server.replies.clear()
    second = PolicyCache(tmp_path, fetch=lambda d: fetch_policy(d, session))
    result = await second.get_policy(MockResolver(), "example.org", T0 + DAY)
    assert result.from_cache and result.enforce and result.policy_id == "one"


async def test_refresh_due_and_refresh(cache: PolicyCache, policy_server: PolicyServer,
                                       mock_resolver: MockResolver) -> None:
    publish(mock_resolver, "one")
    publish(mock_resolver, "n1", domain="example.net")
    policy_server.serve("example.org", policy(max_age=30 * 86400))
    policy_server.serve("example.net", policy(max_age=30 * 86400, mx="mx.example.net"))
    await cache.get_policy(mock_resolver, "example.org", T0)
    await cache.get_policy(mock_resolver, "example.net", T0 + 2 * DAY)
    assert await cache.refresh_due(T0 + DAY / 2) == []
    assert await cache.refresh_due(T0 + 1.5 * DAY) == ["example.org"]
    assert await cache.refresh_due(T0 + 3.5 * DAY) == ["example.net", "example.org"]
    refreshed = await cache.refresh(mock_resolver, "example.org", T0 + 3.5 * DAY)
    assert not refreshed.from_cache and refreshed.expires == T0 + 3.5 * DAY + 30 * DAY
    assert await cache.refresh_due(T0 + 3.5 * DAY) == ["example.net"]
    # Near its expiry a policy is due even when checked recently.
    assert "example.org" in await cache.refresh_due(T0 + 3.5 * DAY + 29.5 * DAY, 2 * DAY)
    # A failed refresh keeps the policy and leaves it due.
    del policy_server.replies["mta-sts.example.net"]
    kept = await cache.refresh(mock_resolver, "example.net", T0 + 3.5 * DAY)
    assert kept.from_cache and kept.failure is FailureType.STS_POLICY_FETCH_ERROR
    assert await cache.refresh_due(T0 + 3.5 * DAY) == ["example.net"]


async def test_no_record_no_policy(cache: PolicyCache, mock_resolver: MockResolver) -> None:
    result = await cache.get_policy(mock_resolver, "example.org", T0)
    assert result.policy is None and result.failure is None
    assert "no such name" in result.reason
    invalid = await cache.get_policy(mock_resolver, "bad..example", T0)
    assert invalid.policy is None and "invalid domain" in invalid.reason


async def test_mode_none_asks_nothing(cache: PolicyCache, policy_server: PolicyServer,
                                     mock_resolver: MockResolver) -> None:
    publish(mock_resolver, "off")
    policy_server.serve("example.org", "version: STSv1\nmode: none\nmax_age: 86400\n")
    result = await cache.get_policy(mock_resolver, "example.org", T0)
    assert result.policy is not None and result.policy.mode is Mode.NONE
    assert not result.enforce and result.mx_allowed("anything.example")
    # It is cached like any policy: that is how a domain retires MTA-STS (RFC 8461 §8.3).
    assert (await cache.get_policy(mock_resolver, "example.org", T0 + 60)).from_cache
