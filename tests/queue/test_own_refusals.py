"""A refusal kittiwake makes itself is reported as its own, never as a server's reply.

Issue 13 item 2: with ``pedantic = true`` an 8-bit message for a server
without 8BITMIME used to bounce with "The mail server mx... replied: 554 ...",
``Remote-MTA``, ``Diagnostic-Code: smtp; ...`` and ``Status: 5.0.0``. Each
case here runs the queue for real (scheduler, direct delivery against a
scripted SMTP server on loopback, DSN into the local sender's Inbox) and reads
the DSN the sender gets: no invented reply, no Remote-MTA, the RFC 3463 code
that fits (5.6.3, 5.6.7, 5.7.30, 5.3.4, 5.1.10, 5.1.2, 4.7.5).
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.message
import email.policy
import random
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme

from kittiwake.config import DomainsConfig
from kittiwake.config.lookup import AddressIndex
from kittiwake.dns import MockResolver
from kittiwake.mtasts.cache import PolicyResult
from kittiwake.mtasts.policy import parse_policy
from kittiwake.queue import Envelope, NewRecipient, Queue, Scheduler
from kittiwake.queue.deliver import Deliverer
from kittiwake.queue.direct import DirectOptions
from kittiwake.queue.notices import DSNSender
from kittiwake.store import Store

CONFIG = DomainsConfig.model_validate({
    "domains": {"example.org": {}},
    "accounts": {"alice": {"domain": "example.org",
                           "destinations": {"alice@example.org": {}}}},
})
MX = "mx.remote.example"
PLAIN = (b"From: alice@example.org\r\nTo: bob@remote.example\r\nSubject: plan\r\n"
         b"Message-ID: <p1@example.org>\r\n\r\nSee attached.\r\n")
EIGHTBIT = PLAIN.replace(b"See attached.", "Grüße aus Köln.".encode())


@dataclass
class FakeMX:
    """An SMTP server that announces ``extensions`` and accepts everything it is sent."""

    extensions: tuple[str, ...] = ("PIPELINING", "ENHANCEDSTATUSCODES")
    tls: ssl.SSLContext | None = None
    commands: list[str] = field(default_factory=list)
    server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._session, "127.0.0.1", 0)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def send(*lines: str) -> None:
            writer.write("".join(f"{line}\r\n" for line in lines).encode())

        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            send(f"220 {MX} ESMTP")
            while line := await reader.readline():
                command = line.decode("utf-8", "replace").rstrip("\r\n")
                self.commands.append(command)
                verb = command.split(" ", 1)[0].upper()
                if verb == "EHLO":
                    exts = list(self.extensions)
                    if self.tls is not None and writer.get_extra_info("sslcontext") is None:
                        exts.append("STARTTLS")
                    send(*[f"250-{e}" for e in (MX, *exts[:-1])], f"250 {exts[-1]}")
                elif verb == "STARTTLS" and self.tls is not None:
                    send("220 2.0.0 go ahead")
                    await writer.drain()
                    await writer.start_tls(self.tls)
                elif verb == "DATA":
                    send("354 go on")
                    await writer.drain()
                    while (await reader.readline()) not in (b".\r\n", b""):
                        pass
                    send("250 2.0.0 queued")
                elif verb == "QUIT":
                    send("221 2.0.0 bye")
                    await writer.drain()
                    break
                else:
                    send("250 2.0.0 ok")
                await writer.drain()
        writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    @property
    def transactions(self) -> int:
        return sum(1 for c in self.commands if c.upper().startswith("MAIL FROM"))


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Env:
    """The queue, a mock DNS pointing remote.example at the fake MX, alice's Inbox."""

    def __init__(self, tmp_path: Path, mx: FakeMX) -> None:
        self.mx = mx
        self.clock = Clock()
        self.queue = Queue(tmp_path / "q", clock=self.clock, rng=random.Random(1))
        self.store = Store(tmp_path / "store")
        self.resolver = MockResolver()
        self.resolver.add("MX", "remote.example", f"10 {MX}")
        self.resolver.add("A", MX, "127.0.0.1")
        self.sender = DSNSender(hostname="mail.example.org", store=self.store,
                                queue=self.queue, index=AddressIndex(CONFIG))
        self.options = DirectOptions(hostname="mail.example.org", port=mx.port,
                                     strict_8bitmime=True, timeout=5)  # pedantic = true
        self.sts_cache: object = None
        self.select: object = None

    async def send(self, data: bytes = PLAIN, rcpt: str = "bob@remote.example",
                   **envelope: object) -> None:
        await self.queue.enqueue(Envelope(mail_from="alice@example.org", account="alice",
                                          recipients=(NewRecipient(rcpt),),
                                          **envelope), data)  # type: ignore[arg-type]

    async def bounce(self, max_attempts: int = 10, nth: int = 1) -> email.message.EmailMessage:
        """Run delivery attempts (a day apart) until alice has ``nth`` DSNs; the last."""
        deliverer = Deliverer(resolver=self.resolver, hostname="mail.example.org",
                              direct_options=self.options, sts_cache=self.sts_cache,
                              select=self.select)
        scheduler = Scheduler(self.queue, deliverer, clock=self.clock,
                              on_recorded=self.sender.on_recorded)
        try:
            for _ in range(max_attempts):
                await scheduler.dispatch()
                await scheduler.wait_idle()
                inbox = await self.inbox()
                if len(inbox) >= nth:
                    return inbox[nth - 1]
                self.clock.now += timedelta(days=1)
        finally:
            await scheduler.close()
            await deliverer.close()
        raise AssertionError("no DSN arrived")

    async def inbox(self) -> list[email.message.EmailMessage]:
        account = await self.store.account("alice")
        return [email.message_from_bytes(await account.read(m.id), policy=email.policy.default)
                for m in await account.messages("Inbox")]  # type: ignore[misc]


