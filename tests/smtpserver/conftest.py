"""An in-process kittiwake SMTP server on 127.0.0.1 with a mock resolver and trustme TLS."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from tests.recording_outbox import RecordingOutbox

from kittiwake import dkim
from kittiwake.config import DomainsConfig
from kittiwake.dns import MockResolver
from kittiwake.sasl import derive_credentials
from kittiwake.smtpserver.context import ServerContext
from kittiwake.smtpserver.service import SMTPService
from kittiwake.store import AccountStore, Store
from kittiwake.store.store import account_dir

PASSWORD = "correct horse battery"


@dataclass
class Running:
    ctx: ServerContext
    ports: dict[str, int]
    client_tls: ssl.SSLContext
    resolver: MockResolver
    data_dir: Path
    outbox: list[dict[str, object]]

    def messages(self, account: str, mailbox: str = "Inbox") -> list[bytes]:
        store = AccountStore(account, account_dir(self.data_dir, account))
        try:
            return [store.read(m.id) for m in store.messages(mailbox)]
        finally:
            store.close()



@pytest.fixture
async def smtp_server(tmp_path: Path) -> AsyncIterator[Running]:
    ca = trustme.CA()
    cert = ca.issue_cert("mx.example.org", "127.0.0.1")
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(server_tls)
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)

    key_pem = dkim.generate_key("ed25519")
    (tmp_path / "dkim.pem").write_bytes(key_pem)
    domains = DomainsConfig.model_validate({
        "domains": {"example.org": {"localpart_catchall_separator": "+", "dkim": {
            "selectors": {"s1": {"private_key_file": "dkim.pem"}}, "sign": ["s1"]}}},
        "accounts": {"alice": {"domain": "example.org", "destinations": {
            "alice@example.org": {"rulesets": [
                {"smtp_mailfrom_regexp": "@lists\\.example\\.net$", "mailbox": "Lists"}]}}},
                     "bob": {"domain": "example.org", "destinations": {"bob@example.org": {}}}},
    })
    resolver = MockResolver()
    data_dir = tmp_path / "data"
    for name in ("alice", "bob"):
        store = AccountStore(name, account_dir(data_dir, name))
        store.ensure_mailboxes(["Sent", "Lists"])
        store.set_credentials(json.dumps(derive_credentials(PASSWORD).to_dict()))
        store.close()
    outbox: list[dict[str, object]] = []
    ctx = ServerContext(hostname="mx.example.org", store=Store(data_dir), domains=domains,
                        resolver=resolver, tls_context=server_tls, config_dir=tmp_path,
                        outbox=RecordingOutbox(outbox))
    ctx.limits.command_timeout = 10
    services = [SMTPService(ctx, kind, ["127.0.0.1"], 0)
                for kind in ("smtp", "submission", "submissions")]
    for service in services:
        await service.start()
    ports = {s.kind: int(s.addresses()[0].rsplit(":", 1)[1]) for s in services}
    yield Running(ctx, ports, client_tls, resolver, data_dir, outbox)
    for service in services:
        await service.close(1)
    ctx.store.close()
