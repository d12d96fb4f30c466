"""DMARC reports both ways through a real SMTP MX: what a domain owner and an admin see.

1. Mail DKIM-signed by sender.example (whose DMARC record asks for rua reports)
   arrives at our MX; the next day's run queues an aggregate report to the rua
   address whose attachment reads back with the right counts.
2. A report about our domain arrives at our dmarc_reports address, lands in the
   DMARC mailbox, is collected and shows in ``kittiwake dmarc reports``; a
   hostile one is refused and counted.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import smtplib
from pathlib import Path

import pytest
from click.testing import CliRunner

from kittiwake import dkim
from kittiwake.cli.main import cli
from kittiwake.config import load
from kittiwake.dmarcrpt import DMARCResult, report_from_message
from kittiwake.dns import MockResolver
from kittiwake.reports import dmarc_metrics
from kittiwake.reports.dmarc_incoming import DMARCReportCollector
from kittiwake.reports.dmarc_outgoing import DAY, DMARCReporter, EvaluationRecorder
from kittiwake.reports.dmarc_service import report_settings
from kittiwake.reports.dmarcdb import DMARCDatabase, database_path
from kittiwake.smtpserver.context import ServerContext
from kittiwake.smtpserver.service import SMTPService
from kittiwake.store import Store

FIXTURES = Path(__file__).parent.parent / "dmarcrpt" / "data"
DAY0 = 20422


class FakeOutbox:
    def __init__(self) -> None:
        self.sent: list[dict[str, object]] = []

    async def enqueue(self, **kwargs: object) -> list[int]:
        self.sent.append(kwargs)
        return [len(self.sent)]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def send(port: int, mailfrom: str, rcpts: list[str], data: bytes) -> dict:  # type: ignore[type-arg]
    with smtplib.SMTP("127.0.0.1", port, local_hostname="mail.sender.example",
                      timeout=10) as client:
        return client.sendmail(mailfrom, rcpts, data)


def report_mail(xml: bytes) -> bytes:
    b64 = base64.encodebytes(gzip.compress(xml)).replace(b"\n", b"\r\n")
    return (b"From: noreply-dmarc-support@google.com\r\nTo: dmarc-reports@example.org\r\n"
            b"Subject: Report domain: example.org Submitter: google.com Report-ID: 1\r\n"
            b"Message-ID: <r1@google.com>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: application/gzip; name=\"google.com!example.org!1!2.xml.gz\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + b64)


def kittiwake(config_dir: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["--config", str(config_dir), *args])


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    conf = tmp_path / "config"
    conf.mkdir()
    (conf / "kittiwake.conf").write_text(
        'hostname = "mx.example.org"\ndata_dir = "../data"\n'
        '[dmarc_reporting]\nfrom_address = "dmarc-noreply@example.org"\n')
    key = dkim.generate_key("ed25519")
    (conf / "dkim.pem").write_bytes(key)
    (conf / "domains.conf").write_text("""