@pytest.fixture
async def mx() -> AsyncIterator[FakeMX]:
    server = FakeMX()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def env(tmp_path: Path, mx: FakeMX) -> AsyncIterator[Env]:
    environment = Env(tmp_path, mx)
    yield environment
    environment.queue.close()


def parts(dsn: email.message.EmailMessage) -> tuple[str, list[dict[str, str]]]:
    """The human text and the delivery-status field groups (plain or RFC 6533 global)."""
    human, status = list(dsn.iter_parts())[:2]
    text = human.get_content()
    # Read the status part as it is on the wire: the email package turns
    # message/delivery-status into sub-messages but leaves the global form as bytes.
    raw = status.as_bytes().split(b"\n\n", 1)[1] if b"\n\n" in status.as_bytes() else b""
    if status.get_content_type() == "message/delivery-status":
        raw = b"\n\n".join(g.as_bytes() for g in status.get_payload())
    groups: list[dict[str, str]] = []
    for block in raw.decode("utf-8", "replace").replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.replace("\n ", " ").replace("\n\t", " ").split("\n"):
            if ":" in line:
                name, value = line.split(":", 1)
                fields[name.strip().lower()] = " ".join(value.split())
        if fields:
            groups.append(fields)
    return text, groups


def assert_ours(dsn: email.message.EmailMessage, status: str, reason: str) -> dict[str, str]:
    """The DSN says kittiwake decided, gives ``reason``, and invents no remote reply."""
    text, groups = parts(dsn)
    recipient = groups[-1]
    assert recipient["status"] == status, recipient
    assert "remote-mta" not in recipient, recipient
    assert not recipient["diagnostic-code"].lower().startswith("smtp;"), recipient
    assert recipient["diagnostic-code"].startswith("X-Kittiwake;"), recipient
    flat = " ".join(text.split())
    assert "This mail system (kittiwake) decided this itself" in flat, text
    assert "not a reply from a receiving mail server" in flat, text
    assert reason in flat, text
    assert "replied" not in flat, text
    return recipient


async def test_pedantic_8bit_for_a_server_without_8bitmime(env: Env, mx: FakeMX) -> None:
    await env.send(EIGHTBIT, eightbit=True)
    dsn = await env.bounce(max_attempts=1)  # permanent at the first attempt
    recipient = assert_ours(dsn, "5.6.3", f"8-bit message but {MX} does not support 8BITMIME")
    assert "pedantic = true" in recipient["diagnostic-code"]  # why kittiwake refused
    assert mx.transactions == 0  # nothing was sent: the refusal is ours


async def test_smtputf8_needed(env: Env, mx: FakeMX) -> None:
    await env.send(rcpt="bøb@remote.example", smtputf8=True)
    dsn = await env.bounce(max_attempts=1)
    assert_ours(dsn, "5.6.7", f"SMTPUTF8 required but not supported by {MX}")
    assert mx.transactions == 0


