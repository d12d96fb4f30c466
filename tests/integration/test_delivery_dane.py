"""Outgoing delivery with DANE (RFC 7672) to a real Postfix over STARTTLS (RFC 3207).

A private Postfix (:mod:`.postfix`) listens on 127.0.0.N:P with STARTTLS and a
certificate chain made with trustme (leaf <- intermediate <- root). Nobody
trusts that root, so a delivery that succeeds over verified TLS can only have
been verified by DANE. The DNS world (bind9 + validating unbound) serves the
signed zone ``signed.test``:

=========================  ======  ==========================================
name                       type    value
=========================  ======  ==========================================
ee.signed.test             MX      ``10 mx-ee.signed.test.``
ta.signed.test             MX      ``10 mx-ta.signed.test.``
tas.signed.test            MX      ``10 mx-tas.signed.test.``
bad.signed.test            MX      ``10 mx-bad.signed.test.``
mx-*.signed.test           A       127.0.0.N (Postfix)
_P._tcp.mx-ee...           TLSA    ``3 1 1`` SHA-256 of the leaf's SPKI (DANE-EE)
_P._tcp.mx-ta...           TLSA    ``2 0 1`` SHA-256 of the intermediate (DANE-TA)
_P._tcp.mx-tas...          TLSA    ``2 1 1`` SHA-256 of the intermediate's SPKI
_P._tcp.mx-bad...          TLSA    ``3 1 1`` SHA-256 of some other key
=========================  ======  ==========================================

The TLSA data is computed here with ``cryptography`` (an oracle independent of
kittiwake.dane). Messages go through the real :class:`kittiwake.queue.Queue`,
:class:`~kittiwake.queue.Scheduler` and :class:`~kittiwake.queue.deliver.Deliverer`;
TLS results land in ``tlsrpt.db`` (RFC 8460).

The helpers below (``free_loopback``, ``deliver_once``, ...) are shared with
the other ``test_delivery_*`` modules.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kittiwake.queue import (
    Envelope,
    Filter,
    NewRecipient,
    Queue,
    Recipient,
    Retired,
    Scheduler,
    Status,
)
from kittiwake.queue.deliver import Deliverer
from kittiwake.queue.direct import DirectOptions
from kittiwake.tlsrpt import TLSResult, TLSResults

from .dnsworld import DNSWorld
from .loopback import free_loopback, free_port
from .postfix import Postfix

OUR_HOSTNAME = "kw-sender.test"
SENDER = "alice@sender.test"


# -- shared helpers ---------------------------------------------------------------


def message_bytes(msgid: str, to: str, extra_headers: str = "") -> bytes:
    return (f"From: {SENDER}\r\nTo: {to}\r\nSubject: delivery test\r\n"
            f"Message-ID: <{msgid}>\r\n{extra_headers}\r\nHello from kittiwake.\r\n").encode()


@dataclass
class Outcome:
    """The queue state after one delivery attempt of one message."""

    message_id: int
    queued: list[Recipient]  # still in the queue (temporary failure)
    retired: list[Retired]  # delivered or failed for good
    tls: list[TLSResult]  # rows of tlsrpt.db, oldest first

    @property
    def delivered(self) -> bool:
        return not self.queued and bool(self.retired) and all(
            r.status is Status.DELIVERED for r in self.retired)


async def wait_attempted(queue: Queue, message_id: int, attempts: int,
                         timeout: float) -> None:
    """Wait until every recipient of the message was tried ``attempts`` times or left."""
    deadline = time.monotonic() + timeout
    while True:
        queued = await queue.recipients(message_id)
        if all(r.attempts >= attempts for r in queued):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"no delivery attempt within {timeout} s: {queued}")
        await asyncio.sleep(0.05)


async def outcome_of(queue: Queue, tls_results: TLSResults, message_id: int) -> Outcome:
    queued = await queue.recipients(message_id)
    retired = await queue.history(Filter(ids=(message_id,)))
    tls = list(reversed(await asyncio.to_thread(tls_results.recent)))
    return Outcome(message_id, queued, retired, tls)


class Sender:
    """A kittiwake queue in ``data_dir`` with a running Scheduler + Deliverer."""

    def __init__(self, data_dir: Path, resolver: Any, *, port: int,
                 sts_cache: Any = None, pkix_context: Any = None, timeout: float = 10.0) -> None:
        self.queue = Queue(data_dir)
        self.tls_results = TLSResults(data_dir)
        self.deliverer = Deliverer(
            resolver=resolver, hostname=OUR_HOSTNAME, tls_results=self.tls_results,
            sts_cache=sts_cache,
            direct_options=DirectOptions(OUR_HOSTNAME, port=port, pkix_context=pkix_context,
                                         timeout=timeout))
        self.scheduler = Scheduler(self.queue, self.deliverer, max_sleep=0.2)

    async def __aenter__(self) -> Sender:
        self.scheduler.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.scheduler.close()
        await self.deliverer.close()  # QUIT on parked connections
        self.tls_results.close()
        self.queue.close()

    async def send(self, recipients: list[str], data: bytes, *, requiretls: bool | None = None,
                   tls_required_no: bool = False, timeout: float = 20.0) -> Outcome:
        """Enqueue a message and wait for its first delivery attempt."""
        envelope = Envelope(SENDER, tuple(NewRecipient(r) for r in recipients),
                            requiretls=requiretls, tls_required_no=tls_required_no)
        message = await self.queue.enqueue(envelope, data)
        await wait_attempted(self.queue, message.id, 1, timeout)
        return await outcome_of(self.queue, self.tls_results, message.id)

    async def retry(self, message_id: int, timeout: float = 20.0) -> Outcome:
        """Make the message due now (``queue kick``) and wait for the next attempt."""
        before = max((r.attempts for r in await self.queue.recipients(message_id)), default=0)
        await self.queue.kick(Filter(ids=(message_id,)))
        await wait_attempted(self.queue, message_id, before + 1, timeout)
        return await outcome_of(self.queue, self.tls_results, message_id)


def postfix_message(postfix: Postfix, msgid: str, timeout: float = 10.0) -> str:
    """Postfix's queue id of the message with Message-ID ``msgid`` (waits for the log)."""
    match = postfix.wait_log(rf"(\w+): message-id=<{re.escape(msgid)}>", timeout)
    return match.group(1)


