"""Metrics of other processes of the server (SMTP workers), summed into its /metrics.

Each SMTP worker process (:mod:`kittiwake.server.smtpworkers`) counts in its
own prometheus-client registry. It sends :func:`snapshot` of it (cumulative
values, not deltas: a lost or repeated snapshot does no harm) to the main
process when asked (each scrape of /metrics asks every worker, waiting at
most a second), every few seconds unasked, and when it stops; the main process keeps the
last snapshot of each worker (:class:`Shared`) and adds them, sample by
sample, to its own registry's at each scrape (:func:`merged`).

What is summed: every ``kittiwake_*`` counter and histogram (their
``_created`` samples are the main process's), and the gauges named in
``SUMMED_GAUGES`` (open connections: a sum across processes means
something; a gauge such as "certificate expires at" would not, and workers
do not set those). ``process_*``, ``python_*`` describe the main process
only. The counts of a worker that died are kept (:meth:`Shared.retire`), so
counters never go down; its gauges are dropped with it. Counts a worker made
in the seconds before it was killed are lost (the snapshot interval).

prometheus-client's multiprocess mode was not used: it needs a directory of
memory-mapped files shared by all processes and a restart-time cleanup, and
it changes how every gauge of the main process is collected.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol

from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

PREFIX = "kittiwake_"

SUMMED_GAUGES = frozenset({"kittiwake_smtpserver_open_connections"})
"""Gauges whose value is the sum of every process's."""

Key = tuple[str, tuple[tuple[str, str], ...]]
Snapshot = dict[Key, float]


class Collecting(Protocol):
    def collect(self) -> Iterable[Metric]: ...


def snapshot(registry: Collecting) -> Snapshot:
    """The non-zero summable samples of ``registry`` (see the module docstring)."""
    out: Snapshot = {}
    for family in registry.collect():
        if not family.name.startswith(PREFIX):
            continue
        if family.type not in ("counter", "histogram") and family.name not in SUMMED_GAUGES:
            continue
        for sample in family.samples:
            if sample.value and not sample.name.endswith("_created"):
                out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


class Shared:
    """The snapshots of the worker processes, and what dead workers counted."""

    def __init__(self) -> None:
        self.live: dict[str, Snapshot] = {}
        self.retired: Snapshot = {}

    def update(self, worker: str, values: Snapshot) -> None:
        self.live[worker] = values

    def retire(self, worker: str, gauges: Iterable[str] = SUMMED_GAUGES) -> None:
        """A worker is gone: keep its counters and histograms, drop its gauges."""
        values = self.live.pop(worker, {})
        for key, value in values.items():
            if key[0] not in gauges:
                self.retired[key] = self.retired.get(key, 0.0) + value

    def total(self) -> Snapshot:
        out = dict(self.retired)
        for values in self.live.values():
            for key, value in values.items():
                out[key] = out.get(key, 0.0) + value
        return out

    def value(self, name: str, **labels: str) -> float:
        """One summed sample (tests, ``kittiwake status``)."""
        return self.total().get((name, tuple(sorted(labels.items()))), 0.0)


def _sample_names(family: Metric) -> tuple[str, ...]:
    if family.type == "counter":
        return (family.name + "_total",)
    if family.type == "histogram":
        return tuple(family.name + s for s in ("_bucket", "_count", "_sum"))
    return (family.name,)


def _order(sample: Sample) -> tuple[Any, ...]:
    labels = sorted((k, v) for k, v in sample.labels.items() if k != "le")
    le = sample.labels.get("le")
    return (labels, 0 if sample.name.endswith("_bucket") else 1,
            math.inf if le in (None, "+Inf") else float(le))


class Merged:
    """A registry view: ``registry``'s samples plus ``extra`` (for generate_latest)."""

    def __init__(self, registry: Collecting, extra: Mapping[Key, float]) -> None:
        self.registry = registry
        self.extra = extra

    def collect(self) -> Iterable[Metric]:
        extra = dict(self.extra)
        for family in self.registry.collect():
            if extra and family.name.startswith(PREFIX):
                samples = []
                for sample in family.samples:
                    key = (sample.name, tuple(sorted(sample.labels.items())))
                    add = extra.pop(key, 0.0)
                    samples.append(sample._replace(value=sample.value + add) if add else sample)
                names = _sample_names(family)
                missing = [Sample(name, dict(labels), value) for (name, labels), value
                           in list(extra.items()) if name in names]
                for sample in missing:
                    del extra[(sample.name, tuple(sorted(sample.labels.items())))]
                if missing:
                    samples.extend(sorted(missing, key=_order))
                family.samples = samples
            yield family


SHARED: Shared | None = None
"""The worker snapshots of this process (set by the SMTP worker supervisor)."""

REFRESH: Callable[[], Awaitable[None]] | None = None
"""Asks every worker for its snapshot now (set by the supervisor): /metrics calls it
before rendering, so a scrape sees what the workers counted up to that moment."""


def merged(registry: Collecting, shared: Shared | None) -> Collecting:
    """``registry`` with the workers' samples added (itself when there are none)."""
    if shared is None or not (shared.live or shared.retired):
        return registry
    return Merged(registry, shared.total())
