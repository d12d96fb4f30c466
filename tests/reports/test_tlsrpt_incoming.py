"""Reports other organizations send us (RFC 8460 §5.3) as an administrator sees them:
mail over the real MX to the domain's tlsrpt_reports address, read by the collector,
shown by ``kittiwake tlsrpt reports``; broken and hostile ones refused and counted."""

from __future__ import annotations

import asyncio
import json
import smtplib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from tests.tlsrpt.reportmail import google_message, microsoft_message

from kittiwake.cli.main import cli
from kittiwake.config import Config, load
from kittiwake.dns import MockResolver
from kittiwake.reports.tlsrpt_incoming import TLSRPTCollector
from kittiwake.reports.tlsrpt_metrics import INCOMING, RECEIVED_SESSIONS
from kittiwake.reports.tlsrptdb import TLSRPTDatabase
from kittiwake.smtpserver.context import ServerContext
from kittiwake.smtpserver.service import SMTPService
from kittiwake.store import Store

DOMAINS = """
[domains."example.org".tlsrpt_reports]
localpart = "tls-reports"
account = "alice"

[accounts.alice]
domain = "example.org"

[accounts.alice.destinations."alice@example.org"]

[accounts.alice.junk]
enabled = false
"""


def kittiwake(config_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config_dir), *args])


def received(outcome: str) -> float:
    return INCOMING.labels(outcome=outcome)._value.get()  # type: ignore[no-any-return]


def sessions(policy_type: str, result: str) -> float:
    return RECEIVED_SESSIONS.labels(  # type: ignore[no-any-return]
        policy_type=policy_type, result=result)._value.get()


@dataclass
class MX:
    config: Config
    store: Store
    db: TLSRPTDatabase
    collector: TLSRPTCollector
    port: int

    async def send(self, data: bytes, rcpt: str = "tls-reports@example.org") -> None:
        def run() -> None:
            with smtplib.SMTP("127.0.0.1", self.port, local_hostname="mail-sor-f41.google.com",
                              timeout=10) as client:
                client.sendmail("noreply-smtp-tls-reporting@google.com", [rcpt], data)
        await asyncio.to_thread(run)


@pytest.fixture
async def mx(tmp_path: Path) -> AsyncIterator[MX]:
    conf = tmp_path / "config"
    conf.mkdir()
    (conf / "kittiwake.conf").write_text('hostname = "mail.example.org"\ndata_dir = "../data"\n')
    (conf / "domains.conf").write_text(DOMAINS)
    config = load(conf)
    store = Store(config.data_dir)
    db = TLSRPTDatabase(config.data_dir)
    collector = TLSRPTCollector(store, db, lambda: config.domains)
    await collector.start()
    await collector.settled()
    ctx = ServerContext(hostname="mail.example.org", store=store, domains=config.domains,
                        resolver=MockResolver(), config_dir=conf)
    smtp = SMTPService(ctx, "smtp", ["127.0.0.1"], 0)
    await smtp.start()
    port = int(smtp.addresses()[0].rsplit(":", 1)[1])
    yield MX(config, store, db, collector, port)
    await smtp.close(1)
    await mx_close(collector, db, store)


async def mx_close(collector: TLSRPTCollector, db: TLSRPTDatabase, store: Store) -> None:
    await collector.close()
    db.close()
    store.close()


