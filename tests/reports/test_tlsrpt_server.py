"""The running server reads TLS reports mailed to its tlsrpt_reports address (the
wiring in server/app.py), and has its daily sender running."""

from __future__ import annotations

import asyncio
import shutil
import smtplib
import tempfile
from pathlib import Path

from tests.integration.loopback import free_port
from tests.tlsrpt.reportmail import google_message

from kittiwake.config import load
from kittiwake.dns import MockResolver
from kittiwake.server.app import Server, StartupError

DOMAINS = """
[domains."example.org".tlsrpt_reports]
localpart = "tls-reports"
account = "alice"

[accounts.alice]
domain = "example.org"

[accounts.alice.junk]
enabled = false
"""


def _port() -> int:
    return free_port()


async def _started(conf: Path) -> tuple[Server, int]:
    """A server on a free port (tried again when another test took the port first)."""
    for _ in range(5):
        port = _port()
        (conf / "kittiwake.conf").write_text(
            'hostname = "mail.example.org"\ndata_dir = "../data"\n[listeners.public]\n'
            f'ips = ["127.0.0.1"]\nsmtp = {{ enabled = true, port = {port} }}\n')
        server = Server(load(conf), resolver=MockResolver())
        for service in server.services_from_config():
            server.add_service(service)
        try:
            await server.start()
        except StartupError as exc:
            if "cannot listen" in str(exc):
                continue
            raise
        return server, port
    raise AssertionError("no free port")


async def test_server_stores_reports_mailed_to_it() -> None:
    root = Path(tempfile.mkdtemp(prefix="kwt"))  # short: the control socket lives below
    try:
        conf = root / "config"
        conf.mkdir()
        (conf / "domains.conf").write_text(DOMAINS)
        server, port = await _started(conf)
        try:
            assert server.tlsrpt_sender is not None  # the daily run is scheduled

            def send() -> None:
                with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                    client.sendmail("noreply-smtp-tls-reporting@google.com",
                                    ["tls-reports@example.org"], google_message())

            await asyncio.to_thread(send)
            assert server.tlsrpt_collector is not None and server.tlsrpt_db is not None
            await server.tlsrpt_collector.settled()
            rows = await asyncio.to_thread(server.tlsrpt_db.policies, "example.org")
            assert [(r.organization, r.successful, r.failed) for r in rows] == [
                ("Google Inc.", 118, 3)]
        finally:
            await server.close(0)
    finally:
        shutil.rmtree(root, ignore_errors=True)
