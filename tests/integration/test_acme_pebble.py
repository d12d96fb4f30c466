"""Certificates from Debian's pebble for pre-generated host keys, over our own listeners.

pebble validates http-01 against our HTTPListener and tls-alpn-01 against our
HTTPSListener (it connects to 127.0.0.1, the address LoopbackDNS gives every
name). Each test checks what a user relies on: the certificate is for the
pre-generated key (so TLSA 3 1 1 keeps matching), renewals keep the key, a
restart reuses stored certificates without a new order.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kittiwake.acme.challenges import Challenges
from kittiwake.acme.client import Authority
from kittiwake.acme.clienthello import parse_client_hello
from kittiwake.acme.keys import HostKey, KeyType, load_host_key, new_key_pem
from kittiwake.acme.manager import CertificateManager, CertificatePaths
from kittiwake.dns import Nameserver, StubResolver
from kittiwake.http.listener import HTTPListener, HTTPSListener
from kittiwake.metrics import REGISTRY
from kittiwake.server.tls import CertificateFiles, server_context

from .acmepeers import LoopbackDNS, Pebble, free_port

NAMES = ["mail.example.test", "mta-sts.example.test", "autoconfig.example.test"]


class Ports:
    def __init__(self) -> None:
        self.http = free_port()
        self.https = free_port()


@pytest.fixture(scope="module")
def loopback_dns() -> Iterator[LoopbackDNS]:
    with LoopbackDNS() as server:
        yield server


@pytest.fixture(scope="module")
def ports() -> Ports:
    return Ports()


@pytest.fixture(scope="module")
def pebble(tmp_path_factory: pytest.TempPathFactory, loopback_dns: LoopbackDNS,
           ports: Ports) -> Iterator[Pebble]:
    with Pebble(tmp_path_factory.mktemp("pebble"), loopback_dns.port, ports.http,
                ports.https) as server:
        yield server


def host_keys(directory: Path) -> list[HostKey]:
    """Pre-generated keys, as quickstart writes them (PKCS#8 PEM files)."""
    keys = []
    for key_type in (KeyType.ECDSA, KeyType.RSA):
        path = directory / f"host-{key_type.value}.pem"
        path.write_bytes(new_key_pem(key_type))
        keys.append(load_host_key(path))
    return keys


def orders(authority: str, result: str = "ok") -> float:
    value = REGISTRY.get_sample_value("kittiwake_acme_orders_total",
                                      {"authority": authority, "result": result})
    return value or 0.0


def answered_challenges(challenge: str) -> float:
    if challenge == "http-01":
        value = REGISTRY.get_sample_value("kittiwake_http_listener_requests_total",
                                          {"service": "http", "kind": "acme-challenge"})
    else:
        value = REGISTRY.get_sample_value("kittiwake_http_listener_tls_handshakes_total",
                                          {"result": "acme-challenge"})
    return value or 0.0


class World:
    """Our listeners on pebble's validation ports, and the manager under test."""

    def __init__(self, pebble: Pebble, dns_port: int, ports: Ports, data_dir: Path) -> None:
        self.pebble = pebble
        self.ports = ports
        self.data_dir = data_dir
        self.challenges = Challenges()
        self.context: ssl.SSLContext | None = None
        self.published: list[list[CertificatePaths]] = []
        self.resolver = StubResolver([Nameserver("127.0.0.1", dns_port)], timeout=2)
        self.http = HTTPListener(["127.0.0.1"], ports.http, self.challenges,
                                 "mail.example.test", https_port=ports.https)
        self.https = HTTPSListener(["127.0.0.1"], ports.https, self.challenges,
                                   parse_client_hello, lambda: self.context)

    def manager(self, name: str, challenge: str, keys: list[HostKey],
                clock: object = None, eab: tuple[str, str] | None = None) -> CertificateManager:
        authority = Authority(name=name, directory_url=self.pebble.directory_url,
                              challenge=challenge, contact_email="admin@example.test",
                              ca_file=self.pebble.ca_file,
                              eab_key_id=eab[0] if eab else "",
                              eab_hmac_key=eab[1] if eab else "",
                              issuer_domain_names=("pebble.test",))
        extra = {"clock": clock} if clock is not None else {}
        manager = CertificateManager(authority, self.data_dir, self.challenges,
                                     resolver=self.resolver, backoff_first=0.01, **extra)
        manager.add_listener("public", NAMES, keys)
        manager.subscribe("public", self._published)
        return manager

    def _published(self, files: list[CertificatePaths]) -> None:
        self.published.append(files)
        self.context = server_context([CertificateFiles(f.cert_file, f.key_file)
                                       for f in files])


@pytest.fixture
async def world(pebble: Pebble, loopback_dns: LoopbackDNS, ports: Ports,
                tmp_path: Path) -> AsyncIterator[World]:
    w = World(pebble, loopback_dns.port, ports, tmp_path / "data")
    await w.http.start()
    await w.https.start()
    yield w
    await w.http.close(0)
    await w.https.close(0)


def leaf(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)


def names_of(cert: x509.Certificate) -> set[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName))


async def served_leaf(world: World, server_name: str) -> x509.Certificate:
    """The certificate our HTTPS listener serves, verified against pebble's root."""
    context = ssl.create_default_context(cadata=world.pebble.root_pem().decode())
    reader, writer = await asyncio.open_connection("127.0.0.1", world.ports.https, ssl=context,
                                                   server_hostname=server_name)
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.write(b"GET /none HTTP/1.1\r\nHost: " + server_name.encode() + b"\r\n"
                 b"Connection: close\r\n\r\n")
    status = await reader.readline()
    writer.close()
    assert status.startswith(b"HTTP/1.1 404"), status
    return x509.load_der_x509_certificate(der)


