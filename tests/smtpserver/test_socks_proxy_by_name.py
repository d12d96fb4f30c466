"""A SOCKS proxy configured by name is resolved by kittiwake's resolver (issue 13 item 1)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.integration.loopback import free_port

from kittiwake.config import DomainsConfig, StaticConfig
from kittiwake.queue import Envelope, NewRecipient, Queue
from kittiwake.queue.deliver import Deliverer, make_selector
from kittiwake.queue.direct import DirectOptions
from kittiwake.queue.model import Outcome

MESSAGE = b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: socks\r\n\r\nHi Bob\r\n"
PROXY = "proxy.only-in-the-mock.example"  # no system resolver knows this name


async def test_socks_proxy_by_name(smtp_server: Any, tmp_path: Path) -> None:
    binary = shutil.which("microsocks")
    assert binary, "microsocks missing: install the Debian package microsocks"
    port = free_port()
    proxy = subprocess.Popen([binary, "-i", "127.0.0.1", "-p", str(port)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            await asyncio.sleep(0.05)
        r = smtp_server.resolver
        r.add("MX", "example.org", "10 mx.example.org")
        r.add("A", "mx.example.org", "127.0.0.1")
        r.add("A", PROXY, "127.0.0.1")
        static = StaticConfig.model_validate({
            "hostname": "out.example.org",
            "transports": {"proxy": {"socks": {"address": f"{PROXY}:{port}",
                                               "remote_ips": ["192.0.2.10"],
                                               "hostname": "out.example.org"}}}})
        domains = DomainsConfig.model_validate({
            "domains": {"example.org": {}},
            "routes": [{"to_domains": ["example.org"], "transport": "proxy"}]})
        select = make_selector(static, lambda: domains, tmp_path, "out.example.org",
                               resolver=r)
        queue = Queue(tmp_path / "q")
        await queue.enqueue(Envelope(mail_from="alice@example.org", account="alice",
                                     recipients=(NewRecipient("bob@example.org"),)), MESSAGE)
        [batch] = await queue.due(datetime.now(UTC) + timedelta(seconds=1))
        choice = select(batch)
        assert isinstance(choice, DirectOptions)
        choice.port = smtp_server.ports["smtp"]
        deliverer = Deliverer(resolver=r, hostname="out.example.org", select=lambda b: choice)
        [result] = await deliverer(batch)
        assert result.outcome is Outcome.OK, result
        assert any(name == PROXY for _t, name in r.queries)
        [stored] = smtp_server.messages("bob")
        assert b"Hi Bob" in stored
        await deliverer.close()
        queue.close()
    finally:
        proxy.terminate()
        proxy.wait()
