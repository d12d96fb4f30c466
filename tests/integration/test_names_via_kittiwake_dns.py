"""Every name kittiwake connects to is resolved by kittiwake.dns (issue 13 item 1).

The names used here exist only in a private DNS world (bind9 with signed
zones, a validating unbound on loopback, :mod:`.dnsworld`): the system
resolver has never heard of ``relay.signed.test`` or
``mta-sts.sts.signed.test``, so each path below works only when it asks
``KITTIWAKE_DNS`` / the configured resolver:

- a ``submission`` relay (the queue's Deliverer), with DANE when its address
  and TLSA answers are DNSSEC-authentic (RFC 7672) and PKIX otherwise;
- ``kittiwake smtp dial`` and ``kittiwake sendmail`` (child processes);
- the MTA-STS policy host, over HTTPS on port 443 of a loopback address,
  both for ``kittiwake mtasts lookup`` and for the queue's policy cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import ssl
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kittiwake.config import DomainsConfig
from kittiwake.dns import MockResolver
from kittiwake.mtasts import PolicyCache
from kittiwake.queue import Envelope, NewRecipient, Queue
from kittiwake.queue.deliver import Deliverer, Relay
from kittiwake.queue.model import Outcome
from kittiwake.sasl import derive_credentials
from kittiwake.smtpclient import TLSMode
from kittiwake.smtpserver.context import ServerContext
from kittiwake.smtpserver.service import SMTPService
from kittiwake.store import AccountStore, Store
from kittiwake.store.store import account_dir

from .dnsworld import MakeDNSWorld
from .loopback import free_loopback

PASSWORD = "correct horse battery"
SIGNED_RELAY = "relay.signed.test"
UNSIGNED_RELAY = "relay.unsigned.test"
STS_DOMAIN = "sts.signed.test"
STS_HOST = f"mta-sts.{STS_DOMAIN}"
MESSAGE = b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: via\r\n\r\nHi Bob\r\n"
POLICY = f"version: STSv1\r\nmode: enforce\r\nmx: mx.{STS_DOMAIN}\r\nmax_age: 86400\r\n"


def spki_sha256(cert_pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem)
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


@dataclass
class RelayServer:
    port: int
    leaf_spki: str
    ca_file: Path
    data_dir: Path

    def messages(self, account: str) -> list[bytes]:
        store = AccountStore(account, account_dir(self.data_dir, account))
        try:
            return [store.read(m.id) for m in store.messages("Inbox")]
        finally:
            store.close()


@pytest.fixture
async def relay_server(tmp_path: Path) -> AsyncIterator[RelayServer]:
    """kittiwake's own submission server on 127.0.0.1 (STARTTLS, trustme certificate)."""
    ca = trustme.CA()
    cert = ca.issue_cert(SIGNED_RELAY, UNSIGNED_RELAY)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(server_tls)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    data_dir = tmp_path / "data"
    for name in ("alice", "bob"):
        store = AccountStore(name, account_dir(data_dir, name))
        store.ensure_mailboxes(["Inbox"])
        store.set_credentials(json.dumps(derive_credentials(PASSWORD).to_dict()))
        store.close()
    domains = DomainsConfig.model_validate({
        "domains": {"example.org": {}},
        "accounts": {"alice": {"domain": "example.org",
                               "destinations": {"alice@example.org": {}}},
                     "bob": {"domain": "example.org", "destinations": {"bob@example.org": {}}}},
    })
    ctx = ServerContext(hostname=SIGNED_RELAY, store=Store(data_dir), domains=domains,
                        resolver=MockResolver(), tls_context=server_tls, config_dir=tmp_path)
    ctx.limits.command_timeout = 10
    service = SMTPService(ctx, "submission", ["127.0.0.1"], 0)
    await service.start()
    port = int(service.addresses()[0].rsplit(":", 1)[1])
    yield RelayServer(port, spki_sha256(cert.cert_chain_pems[0].bytes()), ca_file, data_dir)
    await service.close(1)
    ctx.store.close()


