"""A test CA issuing real ECDSA and RSA server certificates, as a public CA would.

The leaf certificates look like ACME-issued ones (90 days, serverAuth, a CRL
distribution point, SAN names only), so that testssl.sh judges the TLS
configuration rather than the test PKI. The CA certificate is written for
clients to trust (``ca_file``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from tests.integration.loopback import free_port

from kittiwake.server.tls import CertificateFiles, write_private_file

KITTIWAKE = [sys.executable, "-m", "kittiwake.cli.main"]


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass
class PKI:
    directory: Path
    ca_file: Path
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def create(cls, directory: Path) -> PKI:
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP384R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kittiwake test CA")])
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                             crl_sign=True, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False,
                                             key_agreement=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                               critical=False)
                .sign(key, hashes.SHA384()))
        ca_file = directory / "ca.pem"
        ca_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(directory, ca_file, key, cert)

    def issue(self, names: list[str], kind: str, label: str = "") -> CertificateFiles:
        """A leaf for ``names`` with an ECDSA P-256 or RSA-2048 key (``kind``)."""
        key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = (
            ec.generate_private_key(ec.SECP256R1()) if kind == "ecdsa"
            else rsa.generate_private_key(public_exponent=65537, key_size=2048))
        alt: list[x509.GeneralName] = []
        for name in names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alt.append(x509.DNSName(name))
        now = dt.datetime.now(dt.UTC)
        crl = x509.DistributionPoint(full_name=[x509.UniformResourceIdentifier(
            "http://crl.kittiwake.test/ca.crl")], relative_name=None, reasons=None,
            crl_issuer=None)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
                .issuer_name(self.cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(hours=1))
                .not_valid_after(now + dt.timedelta(days=90))
                .add_extension(x509.SubjectAlternativeName(alt), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=True, key_encipherment=kind == "rsa",
                    content_commitment=False, data_encipherment=False, key_agreement=False,
                    key_cert_sign=False, crl_sign=False, encipher_only=False,
                    decipher_only=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                               critical=False)
                .add_extension(x509.CRLDistributionPoints([crl]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.key.public_key()), critical=False)
                .sign(self.key, hashes.SHA256()))
        stem = f"{label or names[0]}-{kind}"
        files = CertificateFiles(self.directory / f"{stem}.crt", self.directory / f"{stem}.key")
        files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        write_private_file(files.key_file, _pem_key(key))
        return files


def leaf_der(files: CertificateFiles) -> bytes:
    """DER of the first certificate in ``files.cert_file``."""
    cert = x509.load_pem_x509_certificates(files.cert_file.read_bytes())[0]
    return cert.public_bytes(serialization.Encoding.DER)


SERVICES = ("smtp", "submission", "submissions", "imap", "imaps")


def launch_serve(config_dir: Path, log: Path, env: dict[str, str] | None = None,
                 timeout: float = 90) -> subprocess.Popen[bytes] | None:
    """``kittiwake serve`` with its stderr in ``log``, once it logs that it started;
    None if it exited first (the caller reads the log: a port taken meanwhile?)."""
    with open(log, "wb") as out:
        proc = subprocess.Popen([*KITTIWAKE, "--config", str(config_dir), "serve"],
                                stdout=subprocess.DEVNULL, stderr=out, env=env)
    deadline = time.monotonic() + timeout
    while "kittiwake started" not in log.read_text(errors="replace"):
        if proc.poll() is not None:
            return None
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise AssertionError(f"serve did not start in {timeout:.0f} s:\n{log.read_text()}")
        time.sleep(0.05)
    return proc


@dataclass
class TLSServe:
    """A ``kittiwake serve`` process with every TLS mail service on a port of its own."""

    proc: subprocess.Popen[bytes]
    ports: dict[str, int]
    config_dir: Path
    data_dir: Path
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _free_ports(n: int) -> list[int]:
    """``n`` distinct free ports (tests.integration.loopback.free_port)."""
    return [free_port() for _ in range(n)]


def write_tls_config(config_dir: Path, certificates: list[CertificateFiles],
                     ports: dict[str, int], resolver: str, extra: str = "") -> None:
    """kittiwake.conf with one listener per service (each its own connection limits)."""
    certs = "".join(f'[[listeners.{service}.tls.certificates]]\ncert_file = "{c.cert_file}"\n'
                    f'key_file = "{c.key_file}"\n'
                    for service in ports for c in certificates)
    listeners = "".join(
        f'[listeners.{service}]\nips = ["127.0.0.1"]\nhostname = "localhost"\n'
        f'{service} = {{ enabled = true, port = {port} }}\n'
        for service, port in ports.items())
    (config_dir / "kittiwake.conf").write_text(f"""{extra}
hostname = "localhost"
data_dir = "../data"
shutdown_grace_seconds = 3
[dns]
resolvers = ["{resolver}"]
timeout_seconds = 0.2
[limits]
max_connections_per_ip = 1000
{listeners}{certs}""")


def start_tls_serve(directory: Path, certificates: list[CertificateFiles], resolver: str,
                    services: tuple[str, ...] = SERVICES, extra: str = "",
                    env: dict[str, str] | None = None, attempts: int = 5) -> TLSServe:
    """Start ``kittiwake serve``; retried with other ports when one was taken meanwhile."""
    config_dir = directory / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    if not (config_dir / "domains.conf").exists():
        (config_dir / "domains.conf").write_text(
            '[domains."example.org"]\n[accounts.alice]\ndomain = "example.org"\n'
            '[accounts.alice.destinations."alice@example.org"]\n')
    log = directory / "serve.log"
    for _ in range(attempts):
        ports = dict(zip(services, _free_ports(len(services)), strict=True))
        write_tls_config(config_dir, certificates, ports, resolver, extra)
        proc = launch_serve(config_dir, log, env=env, timeout=60)
        if proc is not None:
            return TLSServe(proc, ports, config_dir, directory / "data", log)
        if "cannot listen" not in log.read_text(errors="replace"):
            raise AssertionError(f"serve exited {proc.returncode}:\n{log.read_text()}")
    raise AssertionError(f"no free ports after {attempts} attempts:\n{log.read_text()}")


@contextmanager
def nxdomain_resolver() -> Iterator[str]:
    """``127.0.0.1:PORT`` of a DNS server that answers every query at once with NXDOMAIN.

    Mail then passes its checks quickly (SPF none, no DKIM, DMARC none) instead of
    waiting for DNS timeouts.
    """
    import dns.message
    import dns.rcode

    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    stop = threading.Event()

    def answer() -> None:
        udp.settimeout(0.2)
        while not stop.is_set():
            try:
                data, peer = udp.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                query = dns.message.from_wire(data)
            except Exception:
                continue
            response = dns.message.make_response(query)
            response.set_rcode(dns.rcode.NXDOMAIN)
            udp.sendto(response.to_wire(), peer)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{udp.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=2)
        udp.close()
