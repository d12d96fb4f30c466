"""DKIM keys: the DNS key record (RFC 6376 §3.6.1), key files, and the signature primitives.

Algorithms: rsa-sha256 (RFC 6376 §3.3.1, with RFC 8301's key size rules) and
ed25519-sha256 (RFC 8463). rsa-sha1 is recognised only to be refused
(RFC 8301 §3.1).
"""

from __future__ import annotations

import base64
import enum
import functools
import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeAlias

from kittiwake.dkim.tags import TagListError, decode_base64, parse_tag_list, split_colon_list

# The crypto library is imported by the functions that use it, not here: the
# server process reads DKIM results and records (kittiwake.dkim) but signs
# rarely and verifies never, and the library adds about 6 MiB to a process.
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    PrivateKey: TypeAlias = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    PublicKey: TypeAlias = rsa.RSAPublicKey | ed25519.Ed25519PublicKey


def __getattr__(name: str) -> object:
    """``PrivateKey`` and ``PublicKey`` at run time (PEP 562), with the library."""
    if name in ("PrivateKey", "PublicKey"):
        from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

        kind = name.removesuffix("Key")
        return getattr(rsa, f"RSA{kind}Key") | getattr(ed25519, f"Ed25519{kind}Key")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

# RFC 8301 §3.2: verifiers MUST NOT accept RSA keys under 1024 bits; signers
# SHOULD use at least 2048. Keys above MAX_RSA_BITS are refused to bound the
# work a hostile record can cause (verifiers need only handle up to 4096).
MIN_RSA_BITS = 1024
DEFAULT_RSA_BITS = 2048
MAX_RSA_BITS = 8192


class Algorithm(enum.StrEnum):
    """Signing algorithms (a= tag, RFC 6376 §3.5; RFC 8463 §3)."""

    RSA_SHA256 = "rsa-sha256"
    ED25519_SHA256 = "ed25519-sha256"
    RSA_SHA1 = "rsa-sha1"  # RFC 8301 §3.1: never signed with, never accepted

    @property
    def key_type(self) -> str:
        """The k= key type of the algorithm."""
        return "ed25519" if self is Algorithm.ED25519_SHA256 else "rsa"

    @property
    def hash_name(self) -> str:
        return "sha1" if self is Algorithm.RSA_SHA1 else "sha256"


class KeyRecordError(ValueError):
    """The key record cannot be used (RFC 6376 §6.1.2: PERMFAIL)."""


@dataclass(frozen=True)
class KeyRecord:
    """A parsed DKIM key record (RFC 6376 §3.6.1).

    ``public_key`` is None when ``p=`` is empty: the key is revoked.
    """

    key_type: str = "rsa"
    public_key: PublicKey | None = None
    hash_algorithms: tuple[str, ...] | None = None  # h=; None: all allowed
    services: tuple[str, ...] = ("*",)  # s=
    flags: tuple[str, ...] = ()  # t=
    notes: str = ""
    raw: str = field(default="", repr=False)

    @property
    def revoked(self) -> bool:
        return self.public_key is None

    @property
    def testing(self) -> bool:
        """t=y: the domain is testing DKIM (§3.6.1)."""
        return "y" in self.flags

    @property
    def strict(self) -> bool:
        """t=s: i= must use exactly the d= domain, no subdomain (§3.6.1)."""
        return "s" in self.flags

    @property
    def bits(self) -> int:
        from cryptography.hazmat.primitives.asymmetric import rsa

        if isinstance(self.public_key, rsa.RSAPublicKey):
            return self.public_key.key_size
        return 256 if self.public_key is not None else 0


@functools.lru_cache(maxsize=1024)
def parse_key_record(text: str) -> KeyRecord:
    """Parse a TXT key record; KeyRecordError says what is wrong (§3.6.1)."""
    try:
        tags = parse_tag_list(text)
    except TagListError as exc:
        raise KeyRecordError(f"key record syntax error: {exc}") from None
    # §3.6.1 v=: "If specified, this tag MUST be set to "DKIM1" ... and MUST be the first tag".
    if "v" in tags:
        if next(iter(tags)) != "v":
            raise KeyRecordError("key record v= is not the first tag")
        if tags["v"].value != "DKIM1":
            raise KeyRecordError(f"key record version {tags['v'].value!r} is not DKIM1")
    key_type = tags["k"].value.lower() if "k" in tags else "rsa"
    hash_algs = None
    if "h" in tags:
        hash_algs = tuple(h.lower() for h in split_colon_list(tags["h"].value))
    services = ("*",)
    if "s" in tags:
        services = tuple(s.lower() for s in split_colon_list(tags["s"].value))
    flags = tuple(f.lower() for f in split_colon_list(tags["t"].value)) if "t" in tags else ()
    if "p" not in tags:
        raise KeyRecordError("key record has no p= tag")
    p_value = tags["p"].value
    if not p_value.strip():
        return KeyRecord(key_type, None, hash_algs, services, flags,
                         tags["n"].value if "n" in tags else "", text)
    try:
        data = decode_base64(p_value, "p=")
    except TagListError as exc:
        raise KeyRecordError(f"key record {exc}") from None
    public_key = load_public_key_data(key_type, data)
    notes = tags["n"].value if "n" in tags else ""
    return KeyRecord(key_type, public_key, hash_algs, services, flags, notes, text)