@pytest.mark.parametrize("challenge", ["tls-alpn-01", "http-01"])
async def test_certificates_for_the_pregenerated_keys(world: World, tmp_path: Path,
                                                      challenge: str) -> None:
    keys = host_keys(tmp_path)
    name = f"pebble-{challenge}"
    before = orders(name)
    answered = answered_challenges(challenge)
    manager = world.manager(name, challenge, keys)
    await manager.start(background=False)
    assert manager.certificates("public") == []
    assert await manager.renew_due() == 2
    assert orders(name) == before + 2
    # pebble really validated through our listener (authorizations are not reused).
    assert answered_challenges(challenge) >= answered + len(NAMES)
    files = manager.certificates("public")
    assert [f.key_file for f in files] == [keys[0].path, keys[1].path]  # ECDSA first
    for f, key in zip(files, keys, strict=True):
        cert = leaf(f.cert_file)
        assert spki(cert) == key.spki_der()  # TLSA 3 1 1 of the pre-generated key matches
        assert names_of(cert) == set(NAMES)
        assert f.cert_file.stat().st_mode & 0o077 == 0
    assert (world.data_dir / "acme" / name / "account.json").stat().st_mode & 0o777 == 0o600
    assert (world.data_dir / "acme" / name).stat().st_mode & 0o777 == 0o700
    assert world.published and world.published[-1] == files
    served = await served_leaf(world, "mta-sts.example.test")
    assert spki(served) in {k.spki_der() for k in keys}
    await manager.close()


async def test_renewal_keeps_the_key_and_restart_reuses(world: World, tmp_path: Path) -> None:
    keys = host_keys(tmp_path)
    now = [dt.datetime.now(dt.UTC)]
    name = "pebble-renew"
    manager = world.manager(name, "tls-alpn-01", keys, clock=lambda: now[0])
    await manager.start(background=False)
    assert await manager.renew_due() == 2
    first = {f.key_file: leaf(f.cert_file) for f in manager.certificates("public")}
    assert await manager.renew_due() == 0  # nothing due yet: no order

    # A restart: a new manager on the same data directory serves the stored
    # certificates at once and orders nothing.
    count = orders(name)
    restarted = world.manager(name, "tls-alpn-01", keys, clock=lambda: now[0])
    await restarted.start(background=False)
    assert {f.key_file: leaf(f.cert_file).serial_number
            for f in restarted.certificates("public")} == \
        {k: c.serial_number for k, c in first.items()}
    assert await restarted.renew_due() == 0
    assert orders(name) == count

    # 29 days before expiry (renew_before is 30 days): both are renewed, same keys.
    not_after = min(c.not_valid_after_utc for c in first.values())
    now[0] = not_after - dt.timedelta(days=29)
    published = len(world.published)
    assert await restarted.renew_due() == 2
    assert orders(name) == count + 2
    for f in restarted.certificates("public"):
        renewed = leaf(f.cert_file)
        assert renewed.serial_number != first[f.key_file].serial_number
        assert spki(renewed) == spki(first[f.key_file])
    assert len(world.published) == published + 2
    await manager.close()
    await restarted.close()


async def test_caa_forbidding_the_issuer_stops_the_order(world: World, tmp_path: Path,
                                                         loopback_dns: LoopbackDNS) -> None:
    loopback_dns.caa["example.test"] = ['0 issue "other-ca.example"']
    try:
        name = "pebble-caa"
        manager = world.manager(name, "http-01", host_keys(tmp_path)[:1])
        await manager.start(background=False)
        before = orders(name, "caa-forbidden")
        assert await manager.renew_due() == 0
        assert orders(name, "caa-forbidden") == before + 1
        assert orders(name) == 0
        status = manager.status()[0]
        assert "CAA at example.test" in str(status["last_error"])
        assert "other-ca.example" in str(status["last_error"])
        # Allowed again: the retry (after the backoff) gets the certificate.
        loopback_dns.caa["example.test"] = ['0 issue "pebble.test"']
        await asyncio.sleep(0.05)  # past the 0.01 s backoff of the test manager
        assert await manager.renew_due() == 1
        await manager.close()
    finally:
        loopback_dns.caa.pop("example.test", None)


async def test_external_account_binding(tmp_path: Path, loopback_dns: LoopbackDNS) -> None:
    ports = Ports()
    hmac = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
    with Pebble(tmp_path, loopback_dns.port, ports.http, ports.https,
                eab_keys={"kid-1": hmac}) as pebble:
        world = World(pebble, loopback_dns.port, ports, tmp_path / "data")
        await world.http.start()
        try:
            # Without the binding, a clear error; with it, a certificate.
            plain = world.manager("pebble-no-eab", "http-01", host_keys(tmp_path)[:1])
            await plain.start(background=False)
            assert await plain.renew_due() == 0
            assert "requires external account binding" in str(plain.status()[0]["last_error"])
            bound = world.manager("pebble-eab", "http-01", host_keys(tmp_path)[:1],
                                  eab=("kid-1", hmac))
            await bound.start(background=False)
            assert await bound.renew_due() == 1
            assert (tmp_path / "data/acme/pebble-eab/account.json").exists()
        finally:
            await world.http.close(0)