def received_with_tls(postfix: Postfix, queue_id: str) -> re.Match[str]:
    """The Received header Postfix logged for ``queue_id`` (header_checks WARN), with TLS."""
    return postfix.wait_log(rf"{queue_id}: warning: header Received: .*\(using (TLSv[\d.]+) "
                            r"with cipher (\S+)")


DISCONNECT = re.compile(r"smtpd\[\d+\]: disconnect from .* ehlo=.*")


def disconnects(postfix: Postfix) -> list[str]:
    """Postfix's "disconnect from" lines so far, one per finished SMTP session that said
    EHLO (not the start-up probe), with the commands it saw (``ehlo=2 starttls=1 mail=1
    rcpt=1 data=1 quit=1 commands=7``)."""
    return DISCONNECT.findall(postfix.maillog())


def ended_sessions(postfix: Postfix, timeout: float = 10.0) -> int:
    """How many EHLO sessions Postfix finished, once every session it began has ended
    (so an earlier test's session cannot be counted as the next one)."""
    deadline = time.monotonic() + timeout
    while True:
        log = postfix.maillog()
        if log.count("]: connect from ") == log.count("]: disconnect from "):
            return len(DISCONNECT.findall(log))
        if time.monotonic() > deadline:
            raise AssertionError(f"Postfix sessions still open:\n{log[-3000:]}")
        time.sleep(0.05)


def wait_sessions(postfix: Postfix, count: int, timeout: float = 10.0) -> list[str]:
    """Wait until Postfix has logged the end of ``count`` sessions; their lines.

    The event a negative check waits on: once the session is over, a message
    it did not carry can no longer arrive through it.
    """
    deadline = time.monotonic() + timeout
    while len(lines := disconnects(postfix)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"Postfix logged {len(lines)} of {count} sessions:\n"
                                 f"{postfix.maillog()[-3000:]}")
        time.sleep(0.05)
    return lines