async def test_reports_arriving_by_mail_show_in_the_cli(mx: MX) -> None:
    before = {o: received(o) for o in ("stored", "duplicate", "too-large", "bad-json")}
    kinds = [(t, r) for t in ("sts", "tlsa", "no-policy-found") for r in ("successful", "failed")]
    sessions_before = {k: sessions(*k) for k in kinds}
    await mx.send(google_message())
    await mx.send(microsoft_message())
    await mx.send(google_message())  # the same report again: stored once
    await mx.send(google_message(b"{" + b" " * 30_000_000))  # a gzip bomb
    await mx.send(google_message(b"{\"organization-name\": "))  # broken JSON
    await mx.collector.settled()
    assert received("stored") == before["stored"] + 2
    assert received("duplicate") == before["duplicate"] + 1
    assert received("too-large") == before["too-large"] + 1
    assert received("bad-json") == before["bad-json"] + 1
    # The sessions of the two stored reports, the duplicate not counted again.
    assert {k: sessions(*k) - sessions_before[k] for k in kinds} == {
        ("sts", "successful"): 158, ("sts", "failed"): 3, ("tlsa", "successful"): 0,
        ("tlsa", "failed"): 0, ("no-policy-found", "successful"): 5,
        ("no-policy-found", "failed"): 2}
    # Every message is still in the mailbox for a person to look at.
    account = await mx.store.account("alice")
    assert len(await account.uid_ids("TLSRPT")) == 5

    conf = mx.config.config_dir
    result = kittiwake(conf, "tlsrpt", "reports")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["DAY", "ORGANIZATION", "POLICY", "DOMAIN", "TYPE", "MX",
                                "HOSTS", "SUCCESSFUL", "FAILED", "FAILURE", "TYPES"]
    column = lines[0].index("SUCCESSFUL")
    rows = lines[1:-1]
    assert len(rows) == 3
    assert all(r[column - 2:column] == "  " for r in rows)  # aligned
    headers = ["DAY", "ORGANIZATION", "POLICY DOMAIN", "TYPE", "MX HOSTS", "SUCCESSFUL",
               "FAILED", "FAILURE TYPES"]
    starts = [lines[0].index(h) for h in headers]
    cells = [{h: r[a:b].strip() for h, a, b in zip(headers, starts, [*starts[1:], None],
                                                      strict=True)} for r in rows]
    assert sorted((c["ORGANIZATION"], c["TYPE"], c["SUCCESSFUL"], c["FAILED"],
                   c["FAILURE TYPES"]) for c in cells) == [
        ("Google Inc.", "sts", "118", "3", "certificate-expired 3"),
        ("Microsoft Corporation", "no-policy-found", "5", "2", "certificate-host-mismatch 2"),
        ("Microsoft Corporation", "sts", "40", "0", "-")]
    google = next(c for c in cells if c["ORGANIZATION"] == "Google Inc.")
    assert google["DAY"] == "2026-11-29" and google["POLICY DOMAIN"] == "example.org"
    assert google["MX HOSTS"] == "mail.example.org,*.mx.example.org"
    assert lines[-1] == "2 report(s): 163 successful, 5 failed sessions"

    as_json = json.loads(kittiwake(conf, "tlsrpt", "reports", "--domain", "example.org",
                                   "--json").output)
    assert sorted((r["organization"], r["policy_type"], r["successful"], r["failed"])
                  for r in as_json) == [("Google Inc.", "sts", 118, 3),
                                        ("Microsoft Corporation", "no-policy-found", 5, 2),
                                        ("Microsoft Corporation", "sts", 40, 0)]
    assert as_json[0]["failure_types"] or as_json[1]["failure_types"]
    assert kittiwake(conf, "tlsrpt", "reports", "--domain", "example.net").output == \
        "no TLS reports about example.net\n"
    assert kittiwake(conf, "tlsrpt", "reports", "--since", "2026-12-01").output == \
        "no TLS reports since 2026-12-01\n"
    bad = kittiwake(conf, "tlsrpt", "reports", "--since", "last week")
    assert bad.exit_code == 1 and "expected a date" in bad.output


async def test_reports_that_arrived_while_stopped_are_read_at_start(mx: MX) -> None:
    await mx.collector.close()  # the server is down; mail still lands in the mailbox
    account = await mx.store.account("alice")
    await account.ensure_mailboxes(["TLSRPT"])
    await account.deliver("TLSRPT", microsoft_message())
    collector = TLSRPTCollector(mx.store, mx.db, lambda: mx.config.domains)
    await collector.start()
    await collector.settled()
    rows = await asyncio.to_thread(mx.db.policies, "example.org")
    assert {r.organization for r in rows} == {"Microsoft Corporation"}
    await collector.close()


def test_sent_reports_are_listed(tmp_path: Path) -> None:
    """``kittiwake tlsrpt sent`` shows the outgoing state the daily run keeps."""
    from kittiwake.reports.tlsrptdb import Pending

    conf = tmp_path / "config"
    conf.mkdir()
    (conf / "kittiwake.conf").write_text('hostname = "mail.example.org"\ndata_dir = "../data"\n')
    (conf / "domains.conf").write_text("")
    assert kittiwake(conf, "tlsrpt", "sent").output == "no TLS reports made yet\n"
    db = TLSRPTDatabase(tmp_path / "data")
    db.plan_day("2026-11-30", [("domain", "example.net"), ("host", "mx.dane.example")])
    db.finish(Pending("2026-11-30", "domain", "example.net", 0), "sent")
    db.finish(Pending("2026-11-30", "host", "mx.dane.example", 0), "pending",
              "https://r.example/: HTTP status 503")
    db.close()
    lines = kittiwake(conf, "tlsrpt", "sent").output.splitlines()
    assert lines[0].split() == ["DAY", "POLICY", "DOMAIN", "KIND", "STATE", "ATTEMPTS", "ERROR"]
    assert lines[1].split() == ["2026-11-30", "example.net", "domain", "sent", "1", "-"]
    assert lines[2].split()[:5] == ["2026-11-30", "mx.dane.example", "host", "pending", "1"]
    assert lines[2].endswith("HTTP status 503")
