"""Outgoing DMARC aggregate reports (RFC 7489 §7.2): recording, the daily run, destinations."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kittiwake import dkim, dmarc, spf
from kittiwake.dmarcrpt import DispositionType, DMARCResult, report_from_message
from kittiwake.dns import MockResolver
from kittiwake.reports.dmarc_outgoing import (
    DAY,
    DMARCReporter,
    EvaluationRecorder,
    ReportSettings,
)
from kittiwake.reports.dmarcdb import DMARCDatabase

DAY0 = 20422  # 2025-11-30 (UTC day number)
OURS = {"example.org"}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeOutbox:
    def __init__(self) -> None:
        self.sent: list[dict[str, object]] = []

    async def enqueue(self, **kwargs: object) -> list[int]:
        self.sent.append(kwargs)
        return [len(self.sent)]


def settings(signing=None) -> ReportSettings:  # type: ignore[no-untyped-def]
    return ReportSettings(hostname="mx.example.org", organization="example.org",
                          from_address="postmaster@example.org", signing=signing)


async def verdict(resolver: MockResolver, record: str, *, dkim_ok: bool = True,
                  domain: str = "sender.example") -> tuple[dmarc.Result, spf.Result,
                                                            list[dkim.Result]]:
    added = resolver.__dict__.setdefault("_dmarc_records", set())
    if domain not in added:
        resolver.add("TXT", f"_dmarc.{domain}", record)
        added.add(domain)
    spf_result = spf.Result(spf.Status.PASS if dkim_ok else spf.Status.FAIL,
                            "bounce." + domain)
    dkim_results = [dkim.Result(dkim.Status.PASS if dkim_ok else dkim.Status.FAIL, domain,
                                "sel")]
    result = await dmarc.verify(resolver, domain, spf_result, dkim_results)
    return result, spf_result, dkim_results


@pytest.fixture
def db(tmp_path: Path):  # type: ignore[no-untyped-def]
    d = DMARCDatabase(tmp_path / "reports" / "dmarc.db")
    yield d
    d.close()


async def record_some(db: DMARCDatabase, resolver: MockResolver, clock: Clock,
                      record: str = "v=DMARC1; p=reject; rua=mailto:agg@sender.example"
                      ) -> EvaluationRecorder:
    recorder = EvaluationRecorder(db, lambda: OURS, clock=clock)
    ok = await verdict(resolver, record)
    bad = await verdict(resolver, record, dkim_ok=False)
    for _ in range(3):
        assert recorder.record(*ok, ip="192.0.2.1", mailfrom="b@bounce.sender.example",
                               recipient_domain="example.org")
    assert recorder.record(*bad, ip="203.0.113.5", mailfrom="x@bounce.sender.example",
                           recipient_domain="example.org")
    assert await recorder.flush() == 4
    return recorder


async def test_daily_report_counts_and_destination(db: DMARCDatabase) -> None:
    resolver, clock, outbox = MockResolver(), Clock(DAY0 * DAY + 3600), FakeOutbox()
    await record_some(db, resolver, clock)
    reporter = DMARCReporter(db, outbox, resolver, settings, lambda: OURS, clock=clock)
    assert await reporter.run_once() == []  # the day is not over
    clock.now = (DAY0 + 1) * DAY + 600
    [done] = await reporter.run_once()
    assert done.recipients == ("agg@sender.example",) and done.skipped == ()
    [queued] = outbox.sent
    assert queued["recipients"] == ["agg@sender.example"]
    assert queued["mailfrom"] == "postmaster@example.org"
    report = report_from_message(queued["data"])  # type: ignore[arg-type]
    m = report.report_metadata
    assert (m.date_range.begin, m.date_range.end) == (DAY0 * DAY, (DAY0 + 1) * DAY - 1)
    assert m.org_name == "example.org" and m.email == "postmaster@example.org"
    assert report.policy_published.domain == "sender.example"
    assert report.policy_published.p is DispositionType.REJECT
    rows = {r.row.source_ip: r for r in report.records}
    assert rows["192.0.2.1"].row.count == 3
    assert rows["192.0.2.1"].row.policy_evaluated.dkim is DMARCResult.PASS
    assert rows["203.0.113.5"].row.count == 1
    assert rows["203.0.113.5"].row.policy_evaluated.disposition is DispositionType.REJECT
    assert rows["192.0.2.1"].identifiers.envelope_to == "example.org"
    # Once sent, the day is done: no resend on the next run or after a restart.
    assert await reporter.run_once() == []
    db2 = DMARCDatabase(db.path)
    try:
        again = DMARCReporter(db2, outbox, resolver, settings, lambda: OURS, clock=clock)
        assert await again.run_once() == []
    finally:
        db2.close()
    assert len(outbox.sent) == 1


async def test_a_missed_day_is_caught_up_after_downtime(db: DMARCDatabase) -> None:
    resolver, clock, outbox = MockResolver(), Clock(DAY0 * DAY + 60), FakeOutbox()
    await record_some(db, resolver, clock)
    clock.now = (DAY0 + 1) * DAY + 60
    await record_some(db, resolver, clock)
    clock.now = (DAY0 + 3) * DAY  # down for two days
    reporter = DMARCReporter(db, outbox, resolver, settings, lambda: OURS, clock=clock)
    done = await reporter.run_once()
    assert [d.day for d in done] == [DAY0, DAY0 + 1]
    assert len({d.report_id for d in done}) == 2


async def test_no_rua_no_evaluation_and_none_about_our_domains(db: DMARCDatabase) -> None:
    resolver = MockResolver()
    recorder = EvaluationRecorder(db, lambda: OURS, clock=time.time)
    no_rua = await verdict(resolver, "v=DMARC1; p=reject", domain="quiet.example")
    assert not recorder.record(*no_rua, ip="192.0.2.1", mailfrom="", recipient_domain="x")
    ours = await verdict(resolver, "v=DMARC1; p=none; rua=mailto:d@example.org",
                         domain="sub.example.org")
    assert not recorder.record(*ours, ip="192.0.2.1", mailfrom="", recipient_domain="x")
    assert await recorder.flush() == 0


async def test_external_destination_must_be_verified(db: DMARCDatabase) -> None:
    """RFC 7489 §7.1: rua outside the policy domain's organization needs the receiver's
    <policy-domain>._report._dmarc.<dest> TXT record."""
    resolver, clock, outbox = MockResolver(), Clock(DAY0 * DAY), FakeOutbox()
    await record_some(db, resolver, clock, "v=DMARC1; p=none; rua=mailto:a@vendor.example,"
                                           "mailto:b@other.example,mailto:c@example.org,"
                                           "https://collector.example/dmarc")
    resolver.add("TXT", "sender.example._report._dmarc.vendor.example", "v=DMARC1")
    resolver.add("TXT", "sender.example._report._dmarc.other.example", "v=spf1 -all")
    clock.now = (DAY0 + 1) * DAY + 1
    [done] = await DMARCReporter(db, outbox, resolver, settings, lambda: OURS,
                                 clock=clock).run_once()
    assert done.recipients == ("a@vendor.example",)
    assert dict(done.skipped) == {"mailto:b@other.example": "unverified",
                                  "mailto:c@example.org": "own-domain",
                                  "https://collector.example/dmarc": "unsupported"}
    assert outbox.sent[0]["recipients"] == ["a@vendor.example"]


async def test_size_limit_is_honoured(db: DMARCDatabase) -> None:
    resolver, clock, outbox = MockResolver(), Clock(DAY0 * DAY), FakeOutbox()
    await record_some(db, resolver, clock, "v=DMARC1; p=none;"
                                           " rua=mailto:small@sender.example!1k,"
                                           "mailto:big@sender.example!10m")
    clock.now = (DAY0 + 1) * DAY + 1
    [done] = await DMARCReporter(db, outbox, resolver, settings, lambda: OURS,
                                 clock=clock).run_once()
    assert done.size > 1024
    assert done.recipients == ("big@sender.example",)
    assert dict(done.skipped) == {"mailto:small@sender.example": "too-large"}


async def test_report_is_dkim_signed(db: DMARCDatabase) -> None:
    resolver, clock, outbox = MockResolver(), Clock(DAY0 * DAY), FakeOutbox()
    await record_some(db, resolver, clock)
    key = dkim.load_private_key(dkim.generate_key("ed25519"))
    resolver.add("TXT", "k1._domainkey.example.org", dkim.dns_record(key))
    clock.now = (DAY0 + 1) * DAY + 1
    signing = ("example.org", "k1", key, "relaxed/relaxed", None)
    await DMARCReporter(db, outbox, resolver, lambda: settings(signing), lambda: OURS,
                        clock=clock).run_once()
    data = outbox.sent[0]["data"]
    assert data.startswith(b"DKIM-Signature:")  # type: ignore[union-attr]
    [result] = await dkim.verify(resolver, data)  # type: ignore[arg-type]
    assert result.status is dkim.Status.PASS and result.domain == "example.org"


async def test_recording_cost_measured(tmp_path: Path) -> None:
    db = DMARCDatabase(tmp_path / "r.db")
    resolver = MockResolver()
    recorder = EvaluationRecorder(db, lambda: OURS, batch=10**9)
    args = await verdict(resolver, "v=DMARC1; p=none; rua=mailto:a@sender.example")
    n = 20_000
    started = time.perf_counter()
    for i in range(n):
        recorder.record(*args, ip=f"192.0.2.{i % 250}", mailfrom="b@sender.example",
                        recipient_domain="example.org")
    per_message = (time.perf_counter() - started) / n
    flush_started = time.perf_counter()
    assert await recorder.flush() == n
    flush_seconds = time.perf_counter() - flush_started
    db.close()
    print(f"dmarc recording: {per_message * 1e6:.1f} µs/message on the loop,"
          f" flush of {n} in {flush_seconds:.2f} s (worker thread)")
    assert per_message < 100e-6  # generous for a loaded CI machine; typically ~5-10 µs
