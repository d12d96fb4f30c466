"""Certificates for DANE tests, made with ``cryptography``: a root CA, an
intermediate, server certificates (good, expired, wildcard, self-signed)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID

NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)


@dataclass
class Issued:
    cert: x509.Certificate
    key: Any

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def spki(self) -> bytes:
        return self.cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make(cn: str, key: Any, issuer: Issued | None, *, ca: bool, sans: tuple[str, ...] = (),
         not_before: datetime.datetime = NOW - 30 * DAY,
         not_after: datetime.datetime = NOW + 60 * DAY, pss: bool = False,
         issuer_name: str | None = None) -> Issued:
    """A certificate for ``key`` signed by ``issuer`` (self-signed when None)."""
    builder = (x509.CertificateBuilder()
               .subject_name(_name(cn))
               .issuer_name(_name(issuer_name) if issuer_name else
                            issuer.cert.subject if issuer else _name(cn))
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before)
               .not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in sans]), critical=False)
    signer = issuer.key if issuer else key
    if isinstance(signer, ed25519.Ed25519PrivateKey):
        cert = builder.sign(signer, None)
    elif pss:
        cert = builder.sign(signer, hashes.SHA256(),
                            rsa_padding=padding.PSS(padding.MGF1(hashes.SHA256()),
                                                    padding.PSS.DIGEST_LENGTH))
    else:
        cert = builder.sign(signer, hashes.SHA256())
    return Issued(cert, key)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@dataclass
class PKI:
    root: Issued
    inter: Issued           # RSA intermediate signed by the EC root
    leaf: Issued            # EC, SAN mx.example.org + *.mail.example.net, PKCS#1 v1.5
    pss_leaf: Issued        # signed by the intermediate with RSA-PSS
    expired: Issued         # mx.example.org, expired 10 days before NOW
    self_signed: Issued     # Ed25519, SAN self.example.org
    under_leaf: Issued      # signed by ``leaf``, which is not a CA
    forged: Issued          # names the intermediate as issuer, signed by another key
    cn_only: Issued         # no SAN, CN mx.example.org


def build_pki() -> PKI:
    root = make("Test Root", ec_key(), None, ca=True, not_after=NOW + 3650 * DAY)
    inter = make("Test Intermediate", rsa.generate_private_key(65537, 2048), root, ca=True)
    leaf = make("mx.example.org", ec_key(), inter, ca=False,
                sans=("mx.example.org", "*.mail.example.net"))
    return PKI(
        root=root,
        inter=inter,
        leaf=leaf,
        pss_leaf=make("mx.example.org", ec_key(), inter, ca=False, sans=("mx.example.org",),
                      pss=True),
        expired=make("mx.example.org", ec_key(), inter, ca=False, sans=("mx.example.org",),
                     not_before=NOW - 100 * DAY, not_after=NOW - 10 * DAY),
        self_signed=make("self.example.org", ed25519.Ed25519PrivateKey.generate(), None,
                         ca=False, sans=("self.example.org",)),
        under_leaf=make("mx.example.org", ec_key(), leaf, ca=False, sans=("mx.example.org",)),
        forged=make("mx.example.org", ec_key(), Issued(inter.cert, ec_key()), ca=False,
                    sans=("mx.example.org",)),
        cn_only=make("mx.example.org", ec_key(), inter, ca=False),
    )
