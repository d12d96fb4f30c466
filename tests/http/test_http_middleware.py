"""The content server's middleware: ids on log lines, metrics, panics, headers."""

from __future__ import annotations

import io
import re

import pytest
from httphelpers import ServeFactory

from kittiwake import log, metrics
from kittiwake.http import HTTPContext
from kittiwake.http import autoconfig as autoconfig_module
from kittiwake.http import metrics as http_metrics

POLICY = "/.well-known/mta-sts.txt"


def sample(name: str, **labels: str) -> float:
    value = metrics.REGISTRY.get_sample_value(name, labels)
    assert value is not None, (name, labels)
    return value


def test_counters_start_at_zero_for_every_route_and_status() -> None:
    for route in http_metrics.ROUTES:
        for status in http_metrics.STATUSES:
            sample("kittiwake_http_requests_total", route=route, status=status)
        sample("kittiwake_http_request_duration_seconds_count", route=route)
    assert "kittiwake.http.metrics" in __import__(
        "kittiwake.server.metrics_http", fromlist=["METRIC_MODULES"]).METRIC_MODULES


async def test_requests_are_counted_by_route_and_status(serve: ServeFactory,
                                                        ctx: HTTPContext) -> None:
    ok = sample("kittiwake_http_requests_total", route="mta-sts", status="200")
    other = sample("kittiwake_http_requests_total", route="other", status="404")
    timed = sample("kittiwake_http_request_duration_seconds_count", route="mta-sts")
    async with serve(ctx) as served:
        await served.get("mta-sts.example.org", POLICY)
        await served.get("mta-sts.example.org", POLICY)
        await served.get("nowhere.example.org", POLICY)
    assert sample("kittiwake_http_requests_total", route="mta-sts", status="200") == ok + 2
    assert sample("kittiwake_http_requests_total", route="other", status="404") == other + 1
    assert sample("kittiwake_http_request_duration_seconds_count", route="mta-sts") == timed + 2


async def test_a_failing_handler_is_a_logged_counted_500_and_nothing_else_notices(
        serve: ServeFactory, ctx: HTTPContext, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> bytes:
        raise RuntimeError("bug in autoconfig")

    monkeypatch.setattr(autoconfig_module, "client_config", broken)
    panics = sample("kittiwake_panic_total", origin="http")
    stream = io.StringIO()
    log.setup("info", stream=stream)
    try:
        async with serve(ctx) as served:
            failed = await served.get("autoconfig.example.org", "/mail/config-v1.1.xml")
            # The same keep-alive connection serves the next request.
            after = await served.get("mta-sts.example.org", POLICY)
    finally:
        log.reset()
    assert failed.status == 500 and "internal error" in failed.text
    assert "bug in autoconfig" not in failed.text  # details go to the log only
    assert failed.headers["X-Content-Type-Options"] == "nosniff"
    assert after.status == 200
    assert sample("kittiwake_panic_total", origin="http") == panics + 1
    lines = stream.getvalue()
    assert "Traceback (most recent call last)" in lines and "RuntimeError: bug in autoconfig" \
        in lines
    error = next(line for line in lines.splitlines() if "http handler failed" in line)
    assert "cid=" in error and "rid=" in error and "path=/mail/config-v1.1.xml" in error


async def test_every_line_has_connection_and_request_ids(serve: ServeFactory,
                                                         ctx: HTTPContext) -> None:
    stream = io.StringIO()
    log.setup("info", stream=stream)
    try:
        async with serve(ctx) as served:
            for _ in range(2):  # one keep-alive connection
                await served.get("mta-sts.example.org", POLICY)
    finally:
        log.reset()
    lines = [line for line in stream.getvalue().splitlines() if "http request" in line]
    assert len(lines) == 2
    ids = [(re.search(r"\bcid=(\w+)", line), re.search(r"\brid=(\w+)", line)) for line in lines]
    assert all(cid and rid for cid, rid in ids)
    cids = {cid.group(1) for cid, _ in ids if cid}
    rids = {rid.group(1) for _, rid in ids if rid}
    assert len(cids) == 1 and len(rids) == 2
    assert "status=200" in lines[0] and "route=mta-sts" in lines[0]


async def test_security_headers_on_every_answer(serve: ServeFactory, ctx: HTTPContext) -> None:
    async with serve(ctx) as served:
        for reply in (await served.get("mta-sts.example.org", POLICY),
                      await served.get("nowhere.other.example", "/"),
                      await served.request("DELETE", "mta-sts.example.org", POLICY)):
            assert reply.headers["X-Content-Type-Options"] == "nosniff"
            assert reply.headers["Content-Security-Policy"].startswith("default-src 'none'")
            assert reply.headers["Referrer-Policy"] == "no-referrer"
            assert reply.headers["Strict-Transport-Security"] == "max-age=31536000"
