"""Where ACME state lives in the data directory (owner-only).

``<data_dir>/acme/<name>/``: ``account.json`` (the account key and URI at the
authority named ``[acme.<name>]`` in kittiwake.conf) and the certificates
obtained from it. Other parts (``config dnsrecords`` for CAA ``accounturi``,
RFC 8657 §3) read the account URI through :func:`account_uri`.
"""

from __future__ import annotations

import json
from pathlib import Path


def acme_dir(data_dir: Path, name: str) -> Path:
    """The directory of ACME authority ``name``'s account and certificates."""
    return data_dir / "acme" / name


def account_file(data_dir: Path, name: str) -> Path:
    """JSON object with at least ``"uri"`` (the account URL) once registered."""
    return acme_dir(data_dir, name) / "account.json"


def account_uri(data_dir: Path, name: str) -> str | None:
    """The registered account's URI at authority ``name``, or None before registration."""
    try:
        data = json.loads(account_file(data_dir, name).read_text())
    except (OSError, ValueError):
        return None
    uri = data.get("uri") if isinstance(data, dict) else None
    return uri if isinstance(uri, str) and uri else None


def certificates_dir(data_dir: Path, name: str) -> Path:
    """Issued certificate chains (leaf first), one PEM file per name set and key type."""
    return acme_dir(data_dir, name) / "certs"


def generated_keys_dir(data_dir: Path, name: str) -> Path:
    """Host keys made here when the listener has no ``tls.host_private_key_files``."""
    return acme_dir(data_dir, name) / "hostkeys"
