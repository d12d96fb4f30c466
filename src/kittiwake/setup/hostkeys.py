"""Host private keys for ACME certificates, made before the first certificate.

A TLSA ``3 1 1`` record (DANE-EE, SubjectPublicKeyInfo, SHA-256; the form
RFC 7671 §10.1.2 recommends) names the public key, not the certificate.
When every certificate the ACME client gets is for one of these keys, the
records published once stay valid across renewals, and no rollover of TLSA
records (RFC 7671 §10.1) is needed. Two keys, ECDSA P-256 and RSA-2048, so
that clients that do not do ECDSA still find a certificate; a TLSA record is
published for each.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

HostKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

# File names under the config directory's hostkeys/, in the order tls.host_private_key_files
# lists them (ECDSA first: smaller and faster).
KEY_KINDS = ("ecdsa-p256", "rsa2048")


def generate_host_key(kind: str) -> bytes:
    """A new host private key as unencrypted PKCS#8 PEM: ``ecdsa-p256`` or ``rsa2048``."""
    key: HostKey
    if kind == "ecdsa-p256":
        key = ec.generate_private_key(ec.SECP256R1())
    elif kind == "rsa2048":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        raise ValueError(f"unknown host key kind {kind!r} (known: {', '.join(KEY_KINDS)})")
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_host_key(path: Path) -> HostKey:
    """The ECDSA or RSA private key in ``path``; ValueError says why it is not usable."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except TypeError:
        raise ValueError(f"{path}: the private key is encrypted; give an unencrypted one"
                         ) from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror}") from None
    except Exception:
        raise ValueError(f"{path}: not a PEM private key") from None
    if isinstance(key, ed25519.Ed25519PrivateKey) or not isinstance(
            key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"{path}: {type(key).__name__} keys cannot be used for certificates"
                         " here; use ECDSA P-256 or RSA")
    return key


def spki_der(key: HostKey) -> bytes:
    """The DER SubjectPublicKeyInfo of the key's public half (RFC 5280 §4.1.2.7)."""
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def tlsa_3_1_1(key: HostKey) -> str:
    """The association data of a ``3 1 1`` TLSA record for the key, hex (RFC 6698 §2.1)."""
    return hashlib.sha256(spki_der(key)).hexdigest()


def key_description(key: HostKey) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return f"RSA-{key.key_size}"
    return f"ECDSA {key.curve.name}"
