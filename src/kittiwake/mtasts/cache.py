"""The MTA-STS policy cache and policy discovery (RFC 8461 §5.1, §5.2, §10.2).

Policies live in SQLite (``DATA_DIR/mtasts.db``, WAL) so that they survive
restarts: that is what makes MTA-STS resist downgrades, since an attacker who
blocks the TXT lookup or the HTTPS fetch cannot make a sender forget a
policy it has seen. :meth:`PolicyCache.get_policy` is the whole §5.1
algorithm; :meth:`PolicyCache.refresh_due` lists policies to refresh in the
background (§10.2). SQLite work runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kittiwake import metrics
from kittiwake.dns import InvalidName, Resolver, to_ascii
from kittiwake.mtasts.fetch import FailureType, FetchResult, fetch_policy
from kittiwake.mtasts.policy import Mode, Policy, PolicyError, mx_allowed, parse_policy
from kittiwake.mtasts.record import RecordLookup, STSRecord, lookup_record

Fetcher = Callable[[str], Awaitable[FetchResult]]

REFRESH_INTERVAL = 86400.0  # RFC 8461 §10.2: e.g. check daily for a new policy

_SCHEMA = """
CREATE TABLE IF NOT EXISTS policies (
    domain TEXT PRIMARY KEY,      -- A-label form, lower case
    policy_id TEXT NOT NULL,      -- the id of the TXT record it was fetched for
    policy_text TEXT NOT NULL,
    fetched REAL NOT NULL,        -- unix time of the successful fetch
    max_age INTEGER NOT NULL,     -- seconds; the policy expires at fetched + max_age
    checked REAL NOT NULL,        -- last time the TXT record confirmed the id
    last_error TEXT NOT NULL DEFAULT ''
)
"""

POLICY_FETCHES = metrics.counter(
    "mtasts_policy_fetches",
    "MTA-STS policy fetches (RFC 8461 §3.3) by result: ok, or the TLSRPT failure type.",
    {"result": ("ok", *(str(f) for f in FailureType))})


@dataclass(frozen=True)
class CachedPolicy:
    """One row of the cache."""

    domain: str
    policy_id: str
    policy: Policy
    fetched: float
    max_age: int
    checked: float
    last_error: str = ""

    @property
    def expires(self) -> float:
        return self.fetched + self.max_age

    def expired(self, now: float) -> bool:
        return now >= self.expires


@dataclass(frozen=True)
class PolicyResult:
    """What :meth:`PolicyCache.get_policy` found for a recipient domain.

    ``policy`` is None when the domain has no policy to apply. ``from_cache``
    says it was not fetched just now; ``authentic`` is the DNSSEC status of
    the TXT lookup; ``failure`` and ``reason`` say what went wrong (for
    TLSRPT, RFC 8460 §4.3.2.2) even when a cached policy is still applied.
    """

    domain: str
    policy: Policy | None
    policy_id: str | None = None
    record: STSRecord | None = None
    from_cache: bool = False
    authentic: bool = False
    failure: FailureType | None = None
    reason: str = ""
    expires: float | None = None

    @property
    def tlsrpt_result_type(self) -> str | None:
        """The RFC 8460 §4.3.2.2 result type of the failure (None: none)."""
        return self.failure.value if self.failure is not None else None

    @property
    def enforce(self) -> bool:
        """True when delivery must only go to MX hosts the policy allows, over valid TLS."""
        return self.policy is not None and self.policy.enforce

    def mx_allowed(self, host: str) -> bool:
        """Whether ``host`` matches the policy; True without a policy or in mode
        ``none`` (RFC 8461 §5: such a policy asks nothing of senders)."""
        if self.policy is None or self.policy.mode is Mode.NONE:
            return True
        return mx_allowed(self.policy, host)

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "policy": self.policy.to_json() if self.policy else None,
            "policy_id": self.policy_id,
            "record": str(self.record) if self.record else None,
            "from_cache": self.from_cache,
            "authentic": self.authentic,
            "failure": self.failure.value if self.failure else None,
            "reason": self.reason,
            "expires": self.expires,
        }


class PolicyCache:
    """Cached MTA-STS policies of recipient domains, in ``data_dir/mtasts.db``.

    ``fetch`` fetches a domain's policy (default :func:`fetch_policy` with the
    system trust store); ``clock`` gives unix time when ``now`` is not passed.
    """

    def __init__(self, data_dir: str | Path, fetch: Fetcher | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = Path(data_dir) / "mtasts.db"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fetch: Fetcher | None = fetch  # None: fetch_policy with get_policy's resolver
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- storage (blocking; called in a worker thread) --

    def load(self, domain: str) -> CachedPolicy | None:
        """The cached row for ``domain`` (A-label, lower case), expired or not."""
        with self._lock:
            row = self._db.execute(
                "SELECT domain, policy_id, policy_text, fetched, max_age, checked, last_error"
                " FROM policies WHERE domain = ?", (domain,)).fetchone()
        if row is None:
            return None
        try:
            policy = parse_policy(row[2])
        except PolicyError:
            return None  # cannot happen for rows we wrote; treat as absent
        return CachedPolicy(row[0], row[1], policy, row[3], row[4], row[5], row[6])

    def _store(self, domain: str, policy_id: str, policy: Policy, now: float) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO policies (domain, policy_id, policy_text, fetched, max_age,"
                " checked, last_error) VALUES (?, ?, ?, ?, ?, ?, '')"
                " ON CONFLICT(domain) DO UPDATE SET policy_id = excluded.policy_id,"
                " policy_text = excluded.policy_text, fetched = excluded.fetched,"
                " max_age = excluded.max_age, checked = excluded.checked, last_error = ''",
                (domain, policy_id, policy.text or policy.to_text(), now, policy.max_age, now))

    def _touch(self, domain: str, now: float, error: str | None) -> None:
        with self._lock:
            if error is None:
                self._db.execute("UPDATE policies SET checked = ?, last_error = ''"
                                 " WHERE domain = ?", (now, domain))
            else:
                self._db.execute("UPDATE policies SET last_error = ? WHERE domain = ?",
                                 (error, domain))

    def _delete(self, domain: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM policies WHERE domain = ?", (domain,))

    def _due(self, now: float, interval: float) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT domain FROM policies WHERE fetched + max_age > ?"
                " AND (checked + ? <= ? OR fetched + max_age - ? < ?) ORDER BY domain",
                (now, interval, now, now, interval)).fetchall()
        return [r[0] for r in rows]

    # -- the RFC 8461 §5.1 algorithm --

    async def refresh_due(self, now: float | None = None,
                          interval: float = REFRESH_INTERVAL) -> list[str]:
        """Domains whose unexpired policy should be refreshed now (RFC 8461 §10.2).

        Those not confirmed by a TXT lookup for ``interval`` seconds, and
        those that expire within ``interval``. Refresh each with
        :meth:`refresh`.
        """
        when = self._clock() if now is None else now
        return await asyncio.to_thread(self._due, when, interval)

    async def refresh(self, resolver: Resolver, domain: str,
                      now: float | None = None) -> PolicyResult:
        """Look up and refetch the policy even when the id is unchanged, extending
        its lifetime; a failure keeps the cached policy (RFC 8461 §10.2)."""
        return await self.get_policy(resolver, domain, now, force_fetch=True)

    async def get_policy(self, resolver: Resolver, domain: str, now: float | None = None,
                         *, force_fetch: bool = False) -> PolicyResult:
        """The policy to apply to mail for ``domain`` (RFC 8461 §5.1). Never raises for
        DNS, HTTP or policy problems.

        - TXT id equals the cached policy's and it has not expired: the cached one.
        - No cache, or another id: fetch. A failed first fetch means no policy.
        - A failed fetch, a failed TXT lookup or a vanished TXT record while an
          unexpired policy is cached: keep applying the cached policy.
        """
        when = self._clock() if now is None else now
        try:
            key = to_ascii(domain).lower()
        except InvalidName as exc:
            return PolicyResult(domain, None, reason=f"invalid domain: {exc}")
        cached = await asyncio.to_thread(self.load, key)
        if cached is not None and cached.expired(when):
            # RFC 8461 §5.1: an expired policy is as good as none.
            await asyncio.to_thread(self._delete, key)
            cached = None
        lookup: RecordLookup = await lookup_record(resolver, key)
        record = lookup.record

        def from_cache(reason: str, failure: FailureType | None = None) -> PolicyResult:
            assert cached is not None
            return PolicyResult(key, cached.policy, cached.policy_id, record, True,
                                lookup.authentic, failure, reason, cached.expires)

        if record is None:
            if cached is not None:
                # RFC 8461 §5.1: no live record, but an unexpired cached policy applies.
                return from_cache(f"{lookup.reason or 'no MTA-STS record'}; using the cached"
                                  f" policy {cached.policy_id}")
            return PolicyResult(key, None, None, None, False, lookup.authentic, None,
                                lookup.reason or "no MTA-STS record")
        if cached is not None and cached.policy_id == record.id and not force_fetch:
            await asyncio.to_thread(self._touch, key, when, None)
            return from_cache(f"policy {record.id} is cached")
        # The policy host is resolved by the same resolver as the TXT record.
        fetched = await (self._fetch(key) if self._fetch is not None
                         else fetch_policy(key, resolver=resolver))
        POLICY_FETCHES.labels(result=str(fetched.failure or "ok")).inc()
        if fetched.policy is not None:
            await asyncio.to_thread(self._store, key, record.id, fetched.policy, when)
            return PolicyResult(key, fetched.policy, record.id, record, False, lookup.authentic,
                                None, f"fetched policy {record.id} from {fetched.url}",
                                when + fetched.policy.max_age)
        if cached is not None:
            # RFC 8461 §5.1: a refresh that fails leaves the cached policy in force.
            await asyncio.to_thread(self._touch, key, when, fetched.reason)
            return from_cache(f"{fetched.reason}; using the cached policy {cached.policy_id}",
                              fetched.failure)
        # RFC 8461 §5.1: no policy could be fetched and none is cached.
        return PolicyResult(key, None, None, record, False, lookup.authentic, fetched.failure,
                            fetched.reason)