async def queued_batch(tmp_path: Path) -> tuple[Queue, object]:
    queue = Queue(tmp_path / "q")
    await queue.enqueue(Envelope(mail_from="alice@example.org", account="alice",
                                 recipients=(NewRecipient("bob@example.org"),)), MESSAGE)
    [batch] = await queue.due(datetime.now(UTC) + timedelta(seconds=1))
    return queue, batch


def relay_world(make_dns_world: MakeDNSWorld, relay: RelayServer):  # type: ignore[no-untyped-def]
    return make_dns_world([
        (SIGNED_RELAY, "A", "127.0.0.1"),
        (f"_{relay.port}._tcp.{SIGNED_RELAY}", "TLSA", f"3 1 1 {relay.leaf_spki}"),
        (UNSIGNED_RELAY, "A", "127.0.0.1"),
        (f"_{relay.port}._tcp.{UNSIGNED_RELAY}", "TLSA", f"3 1 1 {relay.leaf_spki}"),
    ])


async def test_relay_by_name_with_dane_when_signed(relay_server: RelayServer, tmp_path: Path,
                                                   make_dns_world: MakeDNSWorld) -> None:
    world = relay_world(make_dns_world, relay_server)
    deliverer = Deliverer(resolver=world.stub_resolver(), hostname="out.example.org")
    # The system trust store: the trustme certificate is NOT PKIX-valid for it.
    pkix = ssl.create_default_context()

    queue, batch = await queued_batch(tmp_path)
    relay = Relay(SIGNED_RELAY, relay_server.port, TLSMode.STARTTLS, pkix,
                  "alice@example.org", PASSWORD, ["PLAIN"])
    [result] = await deliverer.relay(batch, MESSAGE, relay)  # type: ignore[arg-type]
    assert result.outcome is Outcome.OK, result  # verified by DANE, not by the WebPKI
    [stored] = relay_server.messages("bob")
    assert b"Hi Bob" in stored
    plan = await deliverer.relay_plan(relay)
    assert plan.addresses == ["127.0.0.1"] and plan.authentic and plan.dane
    await deliverer.close()
    queue.close()


async def test_relay_by_name_without_dnssec_stays_pkix(relay_server: RelayServer,
                                                       tmp_path: Path,
                                                       make_dns_world: MakeDNSWorld) -> None:
    world = relay_world(make_dns_world, relay_server)
    deliverer = Deliverer(resolver=world.stub_resolver(), hostname="out.example.org")
    queue, batch = await queued_batch(tmp_path)

    # Unsigned zone: DANE does not apply (RFC 7672 §2.2.2); the system store refuses.
    relay = Relay(UNSIGNED_RELAY, relay_server.port, TLSMode.STARTTLS,
                  ssl.create_default_context(), "alice@example.org", PASSWORD, ["PLAIN"])
    [result] = await deliverer.relay(batch, MESSAGE, relay)  # type: ignore[arg-type]
    assert result.outcome is Outcome.TEMPORARY
    assert result.error is not None and "unable to get local issuer certificate" in \
        result.error.text
    plan = await deliverer.relay_plan(relay)
    assert plan.addresses == ["127.0.0.1"] and not plan.authentic and not plan.dane

    # The same name with the relay's CA trusted: resolved by kittiwake.dns, delivered.
    trusting = ssl.create_default_context(cafile=str(relay_server.ca_file))
    relay = Relay(UNSIGNED_RELAY, relay_server.port, TLSMode.STARTTLS, trusting,
                  "alice@example.org", PASSWORD, ["PLAIN"])
    [result] = await deliverer.relay(batch, MESSAGE, relay)  # type: ignore[arg-type]
    assert result.outcome is Outcome.OK, result
    await deliverer.close()
    queue.close()


