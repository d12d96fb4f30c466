"""An MX (SMTP) and an IMAP server sharing one store and one junk filter, on loopback."""

from __future__ import annotations

import asyncio
import json
import smtplib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kittiwake.config import DomainsConfig
from kittiwake.dns import MockResolver
from kittiwake.imapserver.context import IMAPContext
from kittiwake.imapserver.service import IMAPService
from kittiwake.junk import JunkFilter
from kittiwake.sasl import derive_credentials
from kittiwake.smtpserver.context import ServerContext
from kittiwake.smtpserver.service import SMTPService
from kittiwake.store import AccountStore, Store
from kittiwake.store.store import account_dir

PASSWORD = "secret"


def domains(junk: dict[str, Any] | None = None) -> DomainsConfig:
    return DomainsConfig.model_validate({
        "domains": {"example.org": {}},
        "accounts": {"alice": {"domain": "example.org",
                               "destinations": {"alice@example.org": {}},
                               "junk": junk or {}}},
    })


@dataclass
class Servers:
    store: Store
    junk: JunkFilter
    resolver: MockResolver
    smtp_port: int
    imap_port: int
    pauses: list[float] = field(default_factory=list)

    async def send(self, mailfrom: str, data: bytes, rcpt: str = "alice@example.org") -> None:
        def run() -> None:
            with smtplib.SMTP("127.0.0.1", self.smtp_port, local_hostname="mail.sender.example",
                              timeout=10) as client:
                client.sendmail(mailfrom, [rcpt], data)
        await asyncio.to_thread(run)


@pytest.fixture
async def servers(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Servers]:
    settings = getattr(request, "param", None) or {
        "min_training_messages": 3, "first_time_delay_seconds": 5, "reject_threshold": 1.0}
    conf = domains(settings)
    data_dir = tmp_path / "data"
    core = AccountStore("alice", account_dir(data_dir, "alice"))
    core.set_credentials(json.dumps(derive_credentials(PASSWORD).to_dict()))
    core.close()
    store = Store(data_dir)
    resolver = MockResolver()
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:  # a controllable clock: record, do not wait
        pauses.append(seconds)

    junk = JunkFilter(store, lambda: conf, resolver, sleep=sleep)
    await junk.start()
    smtp_ctx = ServerContext(hostname="mx.example.org", store=store, domains=conf,
                             resolver=resolver, config_dir=tmp_path, junk=junk)
    smtp = SMTPService(smtp_ctx, "smtp", ["127.0.0.1"], 0)
    imap_ctx = IMAPContext(hostname="mx.example.org", store=store, domains=conf,
                           plaintext_login=True)
    imap = IMAPService(imap_ctx, "imap", ["127.0.0.1"], 0)
    await smtp.start()
    await imap.start()
    port = lambda s: int(s.addresses()[0].rsplit(":", 1)[1])  # noqa: E731
    yield Servers(store, junk, resolver, port(smtp), port(imap), pauses)
    await imap.close(1)
    await smtp.close(1)
    await junk.close()
    store.close()
