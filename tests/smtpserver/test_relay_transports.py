"""Outgoing transports against kittiwake's own SMTP server: submission with each SASL
mechanism, SOCKS5 through a real microsocks, and routes picking them."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from integration.loopback import free_loopback
from kittiwake.config import DomainsConfig, StaticConfig
from kittiwake.queue import Envelope, NewRecipient, Queue
from kittiwake.queue.deliver import Deliverer, Relay, make_selector
from kittiwake.queue.direct import DirectOptions
from kittiwake.queue.model import Outcome
from kittiwake.smtpclient import TLSMode

PASSWORD = "correct horse battery"
MESSAGE = b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: relayed\r\n\r\nHi Bob\r\n"


async def queued_batch(tmp_path: Path, rcpt: str = "bob@example.org") -> tuple[Queue, Any]:
    queue = Queue(tmp_path / "q")
    await queue.enqueue(Envelope(mail_from="alice@example.org",
                                 recipients=(NewRecipient(rcpt),), account="alice"), MESSAGE)
    [batch] = await queue.due(datetime.now(UTC) + timedelta(seconds=1))
    return queue, batch


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-1", "CRAM-MD5", "PLAIN", "LOGIN"])
async def test_submission_transport_each_mechanism(smtp_server, tmp_path: Path,
                                                   mech: str) -> None:
    queue, batch = await queued_batch(tmp_path)
    relay = Relay("127.0.0.1", smtp_server.ports["submission"], TLSMode.STARTTLS,
                  smtp_server.client_tls, "alice@example.org", PASSWORD, [mech])
    relay.tls_context.check_hostname = False  # connecting by IP; chain still verified
    deliverer = Deliverer(resolver=smtp_server.resolver, hostname="client.example")
    [result] = await deliverer.relay(batch, MESSAGE, relay)
    assert result.outcome is Outcome.OK, result
    [stored] = smtp_server.messages("bob")
    assert b"Hi Bob" in stored and b"with ESMTPSA" in stored
    queue.close()


async def test_submissions_transport_wrong_password_is_temporary(smtp_server,
                                                                 tmp_path: Path) -> None:
    queue, batch = await queued_batch(tmp_path)
    relay = Relay("127.0.0.1", smtp_server.ports["submissions"], TLSMode.IMPLICIT,
                  smtp_server.client_tls, "alice@example.org", "wrong password")
    relay.tls_context.check_hostname = False
    [result] = await Deliverer(resolver=smtp_server.resolver,
                               hostname="client.example").relay(batch, MESSAGE, relay)
    # Issue 13 item 3: a refused relay login is retried (the admin fixes the password).
    assert result.outcome is Outcome.TEMPORARY
    assert result.error.text.startswith("relay authentication failed: 535 5.7.8")
    queue.close()


def start_microsocks(binary: str) -> tuple[subprocess.Popen[bytes], str, int]:
    """microsocks on a random 127.0.N.M and a port picked here; if another process took
    the port before microsocks bound it (microsocks then exits), try another."""
    for _attempt in range(5):
        ip = free_loopback()
        with socket.socket() as s:
            s.bind((ip, 0))
            port = int(s.getsockname()[1])
        proc = subprocess.Popen([binary, "-i", ip, "-p", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 5
        while proc.poll() is None and time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex((ip, port)) == 0:
                    return proc, ip, port
            time.sleep(0.02)
        proc.kill()
        proc.wait()
    raise AssertionError("microsocks did not start")


@pytest.mark.integration
async def test_socks_transport_through_microsocks(smtp_server, tmp_path: Path) -> None:
    binary = shutil.which("microsocks")
    assert binary, "microsocks missing: install the Debian package microsocks"
    proxy, proxy_ip, port = await asyncio.to_thread(start_microsocks, binary)
    try:
        r = smtp_server.resolver
        r.add("MX", "example.org", "10 mx.example.org")
        r.add("A", "mx.example.org", "127.0.0.1")
        static = StaticConfig.model_validate({
            "hostname": "out.example.org",
            "transports": {"proxy": {"socks": {"address": f"{proxy_ip}:{port}",
                                               "remote_ips": ["192.0.2.10"],
                                               "hostname": "out.example.org"}}}})
        domains = DomainsConfig.model_validate({
            "domains": {"example.org": {}},
            "routes": [{"to_domains": ["example.org"], "transport": "proxy"}]})
        select = make_selector(static, lambda: domains, tmp_path, "out.example.org")
        queue, batch = await queued_batch(tmp_path)
        choice = select(batch)
        assert isinstance(choice, DirectOptions) and choice.connect is not None
        choice.port = smtp_server.ports["smtp"]
        deliverer = Deliverer(resolver=r, hostname="out.example.org", select=lambda b: choice)
        [result] = await deliverer(batch)
        assert result.outcome is Outcome.OK, result
        [stored] = smtp_server.messages("bob")
        assert b"from out.example.org" in stored  # EHLO name of the socks transport
        queue.close()
    finally:
        proxy.terminate()
        proxy.wait()


async def test_routes_pick_transport_by_domain_and_attempts(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("secret\n")
    static = StaticConfig.model_validate({
        "hostname": "out.example.org",
        "transports": {
            "relay": {"submission": {"host": "smtp.provider.example", "username": "u",
                                     "password_file": "pw"}},
            "never": {"fail": {"code": 550, "message": "not to them"}}}})
    domains = DomainsConfig.model_validate({
        "domains": {"example.org": {}},
        "accounts": {"alice": {"domain": "example.org", "routes": [
            {"to_domains": [".corp.example"], "transport": "relay"}]}},
        "routes": [{"to_domains": ["blocked.example"], "transport": "never"},
                   {"min_attempts": 2, "transport": "relay"}]})
    select = make_selector(static, lambda: domains, tmp_path, "out.example.org")
    queue = Queue(tmp_path / "q")
    for rcpt in ("x@mail.corp.example", "x@blocked.example", "x@other.example"):
        await queue.enqueue(Envelope(mail_from="alice@example.org",
                                     recipients=(NewRecipient(rcpt),), account="alice"), MESSAGE)
    soon = datetime.now(UTC) + timedelta(seconds=1)
    chosen = {b.domain: select(b) for b in await queue.due(soon)}
    assert isinstance(chosen["mail.corp.example"], Relay)
    assert chosen["mail.corp.example"].password == "secret"
    assert chosen["blocked.example"].code == 550
    assert isinstance(chosen["other.example"], DirectOptions)
    # After two failed attempts the global min_attempts=2 route relays instead.
    from kittiwake.queue.model import DeliveryError

    later = datetime.now(UTC)
    for _ in range(2):
        later += timedelta(days=1)
        [batch] = [b for b in await queue.due(later) if b.domain == "other.example"]
        await queue.record_result([r.id for r in batch.recipients], Outcome.TEMPORARY,
                                  DeliveryError(451, "4.0.0", "later", "mx"), now=later)
    later += timedelta(days=1)
    [batch] = [b for b in await queue.due(later) if b.domain == "other.example"]
    assert isinstance(select(batch), Relay)
    queue.close()


async def test_pedantic_makes_direct_delivery_strict_about_8bitmime(tmp_path: Path) -> None:
    domains = DomainsConfig()
    for pedantic in (False, True):
        static = StaticConfig.model_validate({"hostname": "out.example.org",
                                              "pedantic": pedantic})
        select = make_selector(static, lambda: domains, tmp_path, "out.example.org")
        queue, batch = await queued_batch(tmp_path / str(pedantic), "x@remote.example")
        choice = select(batch)
        assert isinstance(choice, DirectOptions) and choice.strict_8bitmime is pedantic
        queue.close()


async def test_messages_for_one_host_share_a_connection(smtp_server, tmp_path: Path) -> None:
    from kittiwake.smtpserver.metrics import CONNECTIONS

    queue = Queue(tmp_path / "q")
    for n in range(3):
        await queue.enqueue(Envelope(mail_from="carol@sender.example",
                                     recipients=(NewRecipient("bob@example.org"),)),
                            MESSAGE.replace(b"relayed", b"relayed %d" % n))
    deliverer = Deliverer(resolver=smtp_server.resolver, hostname="client.example")
    relay = Relay("127.0.0.1", smtp_server.ports["smtp"], TLSMode.NONE)
    before = CONNECTIONS.labels(service="smtp", result="accepted")._value.get()
    soon = datetime.now(UTC) + timedelta(seconds=1)
    for batch in await queue.due(soon):
        [result] = await deliverer.relay(batch, batch.path.read_bytes(), relay)
        assert result.outcome is Outcome.OK
    assert CONNECTIONS.labels(service="smtp", result="accepted")._value.get() - before == 1
    assert deliverer.pool.reused == 2
    assert len(smtp_server.messages("bob")) == 3
    await deliverer.close()
    queue.close()
