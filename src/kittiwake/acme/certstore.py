"""Issued certificates in the data directory, and whether a stored one can be reused.

``<data_dir>/acme/<name>/certs/<first name>.<key type>.pem`` holds the chain
as the authority sent it (leaf first, RFC 8555 §7.4.2), owner-only. The key
is not stored with it: it is the host key of :mod:`kittiwake.acme.keys`. At
start a stored chain is reused when its leaf is for the same public key,
covers every wanted name, and is not yet due for renewal; no order is made.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kittiwake.acme.files import write_private
from kittiwake.acme.keys import HostKey


@dataclass(frozen=True)
class StoredCertificate:
    """A chain on disk and what its leaf says."""

    path: Path
    key: HostKey
    pem: bytes
    names: frozenset[str]
    not_before: dt.datetime
    not_after: dt.datetime
    serial: int

    def covers(self, names: tuple[str, ...]) -> bool:
        return {n.lower() for n in names} <= self.names


def chain_path(certs_dir: Path, names: tuple[str, ...], key: HostKey) -> Path:
    return certs_dir / f"{names[0].lower()}.{key.key_type.value}.pem"


def _leaf(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificates(pem)[0]


def describe(path: Path, pem: bytes, key: HostKey) -> StoredCertificate:
    """Parse a chain; ValueError when it is no certificate or not for ``key``."""
    leaf = _leaf(pem)
    spki = leaf.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    if spki != key.spki_der():
        raise ValueError(f"{path}: the certificate is not for the key {key.path}")
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = frozenset(n.lower() for n in san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = frozenset()
    return StoredCertificate(path, key, pem, names, leaf.not_valid_before_utc,
                             leaf.not_valid_after_utc, leaf.serial_number)


def load(path: Path, key: HostKey) -> StoredCertificate | None:
    """The stored chain for ``key``, or None when there is none usable."""
    try:
        return describe(path, path.read_bytes(), key)
    except (OSError, ValueError):
        return None


def save(path: Path, chain_pem: str, key: HostKey) -> StoredCertificate:
    """Check the new chain belongs to ``key``, then store it (0600, atomically)."""
    pem = chain_pem.encode()
    stored = describe(path, pem, key)  # before writing: never replace a good one by junk
    write_private(path, pem)
    return stored
