"""The host private keys certificates are requested for (one ECDSA P-256, one RSA-2048).

The keys exist before any certificate and stay the same across renewals, so
the TLSA ``3 1 1`` records (DANE-EE, SPKI, SHA-256; RFC 7671 §5.1, RFC 7672
§3.1.1) published for them keep matching every certificate we get. They come
from ``tls.host_private_key_files`` (written by ``kittiwake quickstart``);
without them, keys are generated once in the data directory, and TLSA
records can only be published once they exist.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from kittiwake.acme.files import private_dir, write_private


class KeyType(enum.StrEnum):
    """The certificate's key algorithm; one certificate of each per name set."""

    ECDSA = "ecdsa"
    RSA = "rsa"


class HostKeyError(Exception):
    """A host key file is unreadable or of the wrong kind; the message names the file."""


@dataclass(frozen=True)
class HostKey:
    """A private key on disk and what kind it is."""

    path: Path
    key_type: KeyType
    pem: bytes

    def spki_der(self) -> bytes:
        """SubjectPublicKeyInfo (DER), what TLSA ``3 1 x`` records hash."""
        from cryptography.hazmat.primitives import serialization

        key = serialization.load_pem_private_key(self.pem, password=None)
        return key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)


def load_host_key(path: Path) -> HostKey:
    """Read a PEM private key: ECDSA (P-256 or P-384) or RSA (2048 bits or more)."""
    from cryptography.hazmat.primitives import serialization  # only where ACME is used
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    try:
        pem = path.read_bytes()
        key = serialization.load_pem_private_key(pem, password=None)
    except OSError as exc:
        raise HostKeyError(f"{path}: cannot read host private key ({exc.strerror})") from None
    except (ValueError, TypeError) as exc:
        raise HostKeyError(f"{path}: not an unencrypted PEM private key ({exc})") from None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name not in ("secp256r1", "secp384r1"):
            raise HostKeyError(f"{path}: ECDSA curve {key.curve.name} is not accepted by"
                               " certificate authorities (expected P-256 or P-384)")
        return HostKey(path, KeyType.ECDSA, pem)
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise HostKeyError(f"{path}: RSA key of {key.key_size} bits (expected 2048 or more)")
        return HostKey(path, KeyType.RSA, pem)
    raise HostKeyError(f"{path}: {type(key).__name__} keys are not accepted by certificate"
                       " authorities (expected ECDSA P-256 or RSA-2048)")


def load_host_keys(paths: list[Path]) -> list[HostKey]:
    """The configured keys, at most one per key type."""
    keys: dict[KeyType, HostKey] = {}
    for path in paths:
        key = load_host_key(path)
        if key.key_type in keys:
            raise HostKeyError(f"{path}: a second {key.key_type.value} key (the first is"
                               f" {keys[key.key_type].path}); give one ECDSA and one RSA key")
        keys[key.key_type] = key
    return list(keys.values())


def generated_host_keys(directory: Path) -> tuple[list[HostKey], bool]:
    """ECDSA P-256 and RSA-2048 keys in ``directory``, made on first use.

    Returns the keys and whether any was created just now."""
    private_dir(directory)
    created = False
    out = []
    for key_type in (KeyType.ECDSA, KeyType.RSA):
        path = directory / f"{key_type.value}.pem"
        if not path.exists():
            write_private(path, new_key_pem(key_type))
            created = True
        out.append(load_host_key(path))
    return out, created


def new_key_pem(key_type: KeyType) -> bytes:
    """A fresh private key as PKCS#8 PEM."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if key_type is KeyType.ECDSA:
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
