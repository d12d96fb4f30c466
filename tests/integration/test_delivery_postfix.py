"""Outgoing delivery against a real Postfix that produces the replies the scripted
peers of ``test_delivery_peers.py`` fake: per-recipient rejections, greylisting,
a TLSA lookup that fails (RFC 7672 §2.2.1), a next hop without REQUIRETLS
(Postfix has none, RFC 8689), an implicit MX and a fallback to the second MX.

Postfix (:mod:`.postfix`) accepts mail for ``pf.unsigned.test`` and answers
RCPT from a ``check_recipient_access`` table (Postfix access(5): ``NNN text``
replies); the DNS world (:mod:`.dnsworld`) holds the MX and address records,
and for ``tlsafail.signed.test`` a DNSSEC-authentic MX and address whose TLSA
name lies in a zone with expired signatures (the validator answers SERVFAIL).
"""

from __future__ import annotations

import random
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trustme

from kittiwake.queue import Status

from .dnsworld import DNSWorld
from .postfix import Postfix
from .test_delivery_dane import (
    Sender,
    ended_sessions,
    free_loopback,
    free_port,
    message_bytes,
    postfix_message,
    postfix_receiver,
    wait_sessions,
)

DOMAIN = "pf.unsigned.test"
SIGNED = "tlsafail.signed.test"
ACCESS = {
    f"nobody@{DOMAIN}": "550 5.1.1 no such user here",
    f"full@{DOMAIN}": "452 4.2.2 mailbox full",
    f"grey@{DOMAIN}": "450 4.7.1 greylisted, try again later",
}


@dataclass
class PostfixPeer:
    world: DNSWorld
    postfix: Postfix
    port: int
    access: Path
    ca: trustme.CA  # issued Postfix's certificate

    def write_access(self, table: dict[str, str]) -> None:
        self.access.write_text("".join(f"{k} {v}\n" for k, v in table.items()))


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostfixPeer]:
    base = tmp_path_factory.mktemp("pfpeer")
    ca = trustme.CA()
    leaf = ca.issue_cert(f"mx.{DOMAIN}")
    chain = base / "chain.pem"
    chain.write_bytes(leaf.private_key_pem.bytes()
                      + b"".join(p.bytes() for p in leaf.cert_chain_pems))
    chain.chmod(0o600)
    access = base / "recipient_access"
    ip = free_loopback()
    port = free_port(ip)  # Postfix must be told its port; the address is ours alone
    world = DNSWorld()
    for name in (DOMAIN, SIGNED):
        world.add(name, "MX", f"10 mx.{name}.")
        world.add(f"mx.{name}", "A", ip)
    world.add(f"implicit.{DOMAIN}", "A", ip)  # no MX: RFC 5321 §5.1 implicit MX
    world.add(f"fallback.{DOMAIN}", "MX", f"10 dead.{DOMAIN}.")
    world.add(f"fallback.{DOMAIN}", "MX", f"20 mx.{DOMAIN}.")
    world.add(f"dead.{DOMAIN}", "A", free_loopback())  # nobody listens there
    world.add_zone(f"_tcp.mx.{SIGNED}", "bogus")
    world.add(f"_{port}._tcp.mx.{SIGNED}", "TLSA", "3 1 1 " + "ab" * 32)
    postfix = postfix_receiver(
        ip, port, chain,
        smtpd_recipient_restrictions=f"check_recipient_access texthash:{access}, permit",
        # One client per smtpd process: after a reload no old process (with the old
        # table) is left idle to take the next connection.
        max_use="1")
    setup = PostfixPeer(world, postfix, port, access, ca)
    setup.write_access(ACCESS)
    with world, postfix:
        yield setup


def _sender(peer: PostfixPeer, tmp_path: Path, pkix_context: ssl.SSLContext | None = None
            ) -> Sender:
    return Sender(tmp_path, peer.world.stub_resolver(), port=peer.port,
                  pkix_context=pkix_context)


def _msgid(tag: str) -> str:
    return f"{tag}-{random.getrandbits(64):x}@sender.test"


async def test_per_recipient_results_from_postfix(peer: PostfixPeer, tmp_path: Path) -> None:
    rcpts = [f"ann@{DOMAIN}", f"nobody@{DOMAIN}", f"full@{DOMAIN}"]
    msgid = _msgid("perrcpt")
    async with _sender(peer, tmp_path) as sender:
        out = await sender.send(rcpts, message_bytes(msgid, rcpts[0]))
    by_address = {r.address: r for r in out.retired}
    assert by_address[f"ann@{DOMAIN}"].status is Status.DELIVERED, out
    failed = by_address[f"nobody@{DOMAIN}"]
    assert failed.status is Status.FAILED and failed.last_error is not None
    assert (failed.last_error.code, failed.last_error.enhanced) == (550, "5.1.1")
    assert "no such user here" in failed.last_error.text
    [full] = out.queued
    assert full.address == f"full@{DOMAIN}" and full.last_error is not None
    assert (full.last_error.code, full.last_error.enhanced) == (452, "4.2.2")
    # Postfix took the message for ann only.
    queue_id = postfix_message(peer.postfix, msgid)
    delivered = peer.postfix.wait_log(rf"{queue_id}: from=<[^>]*>, size=\d+, nrcpt=(\d+)")
    assert delivered.group(1) == "1"
    assert f"to=<ann@{DOMAIN}>" in peer.postfix.maillog()