async def test_too_large_for_the_remote_size(env: Env, mx: FakeMX) -> None:
    mx.extensions = ("PIPELINING", "SIZE 100")
    await env.send(PLAIN + b"x" * 200 + b"\r\n")
    dsn = await env.bounce(max_attempts=1)
    assert_ours(dsn, "5.3.4", f"is larger than the maximum 100 of {MX}")
    assert mx.transactions == 0


async def test_requiretls_without_remote_support(env: Env, mx: FakeMX) -> None:
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(MX).configure_cert(server_tls)
    mx.tls = server_tls  # STARTTLS with a valid certificate, but no REQUIRETLS
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)
    env.options.pkix_context = client_tls
    await env.send(requiretls=True)
    dsn = await env.bounce(max_attempts=1)
    assert_ours(dsn, "5.7.30", f"REQUIRETLS requested but not supported by {MX}")
    assert "STARTTLS" in mx.commands and mx.transactions == 0


async def test_null_mx(env: Env) -> None:
    env.resolver.records.clear()
    env.resolver.add("MX", "remote.example", "0 .")
    await env.send()
    dsn = await env.bounce(max_attempts=1)
    assert_ours(dsn, "5.1.10", "domain remote.example accepts no mail: it publishes a null MX")


async def test_no_such_domain(env: Env) -> None:
    env.resolver.records.clear()
    await env.send()
    dsn = await env.bounce(max_attempts=1)
    assert_ours(dsn, "5.1.2", "domain remote.example does not exist")


async def test_dane_tlsa_lookup_failure_until_the_last_attempt(env: Env, mx: FakeMX) -> None:
    env.resolver.all_authentic = True  # signed MX and address: DANE applies (RFC 7672 §2.2)
    env.resolver.fail("TLSA", f"_{mx.port}._tcp.{MX}")
    await env.send()
    delayed = assert_ours(await env.bounce(), "4.7.5", f"TLSA lookup for {MX} failed")
    assert delayed["action"] == "delayed"  # after 5 attempts (RFC 3464 §2.3.3)
    failed = assert_ours(await env.bounce(nth=2), "4.7.5", f"TLSA lookup for {MX} failed")
    assert failed["action"] == "failed"  # after the last attempt
    assert mx.commands == []  # never connected without the TLSA answer


async def test_mta_sts_enforce_without_a_matching_mx(env: Env, mx: FakeMX) -> None:
    policy = parse_policy("version: STSv1\nmode: enforce\nmx: other.example\nmax_age: 86400\n")

    class Cache:
        async def get_policy(self, resolver: object, domain: str) -> PolicyResult:
            return PolicyResult(domain, policy)

    env.sts_cache = Cache()
    await env.send()
    reason = f"MX host {MX} is not in the MTA-STS policy of remote.example"
    assert assert_ours(await env.bounce(), "4.7.5", reason)["action"] == "delayed"
    assert assert_ours(await env.bounce(nth=2), "4.7.5", reason)["action"] == "failed"
    assert mx.commands == []


async def test_a_real_reply_is_still_the_servers(env: Env, mx: FakeMX) -> None:
    """The other side of the rule: a server's 5xx keeps its Remote-MTA and smtp; code."""

    async def refuse_rcpt(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(f"220 {MX} ESMTP\r\n".encode())
        while line := await reader.readline():
            verb = line.decode().split(" ", 1)[0].upper().strip()
            if verb == "EHLO":
                writer.write(f"250-{MX}\r\n250 ENHANCEDSTATUSCODES\r\n".encode())
            elif verb == "RCPT":
                writer.write(b"550 5.1.1 no such user here\r\n")
            elif verb == "QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()
        writer.close()

    await mx.close()
    mx.server = await asyncio.start_server(refuse_rcpt, "127.0.0.1", env.options.port)
    await env.send()
    text, groups = parts(await env.bounce(max_attempts=1))
    recipient = groups[-1]
    assert recipient["status"] == "5.1.1"
    assert recipient["remote-mta"] == f"dns; {MX}"
    assert recipient["diagnostic-code"] == "smtp; 550 5.1.1 no such user here"
    assert f"The mail server {MX} replied:" in text


async def test_the_fail_transport(env: Env) -> None:
    """A route to the "fail" transport is kittiwake's refusal with the configured code."""
    from kittiwake.queue.model import DeliveryError

    env.select = lambda batch: DeliveryError(550, "5.7.1", "mail to remote.example is"
                                             " blocked by the administrator")
    await env.send()
    assert_ours(await env.bounce(max_attempts=1), "5.7.1",
                "mail to remote.example is blocked by the administrator")