def postfix_receiver(ip: str, port: int, chain_pem: Path, **main: str) -> Postfix:
    """A Postfix that accepts any recipient from loopback and discards it after logging
    each message's Received header (so the log shows whether it came over TLS)."""
    checks = chain_pem.parent / "header_checks"
    checks.write_text("/^Received:/ WARN\n")
    settings = {
        "smtpd_tls_security_level": "may",
        "smtpd_tls_chain_files": str(chain_pem),
        "smtpd_tls_loglevel": "1",
        "smtpd_tls_received_header": "yes",
        "header_checks": f"regexp:{checks}",
        "default_transport": "discard:",
        "relay_transport": "discard:",
        "smtpd_relay_restrictions": "permit_mynetworks, reject",
        **main,
    }
    return Postfix(ip=ip, port=port, main=settings)


# -- DANE with Postfix --------------------------------------------------------------


def spki_sha256(cert: x509.Certificate) -> str:
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def cert_sha256(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


@dataclass
class DaneSetup:
    world: DNSWorld
    postfix: Postfix
    port: int
    mitm: Postfix  # presents [attacker leaf, real leaf] for mx-mitm.signed.test
    mitm_port: int


MX_NAMES = ("mx-ee", "mx-ta", "mx-tas", "mx-bad")


@pytest.fixture(scope="module")
def dane_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaneSetup]:
    base = tmp_path_factory.mktemp("dane")
    root = trustme.CA()
    intermediate = root.create_child_ca()
    leaf = intermediate.issue_cert(*(f"{n}.signed.test" for n in MX_NAMES))
    chain = base / "chain.pem"  # key, leaf, intermediate: what smtpd_tls_chain_files wants
    chain.write_bytes(leaf.private_key_pem.bytes()
                      + b"".join(p.bytes() for p in leaf.cert_chain_pems))
    chain.chmod(0o600)
    leaf_cert = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    inter_cert = x509.load_pem_x509_certificate(intermediate.cert_pem.bytes())
    other_key = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    ip = free_loopback()
    port = free_port(ip)
    world = DNSWorld()
    tlsa = {"mx-ee": f"3 1 1 {spki_sha256(leaf_cert)}",
            "mx-ta": f"2 0 1 {cert_sha256(inter_cert)}",
            "mx-tas": f"2 1 1 {spki_sha256(inter_cert)}",
            "mx-bad": f"3 1 1 {hashlib.sha256(other_key).hexdigest()}"}
    for name in MX_NAMES:
        domain = name.removeprefix("mx-")
        world.add(f"{domain}.signed.test", "MX", f"10 {name}.signed.test.")
        world.add(f"{name}.signed.test", "A", ip)
        world.add(f"_{port}._tcp.{name}.signed.test", "TLSA", tlsa[name])
    # A man-in-the-middle for mitm.signed.test: its own key and certificate first,
    # then the real server's certificate (public, anyone can fetch it); the TLSA
    # record is the real server's "3 1 1". RFC 7672 §3.1.1: refused.
    attacker = trustme.CA().issue_cert("mx-mitm.signed.test")
    mitm_dir = base / "mitm"
    mitm_dir.mkdir()
    mitm_chain = mitm_dir / "chain.pem"
    mitm_chain.write_bytes(attacker.private_key_pem.bytes()
                           + attacker.cert_chain_pems[0].bytes()
                           + leaf.cert_chain_pems[0].bytes())
    mitm_chain.chmod(0o600)
    mitm_ip = free_loopback()
    mitm_port = free_port(mitm_ip)
    world.add("mitm.signed.test", "MX", "10 mx-mitm.signed.test.")
    world.add("mx-mitm.signed.test", "A", mitm_ip)
    world.add(f"_{mitm_port}._tcp.mx-mitm.signed.test", "TLSA",
              f"3 1 1 {spki_sha256(leaf_cert)}")
    postfix = postfix_receiver(ip, port, chain)
    mitm = postfix_receiver(mitm_ip, mitm_port, mitm_chain)
    with world, postfix, mitm:
        yield DaneSetup(world, postfix, port, mitm, mitm_port)