[domains."example.org".dkim]
sign = ["k1"]
[domains."example.org".dkim.selectors.k1]
private_key_file = "dkim.pem"
[domains."example.org".dmarc_reports]
localpart = "dmarc-reports"
account = "alice"
mailbox = "DMARC"
[accounts.alice]
domain = "example.org"
[accounts.alice.destinations."alice@example.org"]
""")
    return conf


async def test_reports_both_ways_through_the_mx(config_dir: Path, tmp_path: Path) -> None:
    config = load(config_dir)
    resolver = MockResolver()
    sender_key = dkim.load_private_key(dkim.generate_key("ed25519"))
    resolver.add("TXT", "sel._domainkey.sender.example", dkim.dns_record(sender_key))
    resolver.add("TXT", "sender.example", "v=spf1 ip4:127.0.0.1 -all")
    resolver.add("TXT", "_dmarc.sender.example",
                 "v=DMARC1; p=quarantine; rua=mailto:dmarc@reports.sender.example")
    our_key = dkim.load_private_key((config_dir / "dkim.pem").read_bytes())
    resolver.add("TXT", "k1._domainkey.example.org", dkim.dns_record(our_key))

    clock = Clock(DAY0 * DAY + 12 * 3600)
    store = Store(config.data_dir)
    db = DMARCDatabase(database_path(config.data_dir))
    own = lambda: set(config.domains.domains)  # noqa: E731
    recorder = EvaluationRecorder(db, own, clock=clock)
    collector = DMARCReportCollector(store, lambda: config.domains, db, clock=clock)
    await collector.start()
    ctx = ServerContext(hostname="mx.example.org", store=store, domains=config.domains,
                        resolver=resolver, config_dir=config_dir, dmarc_recorder=recorder)
    service = SMTPService(ctx, "smtp", ["127.0.0.1"], 0)
    await service.start()
    port = int(service.addresses()[0].rsplit(":", 1)[1])
    hostile_before = dmarc_metrics.INCOMING.labels(result="hostile")._value.get()
    try:
        # 1. Mail from sender.example: two signed (pass), one forged (fail).
        for i in range(2):
            data = dkim.sign_message(
                b"From: carol@sender.example\r\nTo: alice@example.org\r\n"
                b"Subject: hi %d\r\nMessage-ID: <%d@sender.example>\r\n\r\nHi\r\n" % (i, i),
                "sender.example", "sel", sender_key)
            assert await asyncio.to_thread(send, port, "carol@sender.example",
                                           ["alice@example.org"], data) == {}
        forged = (b"From: ceo@sender.example\r\nTo: alice@example.org\r\nSubject: pay\r\n"
                  b"Message-ID: <f@x>\r\n\r\npay now\r\n")
        assert await asyncio.to_thread(send, port, "x@elsewhere.example",
                                       ["alice@example.org"], forged) == {}
        # 2. A report about example.org to our report address, and a hostile one.
        assert await asyncio.to_thread(send, port, "", ["dmarc-reports@example.org"],
                                       report_mail((FIXTURES / "google.xml").read_bytes())
                                       ) == {}
        laughs = (b'<?xml version="1.0"?><!DOCTYPE f [<!ENTITY a "aaaaaaaaaa">]>'
                  b"<feedback>&a;</feedback>")
        assert await asyncio.to_thread(send, port, "", ["dmarc-reports@example.org"],
                                       report_mail(laughs)) == {}
        await collector.settled()
        assert await recorder.flush() == 3

        outbox = FakeOutbox()
        reporter = DMARCReporter(
            db, outbox, resolver, lambda: report_settings(config.static, config.domains,
                                                          config_dir),
            own, clock=clock)
        assert await reporter.run_once() == []  # still the same day
        clock.now = (DAY0 + 1) * DAY + 600
        [done] = await reporter.run_once()
    finally:
        await service.close(1)
        await collector.close()
        db.close()
        store.close()

    # The domain owner's view: one report, to the rua address, with the right counts.
    assert done.recipients == ("dmarc@reports.sender.example",)
    [message] = outbox.sent
    assert message["recipients"] == ["dmarc@reports.sender.example"]
    assert message["mailfrom"] == "dmarc-noreply@example.org"
    data = message["data"]
    assert isinstance(data, bytes)
    [signature] = await dkim.verify(resolver, data)
    assert signature.status is dkim.Status.PASS and signature.domain == "example.org"
    report = report_from_message(data)
    assert report.report_metadata.org_name == "example.org"
    assert report.policy_published.domain == "sender.example"
    by_result = {(r.row.policy_evaluated.dkim, r.row.source_ip): r.row.count
                 for r in report.records}
    assert by_result == {(DMARCResult.PASS, "127.0.0.1"): 2, (DMARCResult.FAIL, "127.0.0.1"): 1}
    subject = data.split(b"\r\nSubject: ", 1)[1].split(b"\r\n", 1)[0].decode()
    assert subject == (f"Report Domain: sender.example Submitter: example.org"
                       f" Report-ID: <{report.report_metadata.report_id}>")

    # The admin's view: the Google report is listed; the hostile one was counted.
    assert dmarc_metrics.INCOMING.labels(result="hostile")._value.get() == hostile_before + 1
    result = kittiwake(config_dir, "dmarc", "reports")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["ID", "REPORTER", "REPORT-ID", "DOMAIN", "BEGIN", "(UTC)",
                                "END", "(UTC)", "MESSAGES", "PASS", "FAIL"]
    assert lines[1].split()[1:4] == ["google.com", "4871238456723984512", "example.org"]
    assert lines[1].split()[-3:] == ["4", "3", "1"]
    sources = lines[lines.index("") + 1:]
    assert sources[1].split()[:5] == ["209.85.220.41", "example.org", "3", "3", "0"]
    assert sources[2].split()[:5] == ["203.0.113.9", "example.org", "1", "0", "1"]
    as_json = json.loads(kittiwake(config_dir, "dmarc", "reports", "--json").output)
    assert as_json["reports"][0]["report_metadata"]["org_name"] == "google.com"
    sent = kittiwake(config_dir, "dmarc", "sent").output.splitlines()
    assert sent[1].split()[:3] == ["2025-11-30", "sender.example", "queued"]
    one = kittiwake(config_dir, "dmarc", "report", "4871238456723984512")
    assert one.exit_code == 0 and "209.85.220.41" in one.output
    assert "example.org=pass" in one.output


def test_reports_cli_filters_and_errors(config_dir: Path, tmp_path: Path) -> None:
    from kittiwake.dmarcrpt import parse_report

    data_dir = tmp_path / "data"
    db = DMARCDatabase(database_path(data_dir))
    for name in ("google.xml", "yahoo.xml"):
        assert db.add_report(parse_report((FIXTURES / name).read_bytes()), "example.org", 1)
    # The same report again is stored once.
    assert db.add_report(parse_report((FIXTURES / "yahoo.xml").read_bytes()),
                         "example.org", 2) is None
    db.close()
    out = kittiwake(config_dir, "dmarc", "reports", "--since", "2025-12-01")
    assert out.exit_code == 0 and out.output.startswith("no DMARC reports")
    out = kittiwake(config_dir, "dmarc", "reports", "--since", "2025-11-30", "--json")
    assert [r["report_metadata"]["org_name"] for r in json.loads(out.output)["reports"]] == [
        "google.com", "Yahoo"]
    out = kittiwake(config_dir, "dmarc", "reports", "--domain", "other.example")
    assert out.output.startswith("no DMARC reports for other.example")
    out = kittiwake(config_dir, "dmarc", "reports", "--since", "yesterday")
    assert out.exit_code == 1
    assert "--since 'yesterday': expected a date YYYY-MM-DD" in out.output
    assert "Traceback" not in out.output
    out = kittiwake(config_dir, "dmarc", "report", "nope")
    assert out.exit_code == 1 and "no DMARC report 'nope'" in out.output


async def test_collector_catches_up_at_start_and_never_counts_twice(config_dir: Path,
                                                                    tmp_path: Path) -> None:
    from kittiwake.store import AccountStore
    from kittiwake.store.store import account_dir

    config = load(config_dir)
    acc = AccountStore("alice", account_dir(config.data_dir, "alice"))
    acc.ensure_mailboxes(["DMARC"])
    acc.deliver("DMARC", report_mail((FIXTURES / "yahoo.xml").read_bytes()))
    acc.deliver("DMARC", b"From: x@y.example\r\nSubject: not a report\r\n\r\nhi\r\n")
    acc.close()
    good = dmarc_metrics.INCOMING.labels(result="good")
    bad = dmarc_metrics.INCOMING.labels(result="bad")
    before = (good._value.get(), bad._value.get())
    for _ in range(2):  # the second start (a restart) finds nothing new
        store = Store(config.data_dir)
        db = DMARCDatabase(database_path(config.data_dir))
        collector = DMARCReportCollector(store, lambda: config.domains, db)
        await collector.start()
        await collector.settled()
        await collector.close()
        assert [r.org_name for r in db.reports()] == ["Yahoo"]
        db.close()
        store.close()
    assert (good._value.get(), bad._value.get()) == (before[0] + 1, before[1] + 1)
