"""An in-process IMAP server on a loopback port, with one account (alice / secret)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kittiwake.config.domains import DomainsConfig
from kittiwake.imapserver.context import IMAPContext
from kittiwake.imapserver.service import IMAPService
from kittiwake.sasl import derive_credentials
from kittiwake.store import Store
from kittiwake.store.account import AccountStore
from kittiwake.store.store import account_dir

PASSWORD = "secret"


@dataclass
class IMAPServer:
    ctx: IMAPContext
    service: IMAPService
    store: Store

    @property
    def port(self) -> int:
        return int(self.service.addresses()[0].rsplit(":", 1)[1])

    async def deliver(self, data: bytes, mailbox: str = "Inbox", account: str = "alice") -> int:
        acc = await self.store.account(account, default_mailboxes=self.ctx.mailboxes_of(account))
        return (await acc.deliver(mailbox, data)).uid


def make_domains() -> DomainsConfig:
    return DomainsConfig.model_validate({
        "domains": {"example.org": {}},
        "accounts": {
            "alice": {"domain": "example.org", "destinations": {"alice@example.org": {}}},
            "bob": {"domain": "example.org", "destinations": {"bob@example.org": {}}},
        }})


@pytest.fixture
async def imap_server(tmp_path: Path) -> AsyncIterator[IMAPServer]:
    data_dir = tmp_path / "data"
    for name in ("alice", "bob"):
        core = AccountStore(name, account_dir(data_dir, name))
        core.set_credentials(json.dumps(derive_credentials(PASSWORD).to_dict()))
        core.close()
    store = Store(data_dir)
    ctx = IMAPContext(hostname="mail.example.org", store=store, domains=make_domains(),
                      plaintext_login=True)
    service = IMAPService(ctx, "imap", ["127.0.0.1"], 0)
    await service.start()
    yield IMAPServer(ctx, service, store)
    await service.close(1)
    store.close()