async def _send_dane(setup: DaneSetup, tmp_path: Path, domain: str,
                     port: int | None = None) -> tuple[Outcome, str]:
    msgid = f"{domain}-{random.getrandbits(64):x}@sender.test"
    async with Sender(tmp_path, setup.world.stub_resolver(), port=port or setup.port) as sender:
        out = await sender.send([f"bob@{domain}"], message_bytes(msgid, f"bob@{domain}"))
    return out, msgid


@pytest.mark.parametrize("domain", ["ee.signed.test", "ta.signed.test", "tas.signed.test"],
                         ids=["DANE-EE-3-1-1", "DANE-TA-2-0-1", "DANE-TA-2-1-1"])
async def test_dane_verified_delivery_to_postfix(dane_setup: DaneSetup, tmp_path: Path,
                                                 domain: str) -> None:
    out, msgid = await _send_dane(dane_setup, tmp_path, domain)
    assert out.delivered, (out, dane_setup.postfix.maillog()[-3000:])
    mx = "mx-" + domain.split(".")[0] + ".signed.test"
    assert [(r.policy_type, r.result, r.mx_host) for r in out.tls] == [("tlsa", "success", mx)]
    # Postfix got exactly this message over STARTTLS.
    queue_id = postfix_message(dane_setup.postfix, msgid)
    version, _cipher = received_with_tls(dane_setup.postfix, queue_id).groups()
    assert version.startswith("TLSv1.")


async def test_wrong_tlsa_defers_and_records_failure(dane_setup: DaneSetup,
                                                     tmp_path: Path) -> None:
    sessions = ended_sessions(dane_setup.postfix)
    out, msgid = await _send_dane(dane_setup, tmp_path, "bad.signed.test")
    # RFC 7672 §2.2: no delivery without a matching TLSA; the failure is temporary.
    assert not out.retired
    [rcpt] = out.queued
    assert rcpt.status is Status.QUEUED and rcpt.attempts == 1
    assert rcpt.next_attempt > datetime.now(UTC)
    assert rcpt.last_error is not None, rcpt
    assert rcpt.last_error.enhanced.startswith("4."), rcpt.last_error
    assert rcpt.last_error.host == "mx-bad.signed.test"
    assert out.tls and all(r.policy_type == "tlsa" and r.result != "success"
                           and r.mx_host == "mx-bad.signed.test" for r in out.tls), out.tls
    assert out.tls[-1].result in ("validation-failure", "tlsa-invalid"), out.tls
    # The session ended after STARTTLS, before MAIL FROM; Postfix never saw the message.
    [session] = wait_sessions(dane_setup.postfix, sessions + 1)[sessions:]
    assert "starttls=1" in session and "mail=" not in session, session
    assert msgid not in dane_setup.postfix.maillog()


async def test_dane_ee_refuses_real_certificate_appended_to_attackers(
        dane_setup: DaneSetup, tmp_path: Path) -> None:
    """RFC 7672 §3.1.1: DANE-EE matches the server certificate (the first one) only.

    The peer presents ``[attacker leaf, real leaf]`` and the TLSA record is the
    real leaf's ``3 1 1``: matching it anywhere in the chain would hand the
    message to whoever can copy the real server's public certificate.
    """
    sessions = ended_sessions(dane_setup.mitm)
    out, msgid = await _send_dane(dane_setup, tmp_path, "mitm.signed.test",
                                  port=dane_setup.mitm_port)
    assert not out.retired, out
    [rcpt] = out.queued
    assert rcpt.status is Status.QUEUED and rcpt.attempts == 1
    assert rcpt.last_error is not None and rcpt.last_error.enhanced.startswith("4."), \
        rcpt.last_error
    assert rcpt.last_error.host == "mx-mitm.signed.test"
    assert out.tls and out.tls[-1].policy_type == "tlsa", out.tls
    assert out.tls[-1].result == "validation-failure", out.tls
    [session] = wait_sessions(dane_setup.mitm, sessions + 1)[sessions:]
    assert "starttls=1" in session and "mail=" not in session, session
    assert msgid not in dane_setup.mitm.maillog()
