"""Stored SASL credentials: SCRAM keys (RFC 5802 §3) and CRAM-MD5 HMAC states (RFC 2195).

The store keeps one :class:`Credentials` per account, never the password.
:func:`derive_credentials` turns a password into:

- for SCRAM-SHA-1 and SCRAM-SHA-256: salt, iteration count, StoredKey and
  ServerKey (RFC 5802 §3), which verify a SCRAM exchange and, for SHA-256,
  a PLAIN/LOGIN password (:func:`verify_password`);
- for CRAM-MD5: the MD5 chaining states after hashing ``key XOR ipad`` and
  ``key XOR opad`` (RFC 2104 §2), which finish HMAC-MD5 over any challenge.
  These are password-equivalent for CRAM-MD5 itself (as CRAM-MD5 is), so an
  account can be created without them (``cram_md5=False``).

Passwords are prepared with the OpaqueString profile (RFC 8265, see ``prep``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kittiwake.sasl import md5
from kittiwake.sasl.prep import PrecisError, opaque_string

__all__ = [
    "DEFAULT_ITERATIONS_SHA1",
    "DEFAULT_ITERATIONS_SHA256",
    "MIN_ITERATIONS",
    "CramMD5Keys",
    "Credentials",
    "CredentialsFormatError",
    "ScramHash",
    "ScramKeys",
    "cram_md5_digest",
    "cram_md5_keys",
    "derive_credentials",
    "scram_keys",
    "scram_salted_password",
    "verify_password",
]

ScramHash = Literal["sha1", "sha256"]

# RFC 7677 §4: the iteration count SHOULD be at least 4096. SHA-1 keeps the
# common 4096 (old clients); SHA-256, also used to check every PLAIN/LOGIN
# password, gets more work per guess while a login stays a few milliseconds.
MIN_ITERATIONS = 4096
DEFAULT_ITERATIONS_SHA1 = 4096
DEFAULT_ITERATIONS_SHA256 = 10000
SALT_BYTES = 16

_DIGEST_SIZE = {"sha1": 20, "sha256": 32}


class CredentialsFormatError(ValueError):
    """A stored credentials dict/JSON document is not valid."""


@dataclass(frozen=True)
class ScramKeys:
    """What a SCRAM server stores per hash (RFC 5802 §3, §5.1)."""

    salt: bytes
    iterations: int
    stored_key: bytes  # H(ClientKey)
    server_key: bytes  # HMAC(SaltedPassword, "Server Key")


@dataclass(frozen=True)
class CramMD5Keys:
    """HMAC-MD5 intermediate states (RFC 2104 §2) after the first block, 16 bytes each."""

    inner: bytes  # MD5 state A,B,C,D (little-endian) after key XOR ipad
    outer: bytes  # MD5 state after key XOR opad


@dataclass(frozen=True)
class Credentials:
    """All stored authentication data of one account. Serialise with :meth:`to_dict`."""

    scram_sha256: ScramKeys
    scram_sha1: ScramKeys | None = None
    cram_md5: CramMD5Keys | None = None

    def scram(self, hash_name: ScramHash) -> ScramKeys | None:
        return self.scram_sha256 if hash_name == "sha256" else self.scram_sha1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: binary values in base64, with a format version ``v``."""
        out: dict[str, Any] = {"v": 1, "scram_sha256": _scram_to_dict(self.scram_sha256)}
        if self.scram_sha1 is not None:
            out["scram_sha1"] = _scram_to_dict(self.scram_sha1)
        if self.cram_md5 is not None:
            out["cram_md5"] = {
                "inner": _b64(self.cram_md5.inner),
                "outer": _b64(self.cram_md5.outer),
            }
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Credentials:
        """Inverse of :meth:`to_dict`; raises :class:`CredentialsFormatError`."""
        try:
            if data.get("v") != 1:
                raise CredentialsFormatError(f"unknown credentials version {data.get('v')!r}")
            sha256 = _scram_from_dict(data["scram_sha256"], "sha256")
            sha1 = _scram_from_dict(data["scram_sha1"], "sha1") if "scram_sha1" in data else None
            cram = None
            if "cram_md5" in data:
                inner = _unb64(data["cram_md5"]["inner"])
                outer = _unb64(data["cram_md5"]["outer"])
                if len(inner) != 16 or len(outer) != 16:
                    raise CredentialsFormatError("cram_md5 states must be 16 bytes")
                cram = CramMD5Keys(inner, outer)
        except (KeyError, TypeError, AttributeError) as exc:
            raise CredentialsFormatError(f"malformed credentials: {exc!r}") from exc
        return cls(scram_sha256=sha256, scram_sha1=sha1, cram_md5=cram)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Credentials:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise CredentialsFormatError(f"credentials are not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise CredentialsFormatError("credentials JSON must be an object")
        return cls.from_dict(data)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise CredentialsFormatError("expected a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CredentialsFormatError(f"bad base64 {text!r}") from exc


def _scram_to_dict(keys: ScramKeys) -> dict[str, Any]:
    return {
        "salt": _b64(keys.salt),
        "iterations": keys.iterations,
        "stored_key": _b64(keys.stored_key),
        "server_key": _b64(keys.server_key),
    }


def _scram_from_dict(data: Mapping[str, Any], hash_name: ScramHash) -> ScramKeys:
    iterations = data["iterations"]
    if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 1:
        raise CredentialsFormatError(f"bad iteration count {iterations!r}")
    keys = ScramKeys(
        salt=_unb64(data["salt"]),
        iterations=iterations,
        stored_key=_unb64(data["stored_key"]),
        server_key=_unb64(data["server_key"]),
    )
    size = _DIGEST_SIZE[hash_name]
    if len(keys.stored_key) != size or len(keys.server_key) != size or not keys.salt:
        raise CredentialsFormatError(f"bad SCRAM-{hash_name.upper()} key sizes")
    return keys


def scram_salted_password(hash_name: ScramHash, password: bytes, salt: bytes, i: int) -> bytes:
    """RFC 5802 §2.2 Hi(): PBKDF2 (RFC 2898) with HMAC-``hash_name``, one block."""
    return hashlib.pbkdf2_hmac(hash_name, password, salt, i)


def scram_keys(hash_name: ScramHash, salted_password: bytes) -> tuple[bytes, bytes, bytes]:
    """RFC 5802 §3: (ClientKey, StoredKey, ServerKey) from SaltedPassword."""
    client_key = hmac.digest(salted_password, b"Client Key", hash_name)
    stored_key = hashlib.new(hash_name, client_key).digest()
    server_key = hmac.digest(salted_password, b"Server Key", hash_name)
    return client_key, stored_key, server_key


def _derive_scram(hash_name: ScramHash, password: bytes, salt: bytes, i: int) -> ScramKeys:
    _, stored, server = scram_keys(hash_name, scram_salted_password(hash_name, password, salt, i))
    return ScramKeys(salt=salt, iterations=i, stored_key=stored, server_key=server)


def cram_md5_keys(password: bytes) -> CramMD5Keys:
    """RFC 2104 §2 with MD5: the states after hashing K XOR ipad and K XOR opad."""
    key = password if len(password) <= md5.BLOCK_SIZE else hashlib.md5(password).digest()
    key = key.ljust(md5.BLOCK_SIZE, b"\x00")
    ipad = bytes(b ^ 0x36 for b in key)
    opad = bytes(b ^ 0x5C for b in key)
    return CramMD5Keys(
        inner=md5.state_to_bytes(md5.state_after(ipad)),
        outer=md5.state_to_bytes(md5.state_after(opad)),
    )


def cram_md5_digest(keys: CramMD5Keys, challenge: bytes) -> bytes:
    """HMAC-MD5(password, challenge) finished from the stored states (RFC 2104 §2)."""
    inner = md5.digest_from(md5.state_from_bytes(keys.inner), md5.BLOCK_SIZE, challenge)
    return md5.digest_from(md5.state_from_bytes(keys.outer), md5.BLOCK_SIZE, inner)


def derive_credentials(
    password: str,
    *,
    iterations_sha1: int = DEFAULT_ITERATIONS_SHA1,
    iterations_sha256: int = DEFAULT_ITERATIONS_SHA256,
    scram_sha1: bool = True,
    cram_md5: bool = True,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> Credentials:
    """Derive everything the store keeps for ``password``.

    Raises :class:`~kittiwake.sasl.prep.PrecisError` (a ``ValueError``) when the
    password is not allowed by OpaqueString, and ``ValueError`` for an iteration
    count below :data:`MIN_ITERATIONS`. ``random_bytes`` is the salt source.
    """
    for i in (iterations_sha1, iterations_sha256):
        if i < MIN_ITERATIONS:
            raise ValueError(f"iteration count {i} is below the minimum {MIN_ITERATIONS}")
    prepared = opaque_string(password).encode("utf-8")
    return Credentials(
        scram_sha256=_derive_scram("sha256", prepared, random_bytes(SALT_BYTES), iterations_sha256),
        scram_sha1=(
            _derive_scram("sha1", prepared, random_bytes(SALT_BYTES), iterations_sha1)
            if scram_sha1
            else None
        ),
        cram_md5=cram_md5_keys(prepared) if cram_md5 else None,
    )


def verify_password(credentials: Credentials, password: str) -> bool:
    """Check a cleartext password (PLAIN, LOGIN, IMAP LOGIN) against SCRAM-SHA-256 keys.

    Derives SaltedPassword with the stored salt and count, and compares StoredKey
    in constant time. A password OpaqueString rejects never matches.
    """
    keys = credentials.scram_sha256
    try:
        prepared = opaque_string(password).encode("utf-8")
    except PrecisError:
        prepared = None
    # Spend the same work either way, so timing does not tell why it failed.
    salted = scram_salted_password("sha256", prepared or b"\x00", keys.salt, keys.iterations)
    _, stored_key, _ = scram_keys("sha256", salted)
    return hmac.compare_digest(stored_key, keys.stored_key) and prepared is not None
