"""Server TLS: contexts from configured certificates, SNI, self-signed certificates.

TLS 1.2 is the minimum by default (RFC 8996, RFC 8997). With several
certificates, the client's SNI name picks the certificate whose names match;
the first one is the default. ``localserve`` makes a self-signed certificate
once and reuses it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class TLSConfigError(Exception):
    """A certificate or key could not be loaded; the message names the file."""


@dataclass
class CertificateFiles:
    cert_file: Path
    key_file: Path


def _names(cert_file: Path) -> list[str]:
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError) as exc:
        raise TLSConfigError(f"{cert_file}: not a PEM certificate ({exc})") from None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return [n.lower() for n in san.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return [str(cn[0].value).lower()] if cn else []


def _context(cert: CertificateFiles, min_version: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = (ssl.TLSVersion.TLSv1_3 if min_version == "TLSv1.3"
                               else ssl.TLSVersion.TLSv1_2)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        context.load_cert_chain(cert.cert_file, cert.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise TLSConfigError(f"{cert.cert_file} / {cert.key_file}: cannot load certificate"
                             f" and key ({exc})") from None
    return context


def _matches(name: str, patterns: list[str]) -> bool:
    name = name.lower().rstrip(".")
    for pattern in patterns:
        if pattern == name:
            return True
        if pattern.startswith("*.") and name.count(".") >= 1 and \
                name.split(".", 1)[1] == pattern[2:]:
            return True
    return False


def server_context(certs: list[CertificateFiles], min_version: str = "TLSv1.2") -> ssl.SSLContext:
    """An SSLContext serving ``certs``, choosing by SNI; the first is the default."""
    if not certs:
        raise TLSConfigError("no certificates configured")
    contexts = [(_names(c.cert_file), _context(c, min_version)) for c in certs]
    default = contexts[0][1]
    if len(contexts) > 1:
        def pick(sock: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
            if server_name:
                for names, ctx in contexts:
                    if _matches(server_name, names):
                        sock.context = ctx
                        return

        default.sni_callback = pick  # type: ignore[assignment]
    return default


def write_private_file(path: Path, data: bytes, exclusive: bool = False) -> None:
    """Write a secret (private key) to ``path``, readable by its owner only.

    The file is created with mode 0600 (never briefly readable by others, as
    a write followed by chmod would be); an existing file is truncated and
    set to 0600 first, or refused with FileExistsError when ``exclusive``.
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb", closefd=False) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    finally:
        os.close(fd)


def make_self_signed(directory: Path, hostnames: list[str], days: int = 3650) -> CertificateFiles:
    """Create (once) a self-signed ECDSA P-256 certificate for ``hostnames``."""
    directory.mkdir(parents=True, exist_ok=True)
    files = CertificateFiles(directory / "localserve.crt", directory / "localserve.key")
    if files.cert_file.exists() and files.key_file.exists():
        return files
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])])
    alt: list[x509.GeneralName] = []
    for host in hostnames:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt.append(x509.DNSName(host))
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            # CA:TRUE so that clients (GnuTLS, OpenSSL) accept the file as its own
            # trust anchor when pointed at it (e.g. gsasl --x509-ca-file).
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    write_private_file(files.key_file, key_pem)
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return files


def describe(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> str:
    """"TLS1.3 TLS_AES_128_GCM_SHA256" for logs and Received headers."""
    cipher = ssl_object.cipher()
    version = ssl_object.version() or "TLS"
    return f"{version.replace('v', '')} {cipher[0] if cipher else ''}".strip()
