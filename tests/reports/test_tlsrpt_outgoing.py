"""Our daily TLS reports (RFC 8460 §4, §5) as a receiving domain sees them: recorded
delivery results, a run the day after (controllable clock), a DKIM-signed report in
the real queue for a mailto: rua, a POST to an https: rua over real TLS."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import pytest
import trustme
from aiohttp import web
from tests.tlsrpt.reportmail import fixture

from kittiwake import dkim
from kittiwake.config import DomainsConfig
from kittiwake.config.reports import TLSRPTSending
from kittiwake.config.static import QueueConfig
from kittiwake.dns import MockResolver
from kittiwake.queue import Queue
from kittiwake.reports.tlsrpt_metrics import SENT
from kittiwake.reports.tlsrpt_outgoing import TLSRPTSender
from kittiwake.reports.tlsrptdb import TLSRPTDatabase
from kittiwake.server.outbox import QueueOutbox
from kittiwake.tlsrpt.mail import report_from_message
from kittiwake.tlsrpt.report import parse_report
from kittiwake.tlsrpt.results import PolicyType, ResultType, TLSResult, TLSResults

SCHEMA = json.loads(fixture("rfc8460-report.schema.json"))
HOST = "mail.example.org"
NOV30 = dt.datetime(2026, 11, 30, 10, tzinfo=dt.UTC).timestamp()
DEC1 = dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC).timestamp()


class Clock:
    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


@dataclass
class World:
    tmp: Path
    results: TLSResults
    db: TLSRPTDatabase
    queue: Queue
    resolver: MockResolver
    clock: Clock
    domains: DomainsConfig
    ssl_context: ssl.SSLContext | None = None
    internal_addresses: bool = True  # the test peers listen on loopback
    senders: list[TLSRPTSender] = field(default_factory=list)

    def sender(self) -> TLSRPTSender:
        """A sender as the server makes it at start (a new one is a restart)."""
        s = TLSRPTSender(results=self.results, db=self.db, resolver=self.resolver,
                         outbox=QueueOutbox(self.queue), hostname=HOST,
                         settings=TLSRPTSending(), domains=lambda: self.domains,
                         key_path=lambda p: self.tmp / p, clock=self.clock,
                         ssl_context=self.ssl_context,
                         internal_addresses=self.internal_addresses)
        self.senders.append(s)
        return s

    def record(self, *results: TLSResult) -> None:
        for r in results:
            self.results.add_sync(r)

    async def queued(self) -> list[tuple[str, bytes]]:
        return [(rcpt.address, await self.queue.read(msg.id))
                for msg, rcpt in await self.queue.list()]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    pem = dkim.generate_key("ed25519")
    (tmp_path / "dkim.pem").write_bytes(pem)
    domains = DomainsConfig.model_validate({
        "domains": {"example.org": {"dkim": {"selectors": {"k1": {
            "private_key_file": "dkim.pem"}}, "sign": ["k1"]}}},
        "accounts": {"alice": {"domain": "example.org",
                               "destinations": {"alice@example.org": {}}}}})
    resolver = MockResolver()
    resolver.add("TXT", "k1._domainkey.example.org", dkim.dns_record(dkim.load_private_key(pem)))
    data = tmp_path / "data"
    w = World(tmp_path, TLSResults(data), TLSRPTDatabase(data),
              Queue.from_config(data, QueueConfig()), resolver, Clock(DEC1), domains)
    yield w
    for s in w.senders:
        await s.close()
    w.queue.close()
    w.db.close()
    w.results.close()


def deliveries(domain: str, t: float = NOV30) -> list[TLSResult]:
    """What the queue records for a day of mail to ``domain``: 3 good sessions to mx1,
    an expired certificate at mx2, one MX without STARTTLS."""
    ok = TLSResult(domain, PolicyType.STS, ResultType.SUCCESS, f"mx1.{domain}", "192.0.2.1",
                   time=t)
    return [ok, ok, ok,
            TLSResult(domain, PolicyType.STS, ResultType.CERTIFICATE_EXPIRED, f"mx2.{domain}",
                      "192.0.2.2", "certificate has expired", t),
            TLSResult(domain, PolicyType.NO_POLICY, ResultType.STARTTLS_NOT_SUPPORTED,
                      f"mx3.{domain}", "192.0.2.3", "no STARTTLS", t)]


async def test_daily_report_to_mailto_rua(world: World) -> None:
    world.resolver.add("TXT", "_smtp._tls.example.net",
                       "v=TLSRPTv1; rua=mailto:tls@reports.example.net")
    world.record(*deliveries("example.net"))
    world.record(*deliveries("example.com"))  # no TLSRPT record: no report
    world.record(*deliveries("example.org"))  # our own domain: no report
    world.record(TLSResult("example.net", PolicyType.STS, ResultType.SUCCESS, "mx1.example.net",
                           "192.0.2.1", time=DEC1 - 3600))  # today: not in yesterday's report

    summary = await world.sender().run_once()
    assert summary.planned_days == ["2026-11-30"]
    assert summary.sent == [("example.net", "mailto:tls@reports.example.net")]
    assert summary.no_record == ["example.com"]
    [(rcpt, message)] = await world.queued()
    assert rcpt == "tls@reports.example.net"

    report = report_from_message(message)
    assert report.report_id == "2026-11-30.example.net@mail.example.org"
    by_type = {p.policy_type: p for p in report.policies}
    assert (by_type["sts"].total_successful, by_type["sts"].total_failure) == (3, 1)
    assert by_type["sts"].failure_details[0].result_type == "certificate-expired"
    assert by_type["sts"].failure_details[0].receiving_mx_hostname == "mx2.example.net"
    assert (by_type["no-policy-found"].total_successful,
            by_type["no-policy-found"].total_failure) == (0, 1)
    head = message.split(b"\r\n\r\n", 1)[0].decode()
    assert "\r\nTLS-Report-Domain: example.net\r\n" in head
    assert "\r\nTLS-Report-Submitter: mail.example.org\r\n" in head
    assert "\r\nFrom: <postmaster@example.org>\r\n" in head
    [signature] = await dkim.verify(world.resolver, message)
    assert signature.status is dkim.Status.PASS and signature.domain == "example.org"

    # The attachment is RFC 8460 JSON (gzip inside the message already checked).
    attachment = json.loads(json.dumps(report.to_json()))
    jsonschema.validate(attachment, SCHEMA)

    # The same day again, or after a restart: nothing is sent twice.
    assert (await world.sender().run_once()).sent == []
    assert len(await world.queued()) == 1
    # The next day is planned and reported once its results are complete.
    world.clock.at = DEC1 + 86400
    summary = await world.sender().run_once()
    assert summary.planned_days == ["2026-12-01"]
    assert len(await world.queued()) == 2


async def test_a_missed_day_is_reported_after_a_restart(world: World) -> None:
    world.resolver.add("TXT", "_smtp._tls.example.net", "v=TLSRPTv1; rua=mailto:t@example.net")
    world.record(*deliveries("example.net", NOV30 - 86400))
    world.clock.at = DEC1 - 86400  # Nov 30: reports Nov 29
    assert (await world.sender().run_once()).planned_days == ["2026-11-29"]
    world.record(*deliveries("example.net", NOV30))
    # Stopped over Dec 1 00:15; started again on Dec 2: Nov 30 and Dec 1 are both done.
    world.clock.at = DEC1 + 86400
    summary = await world.sender().run_once()
    assert summary.planned_days == ["2026-11-30", "2026-12-01"]
    ids = sorted(report_from_message(m).report_id for _, m in await world.queued())
    assert ids == ["2026-11-29.example.net@mail.example.org",
                   "2026-11-30.example.net@mail.example.org"]  # Dec 1 had no deliveries


async def test_dane_report_goes_to_the_mx_host(world: World) -> None:
    """RFC 8460 §3: for DANE the policy domain is the MX host name."""
    world.resolver.add("TXT", "_smtp._tls.mx.dane.example",
                       "v=TLSRPTv1; rua=mailto:tlsrpt@dane-host.example")
    world.record(TLSResult("customer.example", PolicyType.TLSA, ResultType.SUCCESS,
                           "mx.dane.example", "192.0.2.9", time=NOV30),
                 TLSResult("customer.example", PolicyType.TLSA, ResultType.TLSA_INVALID,
                           "mx.dane.example", "192.0.2.9", "no TLSA record matched", NOV30))
    summary = await world.sender().run_once()
    assert summary.sent == [("mx.dane.example", "mailto:tlsrpt@dane-host.example")]
    assert summary.no_record == ["customer.example"]
    [(_, message)] = await world.queued()
    [policy] = report_from_message(message).policies
    assert (policy.policy_type, policy.policy_domain) == ("tlsa", "mx.dane.example")
    assert (policy.total_successful, policy.total_failure) == (1, 1)
    assert b"TLS-Report-Domain: mx.dane.example\r\n" in message


@pytest.fixture
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("tlsrpt.example.net").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


async def test_https_rua_post_and_retry(world: World,
                                        tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    posted: list[tuple[str, bytes]] = []
    statuses = [503, 200]

    async def receive(request: web.Request) -> web.Response:
        posted.append((request.content_type, await request.read()))
        return web.Response(status=statuses.pop(0))

    app = web.Application()
    app.router.add_post("/tlsrpt", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls[0])
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        world.resolver.add("TXT", "_smtp._tls.example.net",
                           f"v=TLSRPTv1; rua=https://tlsrpt.example.net:{port}/tlsrpt")
        world.resolver.add("A", "tlsrpt.example.net", "127.0.0.1")  # our resolver, not the OS's
        world.record(*deliveries("example.net"))
        # The system trust store does not know the test CA: refused, not sent.
        untrusted = await world.sender().run_once()
        assert untrusted.sent == [] and "certificate" in untrusted.errors[0][2].lower()
        assert posted == []
        world.ssl_context = tls[1]
        errors_before = SENT.labels(method="https", result="error")._value.get()
        first = await world.sender().run_once()
        assert first.sent == [] and "HTTP status 503" in first.errors[0][2]
        assert SENT.labels(method="https", result="error")._value.get() == errors_before + 1
        assert world.db.pending()[0].policy_domain == "example.net"

        second = await world.sender().run_once()  # the next run (a restart) tries again
        assert second.sent == [("example.net", f"https://tlsrpt.example.net:{port}/tlsrpt")]
        assert world.db.pending() == []
        content_type, body = posted[-1]
        assert content_type == "application/tlsrpt+gzip"
        report = parse_report(body)
        jsonschema.validate(json.loads(gzip.decompress(body)), SCHEMA)
        sts = next(p for p in report.policies if p.policy_type == "sts")
        assert (sts.total_successful, sts.total_failure) == (3, 1)
        assert (await world.sender().run_once()).sent == []  # sent once, not again
        assert len(posted) == 2
    finally:
        await runner.cleanup()


async def test_no_signing_domain_sends_nothing(world: World) -> None:
    world.domains = DomainsConfig.model_validate({"domains": {"example.org": {}}})
    world.resolver.add("TXT", "_smtp._tls.example.net", "v=TLSRPTv1; rua=mailto:t@example.net")
    world.record(*deliveries("example.net"))
    summary = await world.sender().run_once()
    assert summary.planned_days == [] and await world.queued() == []
    assert world.db.last_planned_day() is None  # the day is still to be done later


async def test_reported_results_are_pruned_later(world: World) -> None:
    world.resolver.add("TXT", "_smtp._tls.example.net", "v=TLSRPTv1; rua=mailto:t@example.net")
    world.record(*deliveries("example.net"))
    await world.sender().run_once()
    assert len(world.results.between(0, DEC1)) == 5  # kept while a retry may need them
    world.clock.at = DEC1 + 30 * 86400
    await world.sender().run_once()
    assert world.results.between(0, DEC1) == []


async def test_https_rua_to_internal_addresses_is_refused(world: World) -> None:
    """A domain's rua must not make us POST into our own network (SSRF): a name that
    resolves to loopback, and an IP-literal host, are refused; nothing is sent."""
    world.internal_addresses = False  # as the server runs
    world.resolver.add("TXT", "_smtp._tls.example.net",
                       "v=TLSRPTv1; rua=https://tlsrpt.example.net:8443/tlsrpt")
    world.resolver.add("A", "tlsrpt.example.net", "127.0.0.1")
    world.resolver.add("TXT", "_smtp._tls.example.com",
                       "v=TLSRPTv1; rua=https://10.1.2.3/tlsrpt")
    world.record(*deliveries("example.net"), *deliveries("example.com"))
    run = await world.sender().run_once()
    assert run.sent == []
    errors = {domain: error for domain, _, error in run.errors}
    assert "resolves only to internal addresses (127.0.0.1): refused" in errors["example.net"]
    assert "10.1.2.3 is an IP address, not a name: refused" in errors["example.com"]
    assert {p.policy_domain for p in world.db.pending()} == {"example.net", "example.com"}
