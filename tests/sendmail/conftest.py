"""An in-process kittiwake submission server (trustme TLS) and a way to run
``kittiwake sendmail`` as a subprocess, as cron or a web application would."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from tests.recording_outbox import RecordingOutbox

from kittiwake.config import DomainsConfig
from kittiwake.dns import MockResolver
from kittiwake.sasl import derive_credentials
from kittiwake.smtpserver.context import ServerContext
from kittiwake.smtpserver.service import SMTPService
from kittiwake.store import AccountStore, Store
from kittiwake.store.store import account_dir

PASSWORD = "correct horse battery"



@dataclass
class Submission:
    ports: dict[str, int]
    ca_file: Path
    data_dir: Path
    outbox: list[dict[str, object]]
    tmp: Path

    def messages(self, account: str, mailbox: str = "Inbox") -> list[bytes]:
        store = AccountStore(account, account_dir(self.data_dir, account))
        try:
            return [store.read(m.id) for m in store.messages(mailbox)]
        finally:
            store.close()

    def write_conf(self, **settings: object) -> Path:
        """A submission config for the running server; keyword arguments override."""
        values: dict[str, object] = {
            "host": "127.0.0.1", "port": self.ports["submission"], "tls": "starttls",
            "username": "alice@example.org", "password": PASSWORD,
            "failures_dir": str(self.tmp / "failures"), "ca_file": str(self.ca_file),
        }
        values.update(settings)
        lines = [f"{k} = {json.dumps(v)}" for k, v in values.items() if v is not None]
        path = self.tmp / "submit.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def failures(self) -> list[Path]:
        d = self.tmp / "failures"
        return sorted(d.iterdir()) if d.exists() else []


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str


async def run_sendmail(args: Sequence[str], message: bytes, conf: Path | None,
                       home: Path) -> Ran:
    """``kittiwake sendmail ARGS < message`` in a child process."""
    env = {k: v for k, v in os.environ.items() if k != "KITTIWAKE_SUBMIT_CONF"}
    env["HOME"] = str(home)
    if conf is not None:
        env["KITTIWAKE_SUBMIT_CONF"] = str(conf)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kittiwake.cli.main", "sendmail", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env)
    out, err = await asyncio.wait_for(proc.communicate(message), 30)
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode(), err.decode())


@pytest.fixture
async def submission(tmp_path: Path) -> AsyncIterator[Submission]:
    ca = trustme.CA()
    cert = ca.issue_cert("mail.example.org", "127.0.0.1")
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(server_tls)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    domains = DomainsConfig.model_validate({
        "domains": {"example.org": {}},
        "accounts": {"alice": {"domain": "example.org", "destinations": {
            "alice@example.org": {}}},
                     "bob": {"domain": "example.org", "destinations": {"bob@example.org": {}}}},
    })
    data_dir = tmp_path / "data"
    for name in ("alice", "bob"):
        store = AccountStore(name, account_dir(data_dir, name))
        store.ensure_mailboxes(["Inbox"])
        store.set_credentials(json.dumps(derive_credentials(PASSWORD).to_dict()))
        store.close()
    outbox: list[dict[str, object]] = []
    ctx = ServerContext(hostname="mail.example.org", store=Store(data_dir), domains=domains,
                        resolver=MockResolver(), tls_context=server_tls, config_dir=tmp_path,
                        outbox=RecordingOutbox(outbox))
    ctx.limits.command_timeout = 10
    services = [SMTPService(ctx, kind, ["127.0.0.1"], 0)
                for kind in ("submission", "submissions")]
    for service in services:
        await service.start()
    ports = {s.kind: int(s.addresses()[0].rsplit(":", 1)[1]) for s in services}
    yield Submission(ports, ca_file, data_dir, outbox, tmp_path)
    for service in services:
        await service.close(1)
    ctx.store.close()
