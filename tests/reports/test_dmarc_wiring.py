"""The server wires DMARC reporting: MX verdicts recorded, the daily report in the real queue,
reports for our domains collected; ``[dmarc_reporting] enabled = false`` turns sending off."""

from __future__ import annotations

import asyncio
import smtplib
import time
from pathlib import Path

from kittiwake import dkim
from kittiwake.config import load
from kittiwake.dmarcrpt import report_from_message
from kittiwake.dns import MockResolver
from kittiwake.reports.dmarc_outgoing import DAY
from kittiwake.server.app import Server


def write_config(tmp_path: Path, extra: str = "") -> Path:
    conf = tmp_path / "c"
    conf.mkdir()
    (conf / "kittiwake.conf").write_text(f"""
hostname = "mx.example.org"
data_dir = "../d"
[listeners.public]
ips = ["127.0.0.1"]
smtp = {{ enabled = true, port = 0 }}
{extra}""")
    (conf / "domains.conf").write_text("""
[domains."example.org"]
[accounts.alice]
domain = "example.org"
[accounts.alice.destinations."alice@example.org"]
""")
    return conf


def send(port: int, data: bytes) -> dict:  # type: ignore[type-arg]
    with smtplib.SMTP("127.0.0.1", port, local_hostname="mail.sender.example",
                      timeout=10) as client:
        return client.sendmail("carol@sender.example", ["alice@example.org"], data)


async def test_server_records_mx_verdicts_and_queues_the_daily_report(tmp_path: Path) -> None:
    resolver = MockResolver()
    key = dkim.load_private_key(dkim.generate_key("ed25519"))
    resolver.add("TXT", "sel._domainkey.sender.example", dkim.dns_record(key))
    resolver.add("TXT", "_dmarc.sender.example", "v=DMARC1; p=none; rua=mailto:d@sender.example")
    server = Server(load(write_config(tmp_path)), resolver=resolver)
    server.open_queue()
    for service in server.services_from_config():
        server.add_service(service)
    await server.start()
    try:
        [ctx] = server.smtp_contexts
        assert ctx.dmarc_recorder is server.dmarc_reports.recorder is not None
        port = int(next(s for s in server.services if s.name.startswith("smtp"))
                   .addresses()[0].rsplit(":", 1)[1])
        data = dkim.sign_message(b"From: carol@sender.example\r\nTo: alice@example.org\r\n"
                                 b"Subject: hi\r\nMessage-ID: <1@sender.example>\r\n\r\nhi\r\n",
                                 "sender.example", "sel", key)
        assert await asyncio.to_thread(send, port, data) == {}
        assert await server.dmarc_reports.recorder.flush() == 1
        await server.queue.add_hold_rule(from_domain="example.org")  # keep it queued
        reporter = server.dmarc_reports.reporter
        assert reporter is not None
        [done] = await reporter.run_once(now=time.time() + DAY)
        [(message, recipient)] = await server.queue.list()
        assert recipient.address == "d@sender.example"
        assert message.mail_from == "postmaster@example.org"  # the default From
        report = report_from_message(await server.queue.read(message.id))
        assert report.message_count == 1
        assert report.report_metadata.org_name == "example.org"
        assert done.queue_ids == (message.id,)
    finally:
        await server.close(0)


async def test_sending_can_be_turned_off(tmp_path: Path) -> None:
    conf = write_config(tmp_path, "[dmarc_reporting]\nenabled = false\n")
    server = Server(load(conf), resolver=MockResolver())
    server.open_queue()
    for service in server.services_from_config():
        server.add_service(service)
    await server.start()
    try:
        assert server.smtp_contexts[0].dmarc_recorder is None
        assert server.dmarc_reports.reporter is None
        assert server.dmarc_reports.collector is not None  # receiving still works
    finally:
        await server.close(0)
