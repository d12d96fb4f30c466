"""Outgoing delivery against scripted SMTP peers: replies, TLS trouble, MX edge cases.

Each peer is a tiny asyncio SMTP server (RFC 5321) on its own 127.0.N.M
that answers as its script says and records every command it got, per
connection: the only way to get some replies (a broken TLS handshake, a
REQUIRETLS offer). DNS is the real DNS world (bind9 + validating unbound,
:mod:`.dnsworld`), one per module, with a domain per test below
``unsigned.test`` (and ``signed.test`` where DNSSEC matters); each peer
listens on an ephemeral port of its own address, so nothing races for a
port. Messages go through the real Queue, Scheduler and Deliverer
(:class:`.test_delivery_dane.Sender`), so the assertions are on what
``kittiwake queue list`` would show: still queued with a temporary error,
delivered, or failed with the peer's reply. The behaviours a real Postfix can
produce have a second test against one in ``test_delivery_postfix.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trustme

from kittiwake.queue import Status

from .dnsworld import DNSWorld
from .test_delivery_dane import Sender, free_loopback, message_bytes

BROKEN = "broken"  # starttls=BROKEN: 220 to STARTTLS, then garbage for a ServerHello


@dataclass
class Session:
    commands: list[str] = field(default_factory=list)
    tls: bool = False
    data: bytes = b""


@dataclass
class FakePeer:
    """A scripted SMTP server. ``mail_reply``/``rcpt_replies`` override 250 (a reply
    popped per RCPT); ``close_after_mail`` drops the connection after the MAIL reply."""

    starttls: ssl.SSLContext | str | None = None
    extensions: tuple[str, ...] = ("8BITMIME", "ENHANCEDSTATUSCODES")
    mail_reply: str | None = None
    close_after_mail: bool = False
    rcpt_replies: list[str] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    ip: str = ""
    port: int = 0

    @property
    def delivered(self) -> list[Session]:
        return [s for s in self.sessions if s.data]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session()
        self.sessions.append(session)

        async def reply(text: str) -> None:
            writer.write(text.encode() + b"\r\n")
            await writer.drain()

        try:
            await reply("220 fake.peer.test ESMTP")
            while line := await reader.readline():
                command = line.decode(errors="replace").rstrip("\r\n")
                session.commands.append(command)
                verb = command.split(" ", 1)[0].upper()
                if verb in ("EHLO", "HELO"):
                    ext = list(self.extensions)
                    if self.starttls is not None and not session.tls:
                        ext.append("STARTTLS")
                    lines = ["fake.peer.test", *ext]
                    await reply("\r\n".join(f"250{'-' if i < len(lines) - 1 else ' '}{t}"
                                            for i, t in enumerate(lines)))
                elif verb == "STARTTLS" and self.starttls is not None:
                    await reply("220 2.0.0 go ahead")
                    if self.starttls == BROKEN:
                        await reader.read(1)  # the client's ClientHello has begun
                        writer.write(b"this is not a TLS server hello\r\n" * 4)
                        await writer.drain()
                        return
                    assert isinstance(self.starttls, ssl.SSLContext)
                    await writer.start_tls(self.starttls)
                    session.tls = True
                elif verb == "MAIL":
                    await reply(self.mail_reply or "250 2.1.0 ok")
                    if self.close_after_mail:
                        return
                elif verb == "RCPT":
                    await reply(self.rcpt_replies.pop(0) if self.rcpt_replies
                                else "250 2.1.5 ok")
                elif verb == "DATA":
                    await reply("354 go on")
                    data = b""
                    while (chunk := await reader.readline()) not in (b".\r\n", b""):
                        data += chunk
                    session.data = data
                    await reply("250 2.0.0 queued as FAKE1")
                elif verb == "QUIT":
                    await reply("221 2.0.0 bye")
                    return
                elif verb in ("RSET", "NOOP"):
                    await reply("250 2.0.0 ok")
                else:
                    await reply("502 5.5.1 not implemented")
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


# Domains of the world, one per test (peer.ip is fixed before the world starts).
PLAIN = ("reject", "plain", "tlsbroken", "grey", "norequiretls", "perrcpt", "busy",
         "requiretls")
SIGNED_PEER = "tlsafail.signed.test"  # MX and A authentic; its TLSA zone is bogus


@dataclass
class PeerWorld:
    world: DNSWorld
    ips: dict[str, str]  # domain -> the peer's address
    dead_ip: str  # an address nobody listens on


def domain(name: str) -> str:
    return f"{name}.unsigned.test"


@pytest.fixture(scope="module")
def peer_world() -> Iterator[PeerWorld]:
    world = DNSWorld()
    ips = {domain(n): free_loopback() for n in PLAIN}
    ips["implicit.unsigned.test"] = free_loopback()
    ips["fallback.unsigned.test"] = free_loopback()
    ips[SIGNED_PEER] = free_loopback()
    dead = free_loopback()
    for name, ip in ips.items():
        if name == "implicit.unsigned.test":  # no MX: RFC 5321 §5.1 implicit MX
            world.add(name, "A", ip)
            continue
        world.add(name, "MX", f"10 mx.{name}.")
        world.add(f"mx.{name}", "A", ip)
    world.add("fallback.unsigned.test", "MX", "20 mx.fallback.unsigned.test.")
    world.add("fallback.unsigned.test", "MX", "10 dead.fallback.unsigned.test.")
    world.add("dead.fallback.unsigned.test", "A", dead)
    world.add("nomail.unsigned.test", "MX", "0 .")  # RFC 7505 null MX
    world.add("other.unsigned.test", "A", "127.0.0.1")  # missing.unsigned.test is not there
    # Any TLSA question below the bogus zone is a SERVFAIL from the validator.
    world.add_zone(f"_tcp.mx.{SIGNED_PEER}", "bogus")
    world.add(f"_25._tcp.mx.{SIGNED_PEER}", "TLSA", "3 1 1 " + "ab" * 32)
    with world:
        yield PeerWorld(world, ips, dead)


@pytest.fixture
async def start_peer(peer_world: PeerWorld
                     ) -> AsyncIterator[Callable[[str, FakePeer], asyncio.Future[FakePeer]]]:
    servers: list[asyncio.Server] = []

    async def start(name: str, peer: FakePeer) -> FakePeer:
        """Serve ``peer`` for domain ``name`` on its address and an ephemeral port."""
        peer.ip = peer_world.ips[name]
        server = await asyncio.start_server(peer.handle, peer.ip, 0)
        servers.append(server)
        peer.port = int(server.sockets[0].getsockname()[1])
        return peer

    yield start  # type: ignore[misc]
    for server in servers:
        server.close()
        await server.wait_closed()


def sender(tmp_path: Path, peer_world: PeerWorld, port: int, **kw: object) -> Sender:
    return Sender(tmp_path, peer_world.world.stub_resolver(), port=port, **kw)  # type: ignore[arg-type]


async def test_550_on_mail_from_then_close_fails_permanently(
        start_peer, peer_world: PeerWorld, tmp_path: Path) -> None:
    peer = await start_peer(domain("reject"),
                            FakePeer(mail_reply="550 5.7.1 sender rejected by policy",
                                     close_after_mail=True))
    async with sender(tmp_path, peer_world, peer.port) as out_queue:
        out = await out_queue.send([f"bob@{domain('reject')}"],
                                   message_bytes("m1@sender.test", "bob"))
    assert not out.queued
    [gone] = out.retired
    assert gone.status is Status.FAILED and gone.attempts == 1
    assert gone.last_error is not None
    assert (gone.last_error.code, gone.last_error.enhanced) == (550, "5.7.1")
    assert "sender rejected by policy" in gone.last_error.text
    assert gone.last_error.host == f"mx.{domain('reject')}"
    assert len(peer.sessions) == 1 and not peer.delivered


async def test_no_starttls_delivers_in_plain_text(start_peer, peer_world: PeerWorld,
                                                  tmp_path: Path) -> None:
    name = domain("plain")
    peer = await start_peer(name, FakePeer())
    async with sender(tmp_path, peer_world, peer.port) as out_queue:
        out = await out_queue.send([f"bob@{name}"], message_bytes("m2@sender.test", "bob"))
    assert out.delivered, out
    [session] = peer.delivered
    assert not session.tls and b"Message-ID: <m2@sender.test>" in session.data
    assert [(r.policy_type, r.result, r.mx_host, r.ip) for r in out.tls] == [
        ("no-policy-found", "starttls-not-supported", f"mx.{name}", peer.ip)]


async def test_tls_handshake_failure_retries_in_plain_text(start_peer, peer_world: PeerWorld,
                                                           tmp_path: Path) -> None:
    name = domain("tlsbroken")
    peer = await start_peer(name, FakePeer(starttls=BROKEN))
    async with sender(tmp_path, peer_world, peer.port) as out_queue:
        out = await out_queue.send([f"bob@{name}"], message_bytes("m3@sender.test", "bob"))
    # RFC 7435 §3 opportunistic TLS: the failed handshake is followed by a plain session.
    assert out.delivered, out
    assert len(peer.sessions) == 2
    assert "STARTTLS" in peer.sessions[0].commands and not peer.sessions[0].data
    assert "STARTTLS" not in peer.sessions[1].commands and peer.sessions[1].data
    results = [(r.policy_type, r.result) for r in out.tls]
    assert results and results[0][0] == "no-policy-found"
    assert results[0][1] not in ("success", "starttls-not-supported"), out.tls


async def test_greylisting_is_temporary_and_retried(start_peer, peer_world: PeerWorld,
                                                    tmp_path: Path) -> None:
    name = domain("grey")
    peer = await start_peer(name, FakePeer(
        rcpt_replies=["451 4.7.1 greylisted, try again later"]))
    async with sender(tmp_path, peer_world, peer.port) as out_queue:
        first = await out_queue.send([f"bob@{name}"], message_bytes("m4@sender.test", "bob"))
        [rcpt] = first.queued
        assert rcpt.status is Status.QUEUED and rcpt.attempts == 1
        assert rcpt.last_error is not None and rcpt.last_error.code == 451
        assert "greylisted" in rcpt.last_error.text
        assert rcpt.next_attempt > datetime.now(UTC)
        assert not peer.delivered
        second = await out_queue.retry(first.message_id)
    assert second.delivered, second
    assert second.retired[0].attempts == 2
    assert len(peer.delivered) == 1


def _tls_contexts(host: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a certificate for ``host`` and a client that trusts it."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(host).configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    return server_context, client_context


async def test_requiretls_to_server_without_it_fails_permanently(
        start_peer, peer_world: PeerWorld, tmp_path: Path) -> None:
    name = domain("norequiretls")
    server_context, client_context = _tls_contexts(f"mx.{name}")
    peer = await start_peer(name, FakePeer(starttls=server_context))
    async with sender(tmp_path, peer_world, peer.port,
                      pkix_context=client_context) as out_queue:
        out = await out_queue.send([f"bob@{name}"], message_bytes("m5@sender.test", "bob"),
                                   requiretls=True)
    # RFC 8689 §4.2.1: without REQUIRETLS at the next hop the message is not sent,
    # and the failure is permanent (a DSN follows).
    assert not out.queued
    [gone] = out.retired
    assert gone.status is Status.FAILED and gone.last_error is not None
    assert gone.last_error.enhanced.startswith("5."), gone.last_error
    assert "REQUIRETLS" in gone.last_error.text
    assert peer.sessions and peer.sessions[0].tls  # it did get as far as verified TLS
    assert not any(c.upper().startswith("MAIL") for s in peer.sessions for c in s.commands)


async def test_null_mx_fails_permanently(peer_world: PeerWorld, tmp_path: Path) -> None:
    async with sender(tmp_path, peer_world, 25) as out_queue:
        out = await out_queue.send(["bob@nomail.unsigned.test"],
                                   message_bytes("m6@sender.test", "bob"))
    [gone] = out.retired
    assert gone.status is Status.FAILED and gone.last_error is not None
    # RFC 7505 §4.1: 556 5.1.10 (or at least a permanent 5yz)
    assert gone.last_error.enhanced.startswith("5.") and "null MX" in gone.last_error.text


async def test_nxdomain_fails_permanently(peer_world: PeerWorld, tmp_path: Path) -> None:
    async with sender(tmp_path, peer_world, 25) as out_queue:
        out = await out_queue.send(["bob@missing.unsigned.test"],
                                   message_bytes("m7@sender.test", "bob"))
    [gone] = out.retired
    assert gone.status is Status.FAILED and gone.last_error is not None
    assert gone.last_error.enhanced.startswith("5.") and "does not exist" in gone.last_error.text


async def test_implicit_mx_uses_the_domains_address(start_peer, peer_world: PeerWorld,
                                                    tmp_path: Path) -> None:
    peer = await start_peer("implicit.unsigned.test", FakePeer())  # A record, no MX
    async with sender(tmp_path, peer_world, peer.port) as out_queue:
        out = await out_queue.send(["bob@implicit.unsigned.test"],
                                   message_bytes("m8@sender.test", "bob"))
    assert out.delivered, out
    [session] = peer.delivered
    assert "RCPT TO:<bob@implicit.unsigned.test>" in session.commands
    assert [(r.mx_host, r.ip) for r in out.tls] == [("implicit.unsigned.test", peer.ip)]


async def test_unreachable_first_mx_falls_back_to_the_next(start_peer, peer_world: PeerWorld,
                                                           tmp_path: Path) -> None:
    # dead.fallback.unsigned.test (preference 10) has an address nobody listens on.
    peer = await start_peer("fallback.unsigned.test", FakePeer())
    async with sender(tmp_path, peer_world, peer.port) as out_queue:
        out = await out_queue.send(["bob@fallback.unsigned.test"],
                                   message_bytes("m9@sender.test", "bob"))
    # RFC 5321 §5.1: try the MX hosts in order of preference until one takes it.
    assert out.delivered, out
    assert len(peer.delivered) == 1


async def test_per_recipient_results(start_peer, peer_world: PeerWorld,
                                     tmp_path: Path) -> None:
    name = domain("perrcpt")
    peer = await start_peer(name, FakePeer(rcpt_replies=["250 2.1.5 ok",
                                                         "550 5.1.1 no such user here",
                                                         "452 4.2.2 mailbox full"]))
    rcpts = [f"ann@{name}", f"nobody@{name}", f"full@{name}"]
    async with sender(tmp_path, peer_world, peer.port) as out_queue:
        out = await out_queue.send(rcpts, message_bytes("m10@sender.test", "ann"))
    by_address = {r.address: r for r in out.retired}
    assert by_address[f"ann@{name}"].status is Status.DELIVERED
    failed = by_address[f"nobody@{name}"]
    assert failed.status is Status.FAILED and failed.last_error is not None
    assert (failed.last_error.code, failed.last_error.enhanced) == (550, "5.1.1")
    [full] = out.queued
    assert full.address == f"full@{name}" and full.last_error is not None
    assert full.last_error.code == 452
    [session] = peer.delivered
    assert [c for c in session.commands if c.startswith("RCPT")] == [
        f"RCPT TO:<{a}>" for a in rcpts]


async def test_421_greeting_is_temporary(peer_world: PeerWorld, tmp_path: Path) -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"421 4.3.2 too busy, come back later\r\n")
        await writer.drain()
        writer.close()

    name = domain("busy")
    server = await asyncio.start_server(refuse, peer_world.ips[name], 0)
    port = int(server.sockets[0].getsockname()[1])
    try:
        async with sender(tmp_path, peer_world, port) as out_queue:
            out = await out_queue.send([f"bob@{name}"],
                                       message_bytes("m11@sender.test", "bob"))
    finally:
        server.close()
        await server.wait_closed()
    [rcpt] = out.queued
    assert rcpt.last_error is not None and rcpt.last_error.code == 421, rcpt.last_error


async def test_tlsa_lookup_failure_defers_without_connecting(start_peer, peer_world: PeerWorld,
                                                             tmp_path: Path) -> None:
    # MX and address are DNSSEC-authentic (signed.test); the TLSA name is in a zone
    # whose signatures expired, so the validating resolver answers SERVFAIL.
    peer = await start_peer(SIGNED_PEER, FakePeer())
    async with sender(tmp_path, peer_world, peer.port) as out_queue:
        out = await out_queue.send([f"bob@{SIGNED_PEER}"],
                                   message_bytes("m12@sender.test", "bob"))
    # RFC 7672 §2.2.1: with DNSSEC-validated MX and address, a failed TLSA lookup
    # means the host is not used (no fallback to unauthenticated delivery).
    [rcpt] = out.queued
    assert rcpt.last_error is not None and rcpt.last_error.enhanced.startswith("4.")
    assert not peer.sessions
    assert [(t.policy_type, t.result) for t in out.tls] == [("tlsa", "dnssec-invalid")], rcpt


async def test_requiretls_to_server_with_it_is_delivered(start_peer, peer_world: PeerWorld,
                                                         tmp_path: Path) -> None:
    name = domain("requiretls")
    server_context, client_context = _tls_contexts(f"mx.{name}")
    peer = await start_peer(name, FakePeer(starttls=server_context,
                                           extensions=("8BITMIME", "REQUIRETLS")))
    async with sender(tmp_path, peer_world, peer.port,
                      pkix_context=client_context) as out_queue:
        out = await out_queue.send([f"bob@{name}"], message_bytes("m13@sender.test", "bob"),
                                   requiretls=True)
    assert out.delivered, out
    [session] = peer.delivered
    assert session.tls
    mail = [c for c in session.commands if c.upper().startswith("MAIL")]
    assert len(mail) == 1 and "REQUIRETLS" in mail[0].upper().split()
