"""Outgoing delivery under MTA-STS (RFC 8461) to a real Postfix over STARTTLS.

Policies are served over HTTPS by an aiohttp server on 127.0.0.N with a
trustme certificate for every ``mta-sts.DOMAIN``; kittiwake fetches them
through ``PolicyCache(fetch=...)`` with ``make_session(ctx, hosts={...})`` so
only loopback is contacted. Postfix listens on another 127.0.0.M:P with
STARTTLS and a certificate from the same test CA for every ``mx.DOMAIN``;
``DirectOptions(pkix_context=...)`` trusts that CA, so "PKIX-verified"
means verified against the test CA and the MX host name (RFC 8461 §4.2).
DNS (``_mta-sts`` TXT, MX, A) is the real DNS world (:mod:`.dnsworld`, bind9 +
validating unbound) below ``unsigned.test``: MTA-STS needs no DNSSEC, and
without it DANE stays out of the way. Each domain D is ``D.unsigned.test``:

=========  =======  =========================  =========================
D          mode     policy mx                  MX record
=========  =======  =========================  =========================
enforce    enforce  ``mx.D`` (the MX)          mx.D
mismatch   enforce  ``*.elsewhere.test``       mx.D
testing    testing  ``*.elsewhere.test``       mx.D
fetchfail  (404)    -                          mx.D
untrusted  enforce  ``mx.D`` (the MX)          mx.D
=========  =======  =========================  =========================

``untrusted.unsigned.test``'s MX presents the same certificate as the others, but the
pkix context used for it trusts another CA: an enforce policy must then fail.
"""

from __future__ import annotations

import random
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from aiohttp import web

from kittiwake.mtasts import FetchResult, PolicyCache, fetch_policy, make_session

from .dnsworld import DNSWorld
from .postfix import Postfix
from .test_delivery_dane import (
    Outcome,
    Sender,
    ended_sessions,
    free_loopback,
    free_port,
    message_bytes,
    postfix_message,
    postfix_receiver,
    received_with_tls,
    wait_sessions,
)

DOMAINS = tuple(f"{name}.unsigned.test"
                for name in ("enforce", "mismatch", "testing", "fetchfail", "untrusted"))


def _policy(mode: str, mx: str) -> str:
    return f"version: STSv1\nmode: {mode}\nmx: {mx}\nmax_age: 86400\n"


POLICIES = {
    "enforce.unsigned.test": _policy("enforce", "mx.enforce.unsigned.test"),
    "mismatch.unsigned.test": _policy("enforce", "*.elsewhere.test"),
    "testing.unsigned.test": _policy("testing", "*.elsewhere.test"),
    "untrusted.unsigned.test": _policy("enforce", "mx.untrusted.unsigned.test"),
}


@dataclass
class StsSetup:
    ca: trustme.CA
    postfix: Postfix
    ip: str
    port: int
    world: DNSWorld


@pytest.fixture(scope="module")
def sts_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StsSetup]:
    base = tmp_path_factory.mktemp("sts")
    ca = trustme.CA()
    leaf = ca.issue_cert(*(f"mx.{d}" for d in DOMAINS))
    chain = base / "chain.pem"
    chain.write_bytes(leaf.private_key_pem.bytes()
                      + b"".join(p.bytes() for p in leaf.cert_chain_pems))
    chain.chmod(0o600)
    ip = free_loopback()
    port = free_port(ip)  # Postfix must be told its port; the address is ours alone
    world = DNSWorld()
    for domain in DOMAINS:
        world.add(f"_mta-sts.{domain}", "TXT", "v=STSv1; id=20261124T000000")
        world.add(domain, "MX", f"10 mx.{domain}.")
        world.add(f"mx.{domain}", "A", ip)
    with world, postfix_receiver(ip, port, chain) as postfix:
        yield StsSetup(ca, postfix, ip, port, world)


@pytest.fixture
async def policy_server(sts_setup: StsSetup) -> AsyncIterator[tuple[str, int]]:
    """HTTPS on 127.0.0.K serving each domain's policy by Host header (404 otherwise)."""

    async def handler(request: web.Request) -> web.Response:
        host = (request.host or "").split(":")[0].lower()
        domain = host.removeprefix("mta-sts.")
        if domain not in POLICIES or not host.startswith("mta-sts."):
            return web.Response(status=404, text="no policy here\n")
        return web.Response(text=POLICIES[domain], content_type="text/plain")

    app = web.Application()
    app.router.add_get("/.well-known/mta-sts.txt", handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    sts_setup.ca.issue_cert(*(f"mta-sts.{d}" for d in DOMAINS)).configure_cert(context)
    ip = free_loopback()
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, ip, 0, ssl_context=context)  # an ephemeral port: no race
    await site.start()
    port = int(runner.addresses[0][1])
    try:
        yield ip, port
    finally:
        await runner.cleanup()


