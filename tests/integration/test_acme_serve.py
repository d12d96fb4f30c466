"""``serve`` with ``tls.acme``: the server gets certificates from pebble and serves them.

The whole wiring: kittiwake.conf with an [acme.pebble] section, a listener with
``tls.acme``, pre-generated host keys, http and https services on pebble's
validation ports; the certificate arrives without a restart and is served on
HTTPS (and on SMTP STARTTLS, the same live context).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kittiwake.acme.keys import KeyType, load_host_key, new_key_pem
from kittiwake.config.load import load
from kittiwake.dns import Nameserver, StubResolver
from kittiwake.server.app import Server

from .acmepeers import LoopbackDNS, Pebble, free_port


def spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)


async def test_serve_obtains_and_serves_acme_certificates(tmp_path: Path) -> None:
    http_port, https_port, smtp_port = free_port(), free_port(), free_port()
    conf = tmp_path / "config"
    conf.mkdir()
    for key_type in (KeyType.ECDSA, KeyType.RSA):
        (conf / f"host-{key_type.value}.pem").write_bytes(new_key_pem(key_type))
    with LoopbackDNS() as dns_server, Pebble(tmp_path, dns_server.port, http_port,
                                             https_port) as pebble:
        (conf / "kittiwake.conf").write_text(f'''
hostname = "mail.example.test"
data_dir = "../data"
[acme.pebble]
directory_url = "{pebble.directory_url}"
ca_file = "{pebble.ca_file}"
challenge = "tls-alpn-01"
[listeners.public]
ips = ["127.0.0.1"]
[listeners.public.tls]
acme = "pebble"
host_private_key_files = ["host-ecdsa.pem", "host-rsa.pem"]
[listeners.public.smtp]
enabled = true
port = {smtp_port}
[listeners.public.http]
enabled = true
port = {http_port}
[listeners.public.https]
enabled = true
port = {https_port}
''')
        (conf / "domains.conf").write_text('[domains."example.test"]\n')
        resolver = StubResolver([Nameserver("127.0.0.1", dns_server.port)], timeout=2)
        server = Server(load(conf), resolver=resolver)
        for service in server.services_from_config():
            server.add_service(service)
        issued = asyncio.Event()
        server.acme.managers["pebble"].subscribe(
            "public", lambda files: issued.set() if len(files) == 2 else None)
        await server.start()
        try:
            await asyncio.wait_for(issued.wait(), 60)
            files = server.acme.managers["pebble"].certificates("public")
            assert len(files) == 2
            keys = {load_host_key(conf / f"host-{t.value}.pem").spki_der()
                    for t in (KeyType.ECDSA, KeyType.RSA)}
            root = pebble.root_pem().decode()
            client = ssl.create_default_context(cadata=root)
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", https_port, ssl=client, server_hostname="autoconfig.example.test")
            der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
            writer.write(b"GET / HTTP/1.1\r\nHost: autoconfig.example.test\r\n"
                         b"Connection: close\r\n\r\n")
            assert (await reader.readline()).startswith(b"HTTP/1.1 404")
            writer.close()
            assert spki(x509.load_der_x509_certificate(der)) in keys

            # SMTP STARTTLS on the same listener now has the certificate too.
            reader, writer = await asyncio.open_connection("127.0.0.1", smtp_port)
            assert (await reader.readline()).startswith(b"220")
            writer.write(b"EHLO client.example\r\n")
            lines = []
            while not (line := await reader.readline()).startswith(b"250 "):
                lines.append(line)
            assert b"250-STARTTLS\r\n" in lines
            writer.write(b"STARTTLS\r\n")
            assert (await reader.readline()).startswith(b"220")
            await writer.start_tls(client, server_hostname="mail.example.test")
            der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
            assert spki(x509.load_der_x509_certificate(der)) in keys
            writer.close()

            # `kittiwake status` of the running server: both certificates, with their
            # expiry and the renewal 30 days (renew_before_days) before it.
            def status(*args: str) -> str:
                return subprocess.run(
                    [sys.executable, "-m", "kittiwake.cli.main", "--config", str(conf),
                     "status", *args], capture_output=True, text=True, check=True,
                    timeout=30).stdout

            st = json.loads(await asyncio.to_thread(status, "--json"))
            certs = st["acme_certificates"]
            assert sorted(c["key_type"] for c in certs) == ["ecdsa", "rsa"]
            for cert in certs:
                assert cert["authority"] == "pebble" and cert["failures"] == 0
                assert cert["names"][0] == "mail.example.test"
                assert set(cert["names"]) == {"mail.example.test", "mta-sts.example.test",
                                              "autoconfig.example.test"}
                assert cert["not_after"] > time.time() + 30 * 86400
                assert cert["expires_in_seconds"] == pytest.approx(
                    cert["not_after"] - time.time(), abs=60)
                assert cert["last_error"] is None
                assert cert["renew_at"] <= cert["not_after"] - 30 * 86400 + 1
            screen = await asyncio.to_thread(status)
            rows = [line for line in screen.splitlines()
                    if line.startswith("  mail.example.test (+2)")]
            assert len(rows) == 2 and all("pebble" in r and "none yet" not in r for r in rows)
        finally:
            await server.close(0)


async def test_no_starttls_before_the_first_certificate(tmp_path: Path) -> None:
    """An ACME listener whose authority has not issued a certificate yet (here: a
    directory that never answers) does not offer STARTTLS on SMTP or IMAP, rather
    than offering a handshake that must fail; IMAP keeps LOGINDISABLED."""
    smtp_port, imap_port, dead_port = free_port(), free_port(), free_port()
    conf = tmp_path / "config"
    conf.mkdir()
    for key_type in (KeyType.ECDSA, KeyType.RSA):
        (conf / f"host-{key_type.value}.pem").write_bytes(new_key_pem(key_type))
    (conf / "kittiwake.conf").write_text(f'''
hostname = "mail.example.test"
data_dir = "../data"
[acme.nowhere]
directory_url = "https://127.0.0.1:{dead_port}/dir"
challenge = "tls-alpn-01"
[listeners.public]
ips = ["127.0.0.1"]
[listeners.public.tls]
acme = "nowhere"
host_private_key_files = ["host-ecdsa.pem", "host-rsa.pem"]
[listeners.public.smtp]
enabled = true
port = {smtp_port}
[listeners.public.imap]
enabled = true
port = {imap_port}
''')
    (conf / "domains.conf").write_text('[domains."example.test"]\n')
    with LoopbackDNS() as dns_server:
        resolver = StubResolver([Nameserver("127.0.0.1", dns_server.port)], timeout=2)
        server = Server(load(conf), resolver=resolver)
        for service in server.services_from_config():
            server.add_service(service)
        await server.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", smtp_port)
            assert (await reader.readline()).startswith(b"220")
            writer.write(b"EHLO client.example\r\n")
            lines = [await reader.readline()]
            while not lines[-1].startswith(b"250 "):
                lines.append(await reader.readline())
            assert not any(b"STARTTLS" in line for line in lines), lines
            writer.write(b"STARTTLS\r\n")
            assert (await reader.readline()).startswith(b"502 5.5.1")  # not offered
            writer.close()

            reader, writer = await asyncio.open_connection("127.0.0.1", imap_port)
            greeting = await reader.readline()
            assert greeting.startswith(b"* OK"), greeting
            writer.write(b"a CAPABILITY\r\n")
            capability = await reader.readline()
            assert b"LOGINDISABLED" in capability and b"STARTTLS" not in capability
            assert (await reader.readline()).startswith(b"a OK")
            writer.write(b"b STARTTLS\r\n")
            assert (await reader.readline()).startswith(b"b BAD")
            writer.close()
        finally:
            await server.close(0)
