"""An in-process cache of DNS answers, within their TTL.

The MX checks of one message ask for the same few names that the previous
message from that sender needed (SPF, DKIM key, DMARC record, PTR), so the
answers are kept for their TTL (RFC 1035 §3.2.1), capped at :data:`MAX_TTL`
so that a changed record is seen soon even when its TTL is long. Negative
answers (NXDOMAIN, NODATA) are kept for the time RFC 2308 §5 gives them (the
lower of the SOA record's TTL and its MINIMUM field, which the stub resolver
reads from the authority section into the answer's ``ttl``), capped the same
way. One that came without an SOA is not kept ("SHOULD NOT be cached", RFC 2308
§5), nor one whose time is 0 (the zone asks for that). Temporary failures are
never cached.
Concurrent lookups of one name share one query. The cache holds at most
:data:`MAX_ENTRIES` answers, dropping the least recently used.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from kittiwake.dns import metrics as dns_metrics
from kittiwake.dns.types import Answer, RRType

MAX_TTL = 300.0
MAX_ENTRIES = 20_000

Key = tuple[RRType, str]
# The counter's children, looked up once (labels() validates and locks on each call).
_HIT, _SHARED, _MISS = (dns_metrics.CACHE_LOOKUPS.labels(result=r)
                        for r in ("hit", "shared", "miss"))


class AnswerCache:
    """Answers by (type, name) until they expire; a clock can be injected for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 max_entries: int = MAX_ENTRIES) -> None:
        self.clock = clock
        self.max_entries = max_entries
        self._answers: OrderedDict[Key, tuple[float, Answer[Any]]] = OrderedDict()
        self._pending: dict[Key, asyncio.Future[Answer[Any]]] = {}
        self.hits = 0
        self.misses = 0

    async def get(self, rdtype: RRType, name: str,
                  fetch: Callable[[], Awaitable[Answer[Any]]]) -> Answer[Any]:
        """The cached answer, or ``fetch()``'s (shared with concurrent askers)."""
        key = (rdtype, name.lower())
        entry = self._answers.get(key)
        if entry is not None:
            if entry[0] > self.clock():
                self._answers.move_to_end(key)
                self.hits += 1
                _HIT.inc()
                return entry[1]
            del self._answers[key]
        pending = self._pending.get(key)
        if pending is not None:
            self.hits += 1
            _SHARED.inc()
            return await asyncio.shield(pending)
        self.misses += 1
        _MISS.inc()
        future: asyncio.Future[Answer[Any]] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            answer = await fetch()
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc)
                future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        finally:
            self._pending.pop(key, None)
        future.set_result(answer)
        self._store(key, answer)
        return answer

    def _store(self, key: Key, answer: Answer[Any]) -> None:
        # Negative answers too: RFC 2308 §5 (ttl 0 when no SOA came: not kept).
        ttl = min(float(answer.ttl), MAX_TTL)
        if ttl <= 0:
            return
        self._answers[key] = (self.clock() + ttl, answer)
        self._answers.move_to_end(key)
        while len(self._answers) > self.max_entries:
            self._answers.popitem(last=False)

    def clear(self) -> None:
        self._answers.clear()