def load_public_key_data(key_type: str, data: bytes) -> PublicKey:
    """The public key in a p= value: SubjectPublicKeyInfo DER for rsa (§3.6.1),
    the raw 32 octets for ed25519 (RFC 8463 §4). RSAPublicKey (PKCS#1) DER,
    which some publishers use, is accepted too."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    if key_type == "ed25519":
        if len(data) != 32:
            raise KeyRecordError(f"ed25519 public key is {len(data)} bytes, not 32")
        try:
            return ed25519.Ed25519PublicKey.from_public_bytes(data)
        except (ValueError, UnsupportedAlgorithm):
            raise KeyRecordError("invalid ed25519 public key") from None
    if key_type != "rsa":
        raise KeyRecordError(f"unknown key type k={key_type}")
    if len(data) > MAX_RSA_BITS // 8 + 64:
        raise KeyRecordError("RSA public key too large")
    key: object
    try:
        key = serialization.load_der_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        pem = (b"-----BEGIN RSA PUBLIC KEY-----\n" + base64.encodebytes(data)
               + b"-----END RSA PUBLIC KEY-----\n")
        try:
            key = serialization.load_pem_public_key(pem)
        except (ValueError, UnsupportedAlgorithm):
            raise KeyRecordError("p= is not an RSA public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyRecordError("p= is not an RSA public key (k=rsa)")
    return key


def check_rsa_size(bits: int) -> None:
    """RFC 8301 §3.2 key size limits for verification."""
    if bits < MIN_RSA_BITS:
        raise KeyRecordError(f"RSA key of {bits} bits is too small "
                             f"(RFC 8301 §3.2 needs at least {MIN_RSA_BITS})")
    if bits > MAX_RSA_BITS:
        raise KeyRecordError(f"RSA key of {bits} bits is larger than the {MAX_RSA_BITS} accepted")


def verify_signature(public_key: PublicKey, algorithm: Algorithm, data: bytes,
                     signature: bytes) -> bool:
    """Check ``signature`` over the header hash input ``data``.

    rsa-sha256: RSASSA-PKCS1-v1_5 with SHA-256 (RFC 6376 §3.3.1).
    ed25519-sha256: PureEdDSA Ed25519 over the SHA-256 hash of the data
    (RFC 8463 §3), i.e. the hash is what Ed25519 signs.
    """
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

    try:
        if algorithm is Algorithm.ED25519_SHA256 and isinstance(
                public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, hashlib.sha256(data).digest())
            return True
        if algorithm is Algorithm.RSA_SHA256 and isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            return True
    except (InvalidSignature, ValueError):
        return False
    return False


def sign_data(private_key: PrivateKey, data: bytes) -> tuple[Algorithm, bytes]:
    """Sign the header hash input with the algorithm the key implies."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return Algorithm.ED25519_SHA256, private_key.sign(hashlib.sha256(data).digest())
    if isinstance(private_key, rsa.RSAPrivateKey):
        if private_key.key_size < MIN_RSA_BITS:
            raise ValueError(f"RSA key of {private_key.key_size} bits is too small to sign with "
                             f"(RFC 8301 §3.2: at least {MIN_RSA_BITS})")
        return Algorithm.RSA_SHA256, private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    raise TypeError(f"unsupported DKIM private key type {type(private_key).__name__}")


def generate_key(kind: str = "ed25519", bits: int = DEFAULT_RSA_BITS) -> bytes:
    """A new private key as PKCS#8 PEM: ``"ed25519"`` or ``"rsa"`` (of ``bits`` bits)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    key: PrivateKey
    if kind == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    elif kind == "rsa":
        if bits < MIN_RSA_BITS:
            raise ValueError(f"RSA keys need at least {MIN_RSA_BITS} bits (RFC 8301 §3.2)")
        if bits > MAX_RSA_BITS:
            raise ValueError(f"RSA keys of more than {MAX_RSA_BITS} bits are not supported")
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    else:
        raise ValueError(f"unknown key type {kind!r} (known: ed25519, rsa)")
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_private_key(pem: bytes | str) -> PrivateKey:
    """An RSA or Ed25519 private key from PEM (PKCS#8 or PKCS#1); ValueError otherwise."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise ValueError("private key is encrypted; give an unencrypted key") from None
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError("not a PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        raise ValueError(f"unsupported key type {type(key).__name__} (use RSA or Ed25519)")
    return key


def load_public_key(pem: bytes | str) -> PublicKey:
    """An RSA or Ed25519 public key from PEM; ValueError otherwise."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError("not a PEM public key") from None
    if not isinstance(key, rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise ValueError(f"unsupported key type {type(key).__name__} (use RSA or Ed25519)")
    return key


def dns_record(key: PrivateKey | PublicKey) -> str:
    """The TXT record value publishing ``key`` (RFC 6376 §3.6.1, RFC 8463 §4)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    public = key.public_key() if isinstance(
        key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) else key
    if isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
    if isinstance(public, rsa.RSAPublicKey):
        der = public.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
        return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"
    raise TypeError(f"unsupported key type {type(key).__name__}")