async def run(env: dict[str, str], *args: str, stdin: bytes = b"") -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kittiwake.cli.main", *args, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    out, err = await asyncio.wait_for(proc.communicate(stdin), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_smtp_dial_and_sendmail_resolve_through_kittiwake_dns(
        relay_server: RelayServer, tmp_path: Path, make_dns_world: MakeDNSWorld) -> None:
    world = relay_world(make_dns_world, relay_server)
    code, out, err = await run(world.env, "smtp", "dial", "--json", "--timeout", "10",
                               "--ca-file", str(relay_server.ca_file),
                               f"{UNSIGNED_RELAY}:{relay_server.port}")
    report = json.loads(out)
    assert code == 0, (report, err)
    assert report["address"].startswith("127.0.0.1")
    assert report["pkix"]["valid"] is True

    conf = tmp_path / "submit.conf"
    conf.write_text(f'host = "{UNSIGNED_RELAY}"\nport = {relay_server.port}\n'
                    'tls = "starttls"\nusername = "alice@example.org"\n'
                    f'password = "{PASSWORD}"\nca_file = "{relay_server.ca_file}"\n'
                    f'failures_dir = "{tmp_path / "failures"}"\n')
    env = {**world.env, "KITTIWAKE_SUBMIT_CONF": str(conf), "HOME": str(tmp_path)}
    code, out, err = await run(env, "sendmail", "-f", "alice@example.org", "bob@example.org",
                               stdin=MESSAGE)
    assert code == 0, (out, err)
    assert any(b"Hi Bob" in m for m in relay_server.messages("bob"))


@dataclass
class PolicyHost:
    ip: str
    ca_file: Path


@pytest.fixture
async def policy_host(tmp_path: Path) -> AsyncIterator[PolicyHost]:
    """``https://mta-sts.sts.signed.test/.well-known/mta-sts.txt`` on port 443 of a
    loopback address of its own (RFC 8461 §3.3 fixes the port)."""
    ca = trustme.CA()
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(STS_HOST).configure_cert(tls)
    ca_file = tmp_path / "sts-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))

    async def policy(_request: web.Request) -> web.Response:
        return web.Response(text=POLICY, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/.well-known/mta-sts.txt", policy)
    runner = web.AppRunner(app)
    await runner.setup()
    ip = free_loopback()
    site = web.TCPSite(runner, ip, 443, ssl_context=tls)
    await site.start()
    yield PolicyHost(ip, ca_file)
    await runner.cleanup()


def sts_world(make_dns_world: MakeDNSWorld, host: PolicyHost):  # type: ignore[no-untyped-def]
    return make_dns_world([
        (f"_mta-sts.{STS_DOMAIN}", "TXT", '"v=STSv1; id=20260301T000000;"'),
        (STS_HOST, "A", host.ip),
    ])


async def test_mtasts_lookup_fetches_from_a_host_only_kittiwake_dns_knows(
        policy_host: PolicyHost, make_dns_world: MakeDNSWorld) -> None:
    world = sts_world(make_dns_world, policy_host)
    env = {**world.env, "SSL_CERT_FILE": str(policy_host.ca_file)}
    code, out, err = await run(env, "mtasts", "lookup", STS_DOMAIN)
    assert code == 0, (out, err)
    assert f"policy from https://{STS_HOST}/.well-known/mta-sts.txt:" in out
    assert "mode: enforce" in out and f"mx: mx.{STS_DOMAIN}" in out


async def test_the_queues_policy_cache_fetches_through_its_resolver(
        policy_host: PolicyHost, make_dns_world: MakeDNSWorld, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    world = sts_world(make_dns_world, policy_host)
    monkeypatch.setenv("SSL_CERT_FILE", str(policy_host.ca_file))
    monkeypatch.delenv("KITTIWAKE_DNS", raising=False)  # only the resolver passed in counts
    assert "KITTIWAKE_DNS" not in os.environ
    cache = PolicyCache(tmp_path / "sts")
    try:
        result = await cache.get_policy(world.stub_resolver(), STS_DOMAIN)
    finally:
        cache.close()
    assert result.policy is not None, result.reason
    assert result.enforce and result.mx_allowed(f"mx.{STS_DOMAIN}")