async def test_greylisting_by_postfix_is_retried(peer: PostfixPeer, tmp_path: Path) -> None:
    msgid = _msgid("grey")
    async with _sender(peer, tmp_path) as sender:
        first = await sender.send([f"grey@{DOMAIN}"], message_bytes(msgid, f"grey@{DOMAIN}"))
        [rcpt] = first.queued
        assert rcpt.status is Status.QUEUED and rcpt.attempts == 1
        assert rcpt.last_error is not None and rcpt.last_error.code == 450
        assert "greylisted" in rcpt.last_error.text
        assert rcpt.next_attempt > datetime.now(UTC)
    # The greylisting period is over: Postfix now accepts the recipient (new smtpd
    # processes; the queue, reopened, closed its parked connection to the old one).
    peer.write_access({k: v for k, v in ACCESS.items() if not k.startswith("grey@")})
    peer.postfix.reload()
    async with _sender(peer, tmp_path) as sender:
        second = await sender.retry(first.message_id)
    assert second.delivered, second
    assert second.retired[0].attempts == 2
    postfix_message(peer.postfix, msgid)
    peer.write_access(ACCESS)
    peer.postfix.reload()


async def test_tlsa_servfail_defers_without_connecting_to_postfix(
        peer: PostfixPeer, tmp_path: Path) -> None:
    sessions = ended_sessions(peer.postfix)
    msgid = _msgid("tlsafail")
    async with _sender(peer, tmp_path) as sender:
        out = await sender.send([f"bob@{SIGNED}"], message_bytes(msgid, f"bob@{SIGNED}"))
    [rcpt] = out.queued
    assert rcpt.last_error is not None and rcpt.last_error.enhanced.startswith("4."), \
        rcpt.last_error
    assert "TLSA" in rcpt.last_error.text
    assert [(t.policy_type, t.result) for t in out.tls] == [("tlsa", "dnssec-invalid")]
    # RFC 7672 §2.2.1: the host is not used; Postfix never saw a connection.
    assert ended_sessions(peer.postfix) == sessions
    assert msgid not in peer.postfix.maillog()



async def test_requiretls_to_postfix_fails_permanently(peer: PostfixPeer,
                                                      tmp_path: Path) -> None:
    """RFC 8689 §4.2.1: Postfix does not offer REQUIRETLS, so a REQUIRETLS message is
    not sent to it, even over verified TLS; the failure is permanent."""
    trust = ssl.create_default_context()
    peer.ca.configure_trust(trust)
    sessions = ended_sessions(peer.postfix)
    msgid = _msgid("requiretls")
    async with _sender(peer, tmp_path, trust) as sender:
        out = await sender.send([f"bob@{DOMAIN}"], message_bytes(msgid, f"bob@{DOMAIN}"),
                                requiretls=True)
    assert not out.queued
    [gone] = out.retired
    assert gone.status is Status.FAILED and gone.last_error is not None
    assert gone.last_error.enhanced.startswith("5.") and "REQUIRETLS" in gone.last_error.text
    [session] = wait_sessions(peer.postfix, sessions + 1)[sessions:]
    assert "starttls=1" in session and "mail=" not in session, session
    assert msgid not in peer.postfix.maillog()


async def test_implicit_mx_delivers_to_postfix(peer: PostfixPeer, tmp_path: Path) -> None:
    msgid = _msgid("implicit")
    async with _sender(peer, tmp_path) as sender:
        out = await sender.send([f"bob@implicit.{DOMAIN}"],
                                message_bytes(msgid, f"bob@implicit.{DOMAIN}"))
    assert out.delivered, out
    postfix_message(peer.postfix, msgid)
    peer.postfix.wait_log(rf"to=<bob@implicit\.{DOMAIN.replace('.', '[.]')}>")


async def test_unreachable_first_mx_falls_back_to_postfix(peer: PostfixPeer,
                                                          tmp_path: Path) -> None:
    msgid = _msgid("fallback")
    async with _sender(peer, tmp_path) as sender:
        out = await sender.send([f"bob@fallback.{DOMAIN}"],
                                message_bytes(msgid, f"bob@fallback.{DOMAIN}"))
    # RFC 5321 §5.1: the MX hosts in order of preference; the first refuses connections.
    assert out.delivered, out
    assert [(r.mx_host, r.result) for r in out.tls][-1] == (f"mx.{DOMAIN}", "success"), out.tls
    postfix_message(peer.postfix, msgid)