def pkix_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def send(setup: StsSetup, server: tuple[str, int], tmp_path: Path, domain: str,
               pkix_ca: trustme.CA | None = None,
               tls_required_no: bool = False) -> tuple[Outcome, str]:
    https_trust = pkix_context(setup.ca)
    hosts = {f"mta-sts.{d}": server for d in DOMAINS}
    fetched: list[FetchResult] = []

    async def fetch(name: str) -> FetchResult:
        async with make_session(https_trust, hosts=hosts) as session:
            result = await fetch_policy(name, session, timeout=10)
        fetched.append(result)
        return result

    cache = PolicyCache(tmp_path, fetch=fetch)
    msgid = f"{domain}-{random.getrandbits(64):x}@sender.test"
    try:
        async with Sender(tmp_path, setup.world.stub_resolver(), port=setup.port, sts_cache=cache,
                          pkix_context=pkix_context(pkix_ca or setup.ca)) as sender:
            out = await sender.send([f"bob@{domain}"], message_bytes(msgid, f"bob@{domain}"),
                                    tls_required_no=tls_required_no)
    finally:
        cache.close()
    assert [f.domain for f in fetched] == [domain], fetched  # the policy was really fetched
    return out, msgid


async def test_enforce_matching_mx_delivers_over_pkix_tls(
        sts_setup: StsSetup, policy_server: tuple[str, int], tmp_path: Path) -> None:
    out, msgid = await send(sts_setup, policy_server, tmp_path, "enforce.unsigned.test")
    assert out.delivered, (out, sts_setup.postfix.maillog()[-2000:])
    assert [(r.policy_type, r.result, r.mx_host) for r in out.tls] == [
        ("sts", "success", "mx.enforce.unsigned.test")]
    received_with_tls(sts_setup.postfix, postfix_message(sts_setup.postfix, msgid))


async def test_enforce_with_untrusted_certificate_defers(
        sts_setup: StsSetup, policy_server: tuple[str, int], tmp_path: Path) -> None:
    # RFC 8461 §4.2: in enforce mode the MX certificate must be PKIX-valid.
    sessions = ended_sessions(sts_setup.postfix)
    out, msgid = await send(sts_setup, policy_server, tmp_path, "untrusted.unsigned.test",
                            pkix_ca=trustme.CA())
    assert not out.retired
    [rcpt] = out.queued
    assert rcpt.attempts == 1 and rcpt.last_error is not None
    assert rcpt.last_error.enhanced.startswith("4."), rcpt.last_error
    assert [(r.policy_type, r.result) for r in out.tls] == [
        ("sts", "certificate-not-trusted")], out.tls
    # The session ended in or after STARTTLS (the client refused the certificate),
    # before MAIL FROM.
    [session] = wait_sessions(sts_setup.postfix, sessions + 1)[sessions:]
    assert "starttls=" in session and "mail=" not in session, session
    assert msgid not in sts_setup.postfix.maillog()


async def test_enforce_non_matching_mx_is_not_used(
        sts_setup: StsSetup, policy_server: tuple[str, int], tmp_path: Path) -> None:
    sessions = ended_sessions(sts_setup.postfix)
    out, msgid = await send(sts_setup, policy_server, tmp_path, "mismatch.unsigned.test")
    # RFC 8461 §5: a host not in the policy is not a candidate; delivery waits (temporary).
    assert not out.retired
    [rcpt] = out.queued
    assert rcpt.attempts == 1 and rcpt.last_error is not None
    assert rcpt.last_error.enhanced.startswith("4."), rcpt.last_error
    assert "mx.mismatch.unsigned.test" in rcpt.last_error.text
    assert [(r.policy_type, r.result, r.mx_host) for r in out.tls] == [
        ("sts", "validation-failure", "mx.mismatch.unsigned.test")]
    # Not even a connection: every session Postfix began has ended, none is new.
    assert ended_sessions(sts_setup.postfix) == sessions
    assert msgid not in sts_setup.postfix.maillog()


async def test_tls_required_no_overrides_enforce(
        sts_setup: StsSetup, policy_server: tuple[str, int], tmp_path: Path) -> None:
    # RFC 8689 §5: with "TLS-Required: No" MTA-STS policies are not enforced.
    out, msgid = await send(sts_setup, policy_server, tmp_path, "mismatch.unsigned.test",
                            tls_required_no=True)
    assert out.delivered, out
    postfix_message(sts_setup.postfix, msgid)


async def test_testing_mode_delivers_despite_mismatch(
        sts_setup: StsSetup, policy_server: tuple[str, int], tmp_path: Path) -> None:
    out, msgid = await send(sts_setup, policy_server, tmp_path, "testing.unsigned.test")
    # RFC 8461 §5: mode testing reports but does not stop delivery.
    assert out.delivered, out
    assert ("sts", "success", "mx.testing.unsigned.test") in [
        (r.policy_type, r.result, r.mx_host) for r in out.tls]
    received_with_tls(sts_setup.postfix, postfix_message(sts_setup.postfix, msgid))


async def test_failed_first_fetch_means_no_policy(
        sts_setup: StsSetup, policy_server: tuple[str, int], tmp_path: Path) -> None:
    out, msgid = await send(sts_setup, policy_server, tmp_path, "fetchfail.unsigned.test")
    # RFC 8461 §5.1: no policy could be fetched and none cached: deliver as without one.
    assert out.delivered, out
    assert ("sts", "sts-policy-fetch-error") in [(r.policy_type, r.result) for r in out.tls]
    postfix_message(sts_setup.postfix, msgid)


async def test_testing_mode_reports_the_mx_mismatch(
        sts_setup: StsSetup, policy_server: tuple[str, int], tmp_path: Path) -> None:
    out, _msgid = await send(sts_setup, policy_server, tmp_path, "testing.unsigned.test")
    assert out.delivered, out
    assert ("sts", "validation-failure", "mx.testing.unsigned.test") in [
        (r.policy_type, r.result, r.mx_host) for r in out.tls], out.tls
