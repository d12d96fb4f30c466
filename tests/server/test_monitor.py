"""The server's self-monitoring: certificate expiry per host name, own IPs on block
lists (RFC 5782), the DNSSEC status gauge, and the `status` report built from them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import trustme

from kittiwake import metrics
from kittiwake.dns import MockResolver
from kittiwake.queue.metrics import QueueSummary
from kittiwake.server.monitor import Monitor, certificate_expiry, own_ips
from kittiwake.server.status import status_report

GAUGE = metrics.REGISTRY.get_sample_value


def write_cert(tmp_path: Path, *names: str, days: int = 30) -> tuple[Path, dt.datetime]:
    ca = trustme.CA()
    not_after = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=days)
    cert = ca.issue_cert(*names, not_after=not_after)
    path = tmp_path / f"{names[0]}.pem"
    cert.cert_chain_pems[0].write_to_path(str(path))
    return path, not_after


def test_certificate_expiry_per_host_name(tmp_path: Path) -> None:
    path, not_after = write_cert(tmp_path, "mail.example.org", "mta-sts.example.org", days=9)
    found = certificate_expiry(path)
    assert [(c.host, c.not_after) for c in found] == [
        ("mail.example.org", not_after.timestamp()), ("mta-sts.example.org",
                                                      not_after.timestamp())]
    broken = tmp_path / "broken.pem"
    broken.write_text("not a certificate")
    monitor = Monitor(cert_files=[path, broken])
    monitor.check_certificates()
    assert GAUGE("kittiwake_tls_certificate_expiry_timestamp_seconds",
                 {"host": "mta-sts.example.org"}) == not_after.timestamp()
    assert GAUGE("kittiwake_tls_certificate_unreadable", {"file": str(broken)}) == 1
    assert GAUGE("kittiwake_tls_certificate_unreadable", {"file": str(path)}) == 0
    assert str(broken) in monitor.cert_errors


class Listener:
    def __init__(self, *ips: str) -> None:
        self.ips = list(ips)


def test_own_ips_skip_unspecified_and_duplicates() -> None:
    assert own_ips([Listener("0.0.0.0", "192.0.2.10"), Listener("::", "192.0.2.10",
                                                                "2001:db8::25")]) == [
        "192.0.2.10", "2001:db8::25"]


async def test_own_ip_on_blocklist_gauge() -> None:
    r = MockResolver()
    r.add("A", "10.2.0.192.bl.example", "127.0.0.2")
    r.fail("A", "10.2.0.192.broken.example", "servfail")
    monitor = Monitor(ips=["192.0.2.10"], zones=["bl.example", "clean.example",
                                                 "broken.example"], resolver=r)
    # Known before the first check: every (ip, zone) at 0.
    for zone in ("bl.example", "clean.example", "broken.example"):
        assert GAUGE("kittiwake_dns_dnsbl_listed", {"ip": "192.0.2.10", "zone": zone}) == 0
    await monitor.check_dnsbl()
    assert GAUGE("kittiwake_dns_dnsbl_listed", {"ip": "192.0.2.10", "zone": "bl.example"}) == 1
    assert GAUGE("kittiwake_dns_dnsbl_listed",
                 {"ip": "192.0.2.10", "zone": "clean.example"}) == 0
    # A failed lookup keeps the last known state (here: not listed).
    assert GAUGE("kittiwake_dns_dnsbl_listed",
                 {"ip": "192.0.2.10", "zone": "broken.example"}) == 0
    assert monitor.dnsbl[("192.0.2.10", "broken.example")] == "temperror"


def test_status_report_from_monitor_and_queue(tmp_path: Path) -> None:
    path, not_after = write_cert(tmp_path, "mail.example.org", days=5)
    monitor = Monitor(cert_files=[path], started=1000.0)
    monitor.check_certificates()
    monitor.dnsbl[("192.0.2.10", "bl.example")] = "fail"
    now = not_after.timestamp() - 5 * 86400
    report = status_report(
        hostname="mail.example.org", monitor=monitor, services=[],
        queue=QueueSummary(messages=2, recipients=3, held_messages=1, oldest=now - 7200,
                           failing_domains=(("example.net", 2),), delivered_since=4),
        received_today={"smtp": 3, "submission": 1, "submissions": 2}, now=now)
    assert report["uptime_seconds"] == round(now - 1000.0, 1)
    assert report["certificates"][0]["host"] == "mail.example.org"
    assert report["certificates"][0]["expires_in_seconds"] == 5 * 86400
    assert report["dnsbl_listed"] == ["192.0.2.10 in bl.example"]
    assert report["queue"]["oldest_age_seconds"] == 7200
    assert report["queue"]["failing_domains"] == [{"domain": "example.net", "recipients": 2}]
    assert report["messages_today"] == {"received": 3, "submitted": 3, "delivered": 4,
                                        "failed": 0}
    from kittiwake.cli.status import render

    screen = render(report)
    assert "mail.example.org" in screen and "in 5d (renew soon)" in screen
    assert "queue: 2 messages (3 recipients), oldest 2h, 1 on hold" in screen
    assert "blocklisted: 192.0.2.10 in bl.example" in screen


async def test_running_server_watches_its_own_ips_on_monitored_block_lists() -> None:
    """dns.monitor_dnsbl_zones: the gauge and `status` show a listed listener IP."""
    import asyncio

    from startup_helpers import remove_created, write_config

    from kittiwake.config import load
    from kittiwake.server.app import Server
    from kittiwake.server.control import SOCKET_NAME, request

    conf = write_config("""
hostname = "mail.example.org"
data_dir = "../data"
[dns]
monitor_dnsbl_zones = ["bl.example", "clean.example"]
[listeners.public]
ips = ["127.0.0.2"]
""")
    resolver = MockResolver()
    resolver.add("A", "2.0.0.127.bl.example", "127.0.0.2")
    server = Server(load(conf), resolver=resolver)
    try:
        await server.start()
        ctl = server.data_dir / SOCKET_NAME
        async with asyncio.timeout(10):
            while True:
                status = await request(ctl, "status")
                if status["dnsbl_listed"]:
                    break
                await asyncio.sleep(0.02)
        assert status["dnsbl_listed"] == ["127.0.0.2 in bl.example"]
        assert GAUGE("kittiwake_dns_dnsbl_listed", {"ip": "127.0.0.2", "zone": "bl.example"}) == 1
        assert GAUGE("kittiwake_dns_dnsbl_listed",
                     {"ip": "127.0.0.2", "zone": "clean.example"}) == 0
    finally:
        await server.close(0)
        remove_created()
