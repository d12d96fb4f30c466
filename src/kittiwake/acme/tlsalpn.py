"""The tls-alpn-01 challenge (RFC 8737): the challenge certificate and its server context.

Why it is built here: the ``acme`` library (5.x) dropped its TLS-ALPN-01
challenge class together with its pyOpenSSL dependency, so it neither
recognises the challenge (it parses it as ``UnrecognizedChallenge``) nor makes
the certificate. What it lacks is small: the key authorization (RFC 8555
§8.1: ``token || "." || base64url(JWK thumbprint)``), the certificate and a
server context offering only the ``acme-tls/1`` protocol.

RFC 8737 §3, the certificate:
- self-signed, with a subjectAltName holding exactly the one dNSName being
  validated;
- a critical ``id-pe-acmeIdentifier`` extension (OID 1.3.6.1.5.5.7.1.31,
  §6.1) whose extnValue is the DER encoding of
  ``Authorization ::= OCTET STRING (SIZE (32))``, the SHA-256 digest of the
  key authorization.
The server answers it only on connections whose ClientHello offers the
``acme-tls/1`` ALPN protocol (§6.2), negotiates that protocol, and the ACME
server closes the connection after the handshake (§3).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ssl
import tempfile
from pathlib import Path

import josepy as jose
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier

ACME_IDENTIFIER_OID = ObjectIdentifier("1.3.6.1.5.5.7.1.31")  # RFC 8737 §6.1
ACME_TLS_ALPN = "acme-tls/1"  # RFC 8737 §6.2
CHALLENGE_TYPE = "tls-alpn-01"


def key_authorization(token: str, account_key: jose.JWK) -> str:
    """RFC 8555 §8.1: the token, a dot, and the base64url SHA-256 thumbprint of the account key."""
    thumbprint = account_key.thumbprint(hash_function=hashes.SHA256)
    return f"{token}.{jose.b64encode(thumbprint).decode()}"


def acme_identifier_value(key_authz: str) -> bytes:
    """The DER OCTET STRING of SHA-256(key authorization) (RFC 8737 §3)."""
    digest = hashlib.sha256(key_authz.encode()).digest()
    return bytes([0x04, len(digest)]) + digest


def challenge_certificate(name: str, key_authz: str) -> tuple[bytes, bytes]:
    """The challenge certificate for ``name`` and its (fresh, throw-away) key, both PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=7))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.UnrecognizedExtension(ACME_IDENTIFIER_OID,
                                                      acme_identifier_value(key_authz)),
                           critical=True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def challenge_context(name: str, key_authz: str) -> ssl.SSLContext:
    """A server context presenting the challenge certificate and offering only ``acme-tls/1``."""
    cert_pem, key_pem = challenge_certificate(name, key_authz)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # RFC 8737 §3: TLS 1.2 or later
    context.set_alpn_protocols([ACME_TLS_ALPN])
    # ssl loads certificates from files only: a private temporary directory, gone at once.
    with tempfile.TemporaryDirectory(prefix="kw-alpn-") as tmp:
        cert_file, key_file = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert_file.write_bytes(cert_pem)
        key_file.write_bytes(key_pem)
        context.load_cert_chain(cert_file, key_file)
    return context
