"""``kittiwake dane dial`` end to end: a real validating resolver (unbound over bind9's
signed zones, :mod:`.dnsworld`) serves the addresses and TLSA records, a kittiwake SMTP
server in this process serves STARTTLS with a trustme certificate, and the command runs
as a child process with ``KITTIWAKE_DNS`` pointing at unbound (RFC 7672).

The TLSA data is computed here with ``cryptography`` (independent of kittiwake.dane).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kittiwake.config import DomainsConfig
from kittiwake.dns import MockResolver
from kittiwake.smtpserver.context import ServerContext
from kittiwake.smtpserver.service import SMTPService
from kittiwake.store import Store

from .dnsworld import MakeDNSWorld

GOOD = "mx-dial.signed.test"
BAD = "mx-dialbad.signed.test"
INSECURE = "mx-dial.unsigned.test"


def spki_sha256(cert_pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem)
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[int, str]]:
    """A STARTTLS server on 127.0.0.1; yields (port, SHA-256 of its leaf's SPKI)."""
    ca = trustme.CA()
    cert = ca.issue_cert(GOOD, BAD, INSECURE)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(tls)
    store = Store(tmp_path / "data")
    ctx = ServerContext(hostname=GOOD, store=store, domains=DomainsConfig.model_validate({}),
                        resolver=MockResolver(), tls_context=tls, config_dir=tmp_path)
    service = SMTPService(ctx, "smtp", ["127.0.0.1"], 0)
    await service.start()
    port = int(service.addresses()[0].rsplit(":", 1)[1])
    yield port, spki_sha256(cert.cert_chain_pems[0].bytes())
    await service.close(1)
    store.close()


async def dial(env: dict[str, str], target: str) -> tuple[int, dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kittiwake.cli.main", "dane", "dial", "--json", "--timeout", "10",
        target, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    assert not err, err.decode()
    return proc.returncode, json.loads(out)


async def test_dane_dial_with_a_validating_resolver(server: tuple[int, str],
                                                    make_dns_world: MakeDNSWorld) -> None:
    port, leaf_hash = server
    other_key = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    world = make_dns_world([
        (GOOD, "A", "127.0.0.1"),
        (f"_{port}._tcp.{GOOD}", "TLSA", f"3 1 1 {leaf_hash}"),
        (BAD, "A", "127.0.0.1"),
        (f"_{port}._tcp.{BAD}", "TLSA", f"3 1 1 {hashlib.sha256(other_key).hexdigest()}"),
        (INSECURE, "A", "127.0.0.1"),
        (f"_{port}._tcp.{INSECURE}", "TLSA", f"3 1 1 {leaf_hash}"),
    ])

    code, report = await dial(world.env, f"{GOOD}:{port}")
    assert code == 0, report
    assert report["verified"] is True and report["dnssec"] is True
    assert report["addresses"] == {"records": ["127.0.0.1"], "authentic": True,
                                   "status": "found"}
    assert report["tlsa"]["authentic"] is True
    assert report["verification"]["matched"] == f"3 1 1 {leaf_hash}"
    assert report["tls"]["version"] in ("TLSv1.2", "TLSv1.3")

    code, report = await dial(world.env, f"{BAD}:{port}")
    assert code == 2
    assert report["verified"] is False and report["dnssec"] is True
    assert report["reason"].startswith("no TLSA record matched")

    code, report = await dial(world.env, f"{INSECURE}:{port}")
    assert code == 2
    assert report["addresses"]["authentic"] is False and report["dnssec"] is False
    assert "not DNSSEC-authentic" in report["reason"]
