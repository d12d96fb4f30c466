"""Worker processes' counts summed into the server's /metrics (kittiwake.metricsshare)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kittiwake import metricsshare


def _registry() -> tuple[CollectorRegistry, Counter, Gauge, Histogram]:
    registry = CollectorRegistry()
    counter = Counter("kittiwake_things", "Things", ["kind"], registry=registry)
    gauge = Gauge("kittiwake_smtpserver_open_connections", "Open", ["service"],
                  registry=registry)
    other = Gauge("kittiwake_expiry", "Not summed", registry=registry)
    histogram = Histogram("kittiwake_took_seconds", "Took", registry=registry,
                          buckets=(0.1, 1.0))
    counter.labels(kind="a").inc(0)
    other.set(7)
    return registry, counter, gauge, histogram


def _values(view: metricsshare.Collecting) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(view).decode()  # type: ignore[arg-type]
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples
            if not s.name.endswith("_created")}


def test_a_workers_counts_are_added_to_the_servers_and_kept_when_it_dies() -> None:
    server, counter, _gauge, _ = _registry()
    worker, w_counter, w_gauge, w_hist = _registry()
    counter.labels(kind="a").inc(2)
    w_counter.labels(kind="a").inc(3)
    w_counter.labels(kind="b").inc()      # a label set only the worker has
    w_gauge.labels(service="smtp").inc(4)
    w_hist.observe(0.5)
    shared = metricsshare.Shared()
    shared.update("smtp1", metricsshare.snapshot(worker))
    values = _values(metricsshare.merged(server, shared))
    assert values[("kittiwake_things_total", (("kind", "a"),))] == 5
    assert values[("kittiwake_things_total", (("kind", "b"),))] == 1
    assert values[("kittiwake_smtpserver_open_connections", (("service", "smtp"),))] == 4
    assert values[("kittiwake_expiry", ())] == 7, "gauges that mean one process are not summed"
    assert values[("kittiwake_took_seconds_bucket", (("le", "1.0"),))] == 1
    assert values[("kittiwake_took_seconds_count", ())] == 1
    # The worker died: its counts stay (counters never go down), its gauges go.
    shared.retire("smtp1")
    values = _values(metricsshare.merged(server, shared))
    assert values[("kittiwake_things_total", (("kind", "a"),))] == 5
    assert values.get(("kittiwake_smtpserver_open_connections", (("service", "smtp"),)),
                      0) == 0
    # A new worker starts from zero; the sums go on from what the old one counted.
    shared.update("smtp1", {("kittiwake_things_total", (("kind", "a"),)): 1.0})
    assert _values(metricsshare.merged(server, shared))[
        ("kittiwake_things_total", (("kind", "a"),))] == 6


def test_without_workers_the_registry_is_rendered_as_it_is() -> None:
    server, *_ = _registry()
    assert metricsshare.merged(server, None) is server
    assert metricsshare.merged(server, metricsshare.Shared()) is server
