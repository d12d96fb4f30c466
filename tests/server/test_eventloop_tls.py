"""Every TLS service of a real ``kittiwake serve`` handshakes on both event loops.

Two name sets (SNI picks the set, each with an ECDSA and an RSA certificate),
clients preferring ECDSA (TLS 1.3, TLS 1.2 ECDSA suites) or able to use only
RSA (TLS 1.2 RSA suites), over SMTP and submission STARTTLS, submissions,
IMAP STARTTLS, IMAPS and HTTPS. Under uvloop, implicit TLS once lost the
ClientHello to the plain-text stream and hung (kittiwake.server.eventloop).
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.server.tls_helpers import (
    PKI,
    SERVICES,
    TLSServe,
    leaf_der,
    nxdomain_resolver,
    start_tls_serve,
)

from kittiwake.server.tls import CertificateFiles

ORG = ["mail.example.org", "mta-sts.example.org"]
NET = ["mail.example.net"]


class Lines:
    """Line reading over a plain or TLS socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            data = self.sock.recv(4096)
            if not data:
                raise AssertionError(f"connection closed; read so far: {self.buffer!r}")
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def until(self, prefix: bytes) -> list[bytes]:
        lines = [self.line()]
        while not lines[-1].startswith(prefix):
            lines.append(self.line())
        return lines

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)


def _smtp_starttls(sock: socket.socket) -> None:
    plain = Lines(sock)
    assert plain.line().startswith(b"220 ")
    plain.send(b"EHLO client.example\r\n")
    assert b"250-STARTTLS" in b"\n".join(plain.until(b"250 "))
    plain.send(b"STARTTLS\r\n")
    assert plain.line().startswith(b"220 ")


def _imap_starttls(sock: socket.socket) -> None:
    plain = Lines(sock)
    assert plain.line().startswith(b"* OK")
    plain.send(b"a STARTTLS\r\n")
    assert plain.until(b"a ")[-1].startswith(b"a OK")


def _after_smtp(tls: Lines, implicit: bool) -> None:
    if implicit:
        assert tls.line().startswith(b"220 ")
    tls.send(b"EHLO client.example\r\n")
    assert tls.until(b"250 ")[-1].startswith(b"250 ")


def _after_imap(tls: Lines, implicit: bool) -> None:
    if implicit:
        assert tls.line().startswith(b"* OK")
    tls.send(b"b CAPABILITY\r\n")
    assert tls.until(b"b ")[-1].startswith(b"b OK")


def _after_https(tls: Lines, implicit: bool) -> None:
    tls.send(b"GET / HTTP/1.1\r\nHost: mail.example.org\r\nConnection: close\r\n\r\n")
    assert tls.line().startswith(b"HTTP/1.1 ")


UPGRADE = {"smtp": _smtp_starttls, "submission": _smtp_starttls, "imap": _imap_starttls}
AFTER = {"smtp": _after_smtp, "submission": _after_smtp, "submissions": _after_smtp,
         "imap": _after_imap, "imaps": _after_imap, "https": _after_https}


def session(serve: TLSServe, service: str, context: ssl.SSLContext, name: str
            ) -> tuple[str, str, bytes]:
    """One connection to ``service``, TLS with SNI ``name``: (version, cipher, cert DER)."""
    with socket.create_connection(("127.0.0.1", serve.ports[service]), timeout=10) as sock:
        upgrade = UPGRADE.get(service)
        if upgrade is not None:
            upgrade(sock)
        with context.wrap_socket(sock, server_hostname=name) as tls:
            AFTER[service](Lines(tls), upgrade is None)
            cipher = tls.cipher()
            der = tls.getpeercert(True)
            assert cipher is not None and der is not None
            return str(tls.version()), cipher[0], der


def client(ca: PKI, kind: str) -> ssl.SSLContext:
    """``tls13``: any (ECDSA served); ``ecdsa12``/``rsa12``: TLS 1.2 with those suites only."""
    context = ssl.create_default_context(cafile=str(ca.ca_file))
    if kind != "tls13":
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256" if kind == "rsa12"
                            else "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256")
    return context


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory
                 ) -> tuple[PKI, dict[tuple[str, str], CertificateFiles]]:
    ca = PKI.create(tmp_path_factory.mktemp("pki"))
    issued = {(names[0], kind): ca.issue(names, kind)
              for names in (ORG, NET) for kind in ("ecdsa", "rsa")}
    return ca, issued


@pytest.fixture(params=["uvloop", "asyncio"])
def serve(request: pytest.FixtureRequest, tmp_path: Path,
          certificates: tuple[PKI, dict[tuple[str, str], CertificateFiles]]
          ) -> Iterator[TLSServe]:
    _ca, issued = certificates
    env = {**os.environ, "KITTIWAKE_EVENT_LOOP": request.param}
    with nxdomain_resolver() as resolver:
        server = start_tls_serve(tmp_path, list(issued.values()), resolver,
                                 services=(*SERVICES, "https"), env=env)
        try:
            yield server
        finally:
            server.stop()


def test_every_tls_service_handshakes_by_sni_and_key_type(
        serve: TLSServe, certificates: tuple[PKI, dict[tuple[str, str], CertificateFiles]],
        request: pytest.FixtureRequest) -> None:
    ca, issued = certificates
    loop = request.node.callspec.params["serve"]
    assert f"event_loop={loop}" in serve.text(), serve.text()
    contexts = {kind: client(ca, kind) for kind in ("tls13", "ecdsa12", "rsa12")}
    for service in (*SERVICES, "https"):
        for name, names in (("mail.example.org", ORG), ("mta-sts.example.org", ORG),
                            ("mail.example.net", NET)):
            for kind, context in contexts.items():
                version, cipher, der = session(serve, service, context, name)
                key = "rsa" if kind == "rsa12" else "ecdsa"
                where = f"{loop} {service} {name} {kind}: {version} {cipher}"
                assert der == leaf_der(issued[(names[0], key)]), where
                assert version == ("TLSv1.3" if kind == "tls13" else "TLSv1.2"), where
                if kind != "tls13":
                    assert ("ECDSA" in cipher) == (key == "ecdsa"), where
    assert "Traceback" not in serve.text(), serve.text()
    # The server picked certificates by name and key type and serves TLS without
    # the crypto library (kittiwake.certinfo reads the certificates): about 6 MiB
    # less resident memory. Its SMTP workers, which verify DKIM, may load it.
    maps = Path(f"/proc/{serve.proc.pid}/maps").read_text()
    assert "cryptography" not in maps, [m for m in maps.splitlines() if "cryptography" in m]
