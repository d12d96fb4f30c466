"""Prometheus metrics for kittiwake (see DESIGN.md "Metrics").

All kittiwake metrics live in :data:`REGISTRY`, a registry of our own (not
prometheus-client's global default, so tests and libraries cannot collide
with it), together with the standard process, platform and Python GC
collectors. Names start with ``kittiwake_``.

Counters whose label values are known in advance are created with every
label set at 0 (:func:`counter`, :func:`preinit`), so ``rate()`` and
``increase()`` see the first event. :func:`panic` is what the top of every
connection and background task calls for an unexpected exception: it logs
the traceback (with the connection id bound in the log context) and counts
it in ``kittiwake_panic_total{origin}``.

The exposition is served by :func:`metrics_app` (``GET /metrics``) on the
metrics listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from kittiwake.log import get_logger

if TYPE_CHECKING:
    from aiohttp import web

PREFIX = "kittiwake_"

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

# Where an unexpected exception can be caught: one value per server, client
# and background task. Add a value here when adding such a place; panic()
# also accepts others, but only these start at 0.
PANIC_ORIGINS: tuple[str, ...] = (
    "smtpserver",
    "smtpclient",
    "imapserver",
    "queue",
    "http",
    "webmail",
    "webapi",
    "acme",
    "store",
    "dns",
    "control",
    "import",
    "export",
    "reports",
    "junk",
    "serve",
)


def _name(name: str) -> str:
    return name if name.startswith(PREFIX) else PREFIX + name


def preinit(metric: Any, **label_values: Iterable[str]) -> None:
    """Create every combination of the given label values (at 0 for counters).

    ``preinit(deliveries, result=("ok", "temperror", "permerror"), tls=("yes", "no"))``
    creates the six label sets. Labels not named must not exist on the metric.
    """
    names = list(label_values)
    for combo in itertools.product(*(tuple(label_values[n]) for n in names)):
        metric.labels(**dict(zip(names, combo, strict=True)))


_CHILDREN: dict[tuple[Any, ...], Any] = {}
_MAX_CHILDREN = 10_000


def child(metric: Any, *values: str) -> Any:
    """``metric.labels(*values)`` (values in the metric's label order), looked up once:
    ``labels()`` checks its arguments and takes a lock on every call, which the hot
    paths (one call per message or command) need not pay. For label values from a
    closed set; the cache stops growing at :data:`_MAX_CHILDREN` entries."""
    key = (id(metric), *values)
    found = _CHILDREN.get(key)
    if found is None:
        found = metric.labels(*values)
        if len(_CHILDREN) < _MAX_CHILDREN:
            _CHILDREN[key] = found
    return found


def counter(name: str, documentation: str,
            labels: Mapping[str, Iterable[str]] | Sequence[str] = ()) -> Counter:
    """A counter in :data:`REGISTRY` named ``kittiwake_<name>_total``.

    ``labels`` is either the label names, or a mapping of each label name to
    its known values, which are all created at 0.
    """
    names = list(labels)
    metric = Counter(_name(name), documentation, names, registry=REGISTRY)
    if isinstance(labels, Mapping) and names:
        preinit(metric, **labels)
    return metric


def gauge(name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
    """A gauge in :data:`REGISTRY` named ``kittiwake_<name>``."""
    return Gauge(_name(name), documentation, list(labels), registry=REGISTRY)


def histogram(name: str, documentation: str, labels: Sequence[str] = (),
              buckets: Sequence[float] | None = None) -> Histogram:
    """A histogram in :data:`REGISTRY` named ``kittiwake_<name>``."""
    kwargs: dict[str, Any] = {}
    if buckets is not None:
        kwargs["buckets"] = tuple(buckets)
    return Histogram(_name(name), documentation, list(labels), registry=REGISTRY, **kwargs)


PANIC_TOTAL = counter(
    "panic",
    "Unexpected errors caught at the top of a connection or task, by where they were caught.",
    {"origin": PANIC_ORIGINS},
)


def panic(origin: str, exc: BaseException, msg: str = "unhandled error", **fields: Any) -> None:
    """Log ``exc`` with its traceback at error level and count it; never raises.

    The log line goes to the logger of package ``origin`` and carries the
    bound context (the ``cid``) and ``fields``.
    """
    try:
        get_logger(origin).error(msg, exc_info=exc, origin=origin, **fields)
    finally:
        PANIC_TOTAL.labels(origin=origin).inc()


@contextlib.contextmanager
def guard(origin: str, msg: str = "unhandled error", **fields: Any) -> Iterator[None]:
    """Catch any Exception in the block, report it with :func:`panic` and go on.

    For the top of a connection handler or a background task (also around
    ``await``); cancellation and KeyboardInterrupt pass through.
    """
    try:
        yield
    except Exception as exc:
        panic(origin, exc, msg, **fields)


class DayCounts:
    """Events per key since midnight UTC (for ``kittiwake status``; no metric).

    Kept in memory: after a restart it counts from the start. ``keys`` start at 0.
    """

    def __init__(self, keys: Iterable[str] = (),
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.keys = tuple(keys)
        self.clock = clock
        self.day = clock().date()
        self.counts: dict[str, int] = dict.fromkeys(self.keys, 0)

    def _roll(self) -> None:
        today = self.clock().date()
        if today != self.day:
            self.day = today
            self.counts = dict.fromkeys(self.keys, 0)

    def add(self, key: str) -> None:
        self._roll()
        self.counts[key] = self.counts.get(key, 0) + 1

    def today(self) -> dict[str, int]:
        self._roll()
        return dict(self.counts)


def render(registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    """The Prometheus text exposition of the registry and its content type; for
    :data:`REGISTRY`, the SMTP worker processes' counts summed in
    (:mod:`kittiwake.metricsshare`)."""
    from kittiwake import metricsshare

    view = metricsshare.merged(registry, metricsshare.SHARED) if registry is REGISTRY \
        else registry
    return generate_latest(view), CONTENT_TYPE_PLAIN_0_0_4  # type: ignore[arg-type]


def metrics_app(registry: CollectorRegistry = REGISTRY) -> web.Application:
    """An aiohttp application serving ``GET /metrics`` (to mount on the metrics listener).

    aiohttp is imported here, not with this module: every process that counts
    something imports this module (the CPU workers and the CLIs too), and only the
    server's metrics listener serves."""
    from aiohttp import web

    async def handle_metrics(request: web.Request) -> web.Response:
        from kittiwake import metricsshare

        if registry is REGISTRY and metricsshare.REFRESH is not None:
            await metricsshare.REFRESH()  # the SMTP workers' counts as of now
        # In a thread: collectors may read databases (the queue's gauges).
        body, content_type = await asyncio.to_thread(render, registry)
        resp = web.Response(body=body)
        resp.headers["Content-Type"] = content_type
        return resp

    app = web.Application()
    app.router.add_get("/metrics", handle_metrics)
    return app
