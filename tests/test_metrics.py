"""Metrics: the /metrics endpoint passes promtool, panic_total starts at 0 and counts."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from kittiwake import log, metrics

PROMTOOL = "/usr/bin/promtool"

DELIVERIES = metrics.counter(
    "test_deliveries", "Deliveries in this test, by result and TLS.",
    {"result": ("ok", "temperror", "permerror"), "tls": ("yes", "no")})
LATENCY = metrics.histogram("test_latency_seconds", "Latency in this test.", ["op"])
LATENCY.labels(op="x").observe(0.2)


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


def panic_values(text: str) -> dict[str, float]:
    return {dict(k)["origin"]: v for k, v in samples(text, "kittiwake_panic_total").items()}


@pytest.fixture
async def metrics_url():
    runner = web.AppRunner(metrics.metrics_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/metrics"
    await runner.cleanup()


async def fetch(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, resp.headers["Content-Type"], await resp.text()


@pytest.mark.integration
async def test_metrics_endpoint_passes_promtool(metrics_url: str) -> None:
    assert shutil.which(PROMTOOL) or shutil.which("promtool"), (
        "promtool not found: install the Debian package 'prometheus'")
    status, ctype, body = await fetch(metrics_url)
    assert status == 200
    assert ctype.startswith("text/plain") and "version=0.0.4" in ctype
    assert "kittiwake_panic_total" in body and "process_cpu_seconds_total" in body
    proc = subprocess.run([shutil.which(PROMTOOL) or "promtool", "check", "metrics"],
                          input=body.encode(), capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()


async def test_other_paths_not_found(metrics_url: str) -> None:
    status, _, _ = await fetch(metrics_url.replace("/metrics", "/other"))
    assert status == 404


def test_every_origin_at_zero_in_a_fresh_process() -> None:
    code = "import sys; from kittiwake import metrics; sys.stdout.buffer.write(metrics.render()[0])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True,
                         timeout=60).stdout.decode()
    assert panic_values(out) == {origin: 0.0 for origin in metrics.PANIC_ORIGINS}
    assert set(metrics.PANIC_ORIGINS) >= {
        "smtpserver", "smtpclient", "imapserver", "queue", "http", "store", "dns", "control",
        "import"}


def test_panic_logs_and_counts() -> None:
    stream = io.StringIO()
    log.setup("info", stream=stream)
    try:
        before = panic_values(metrics.render()[0].decode())
        with log.bind(cid="conn42"):
            try:
                {}["missing"]
            except KeyError as exc:
                metrics.panic("imapserver", exc, command="SELECT")
        after = panic_values(metrics.render()[0].decode())
    finally:
        log.reset()
    assert after["imapserver"] == before["imapserver"] + 1
    assert {k: v for k, v in after.items() if k != "imapserver"} == {
        k: v for k, v in before.items() if k != "imapserver"}
    line = stream.getvalue()
    assert line.count("\n") == 1
    assert "level=error pkg=imapserver" in line and "cid=conn42" in line
    assert "command=SELECT" in line and "KeyError: 'missing'" in line
    assert "Traceback (most recent call last)" in line


async def test_guard_catches_and_counts() -> None:
    before = panic_values(metrics.render()[0].decode())["smtpserver"]
    with metrics.guard("smtpserver"):
        raise RuntimeError("bug in a handler")
    after = panic_values(metrics.render()[0].decode())["smtpserver"]
    assert after == before + 1
    with pytest.raises(KeyboardInterrupt), metrics.guard("smtpserver"):
        raise KeyboardInterrupt
    assert panic_values(metrics.render()[0].decode())["smtpserver"] == after


def test_counter_preinitialises_label_sets() -> None:
    text = metrics.render()[0].decode()
    got = samples(text, "kittiwake_test_deliveries_total")
    assert got == {
        (("result", r), ("tls", t)): 0.0
        for r in ("ok", "temperror", "permerror") for t in ("yes", "no")}
    DELIVERIES.labels(result="ok", tls="yes").inc()
    got = samples(metrics.render()[0].decode(), "kittiwake_test_deliveries_total")
    assert got[(("result", "ok"), ("tls", "yes"))] == 1.0
    assert sum(got.values()) == 1.0
