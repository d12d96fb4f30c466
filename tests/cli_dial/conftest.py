"""In-process kittiwake SMTP servers on 127.0.0.1 for ``kittiwake smtp dial`` and
``kittiwake dane dial``: one with a trustme certificate (STARTTLS), one without TLS."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from click.testing import CliRunner, Result

from kittiwake.cli.main import cli
from kittiwake.config import DomainsConfig
from kittiwake.dns import MockResolver
from kittiwake.smtpserver.context import ServerContext
from kittiwake.smtpserver.service import SMTPService
from kittiwake.store import Store


@dataclass
class Servers:
    tls_port: int  # STARTTLS with a certificate for mx.example.org, localhost, 127.0.0.1
    plain_port: int  # no STARTTLS
    implicit_port: int  # TLS from the first byte (submissions, RFC 8314)
    ca: trustme.CA
    ca_file: Path
    leaf_der: bytes
    ca_der: bytes


async def invoke(args: list[str], resolver: MockResolver | None = None) -> Result:
    """Run ``kittiwake ARGS`` in a worker thread (the servers run on this loop)."""
    obj: dict[str, Any] = {"resolver": resolver} if resolver is not None else {}
    return await asyncio.to_thread(CliRunner().invoke, cli, args, obj=obj)


async def _start(tmp: Path, name: str, tls: ssl.SSLContext | None,
                 kind: str = "smtp") -> tuple[SMTPService, Store]:
    store = Store(tmp / name)
    ctx = ServerContext(hostname="mx.example.org", store=store,
                        domains=DomainsConfig.model_validate({}), resolver=MockResolver(),
                        tls_context=tls, config_dir=tmp)
    ctx.limits.command_timeout = 10
    service = SMTPService(ctx, kind, ["127.0.0.1"], 0)
    await service.start()
    return service, store


@pytest.fixture
async def servers(tmp_path: Path) -> AsyncIterator[Servers]:
    ca = trustme.CA()
    cert = ca.issue_cert("mx.example.org", "localhost", "127.0.0.1")
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(server_tls)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    tls_service, tls_store = await _start(tmp_path, "tls", server_tls)
    plain_service, plain_store = await _start(tmp_path, "plain", None)
    implicit_service, implicit_store = await _start(tmp_path, "implicit", server_tls,
                                                    "submissions")
    services = (tls_service, plain_service, implicit_service)
    port = {s: int(s.addresses()[0].rsplit(":", 1)[1]) for s in services}
    yield Servers(port[tls_service], port[plain_service], port[implicit_service], ca, ca_file,
                  ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode()),
                  ssl.PEM_cert_to_DER_cert(ca.cert_pem.bytes().decode()))
    for service in services:
        await service.close(1)
    for store in (tls_store, plain_store, implicit_store):
        store.close()
