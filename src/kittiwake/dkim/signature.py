"""The DKIM-Signature header field: its tags (RFC 6376 §3.5) and their checks (§6.1.1).

:func:`parse_signature` turns the field into a :class:`Signature` or raises
:class:`SignatureError`, whose message is the reason a verifier reports as
``permerror``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from kittiwake.dkim.canon import Canon, HeaderField
from kittiwake.dkim.keys import Algorithm
from kittiwake.dkim.tags import (
    FWS_CHARS,
    Tag,
    TagListError,
    decode_base64,
    parse_tag_list,
    split_colon_list,
    strip_fws,
)

HEADER_NAME = "DKIM-Signature"
# §3.5: required tags of a DKIM-Signature.
REQUIRED_TAGS = ("v", "a", "b", "bh", "d", "h", "s")
_DIGITS = re.compile(r"[0-9]+")
_FIELD_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")  # RFC 5322 §3.6.8 ftext
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


class SignatureError(ValueError):
    """The DKIM-Signature is unusable (a PERMFAIL of RFC 6376 §6.1.1)."""


@dataclass(frozen=True)
class Signature:
    """A parsed DKIM-Signature (RFC 6376 §3.5)."""

    algorithm: Algorithm
    signature: bytes  # b=
    body_hash: bytes  # bh=
    header_canon: Canon
    body_canon: Canon
    domain: str  # d=, lowercase
    selector: str  # s=
    headers: tuple[str, ...]  # h=, as written
    identity: str  # i=, defaults to "@" + d=
    length: int | None  # l=
    timestamp: int | None  # t=
    expiration: int | None  # x=
    b_text: str  # b= without white space, for header.b (RFC 6008)
    tags: dict[str, Tag]

    @property
    def identity_domain(self) -> str:
        return self.identity.rpartition("@")[2].rstrip(".").lower()


@dataclass(frozen=True)
class Partial:
    """What could be read from a broken signature, for the result."""

    domain: str = ""
    selector: str = ""
    algorithm: str = ""
    identity: str = ""
    b_text: str = ""


def field_text(field: HeaderField) -> str:
    """The field's value as text; latin-1 keeps every byte at its offset."""
    return field.value.decode("latin-1")


def partial_info(field: HeaderField) -> Partial:
    """Best-effort d=, s=, a=, i=, b= of a signature that did not parse."""
    found: dict[str, str] = {}
    for spec in field_text(field).split(";"):
        name, eq, value = spec.partition("=")
        name = name.strip(FWS_CHARS)
        if eq and name in ("d", "s", "a", "i", "b") and name not in found:
            found[name] = strip_fws(value)[:255]
    return Partial(found.get("d", "").lower(), found.get("s", ""), found.get("a", ""),
                   found.get("i", ""), found.get("b", ""))


def _domain(value: str, what: str) -> str:
    """A lowercase domain name from field text (latin-1 decoded bytes); U-labels
    in UTF-8 are allowed (RFC 8616 §4)."""
    try:
        name = value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise SignatureError(f"invalid {what} (not UTF-8)") from None
    name = name.strip(FWS_CHARS).rstrip(".").lower()
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_valid_label(label) for label in labels):
        raise SignatureError(f"invalid {what} {name[:64]!r}")
    return name


def _valid_label(label: str) -> bool:
    if label.isascii():
        return _LABEL.fullmatch(label) is not None
    return 0 < len(label) <= 63 and label.isprintable() and not any(
        c in label for c in " @:;/\\")


def _int(tags: dict[str, Tag], name: str, max_digits: int) -> int | None:
    if name not in tags:
        return None
    value = tags[name].value
    if not _DIGITS.fullmatch(value) or len(value) > max_digits:
        raise SignatureError(f"invalid {name}= value {value[:32]!r}")
    return int(value)


@functools.lru_cache(maxsize=256)  # a message's signatures are parsed by each step
def parse_signature(field: HeaderField) -> Signature:
    """Parse and check the tags of one DKIM-Signature field (§3.5, §6.1.1); the
    same field's (by its bytes) is parsed once (the MX path asks twice: for the
    body hashes while the body arrives, then to verify)."""
    return _parse_field(field.name, field.raw)


@functools.lru_cache(maxsize=256)
def _parse_field(name: str, raw: bytes) -> Signature:
    return _parse_signature(HeaderField(name, raw))


def _parse_signature(field: HeaderField) -> Signature:
    """Parse and check the tags of one DKIM-Signature field (§3.5, §6.1.1).

    Checks done here need nothing but the field: version, required tags,
    algorithm, canonicalization, q=, that i= is within d=, that h= names
    From, and that x= is later than t=. Time checks need a clock and are
    done by the verifier.
    """
    try:
        tags = parse_tag_list(field_text(field))
    except TagListError as exc:
        raise SignatureError(f"syntax error: {exc}") from None
    missing = [t for t in REQUIRED_TAGS if t not in tags]
    if missing:
        raise SignatureError(f"missing required tag {', '.join(t + '=' for t in missing)}")
    if tags["v"].value != "1":
        raise SignatureError(f"incompatible version v={tags['v'].value[:16]}")
    try:
        algorithm = Algorithm(tags["a"].value.lower())
    except ValueError:
        raise SignatureError(f"unsupported algorithm a={tags['a'].value[:32]}") from None
    header_canon, body_canon = Canon.SIMPLE, Canon.SIMPLE
    if "c" in tags:
        # §3.5 c=: "header/body"; a lone algorithm is the header's, body is simple.
        head, _, body = tags["c"].value.lower().partition("/")
        try:
            header_canon = Canon(head)
            if body:
                body_canon = Canon(body)
        except ValueError:
            raise SignatureError(f"unknown canonicalization c={tags['c'].value[:32]}") from None
    if "q" in tags:
        methods = [m.lower() for m in split_colon_list(tags["q"].value)]
        # §3.5 q=: "dns/txt" is the one method defined (options after "/" allowed).
        if "dns/txt" not in methods and "dns" not in methods:
            raise SignatureError(f"unsupported query method q={tags['q'].value[:32]}")
    domain = _domain(tags["d"].value, "d= domain")
    selector = tags["s"].value.strip(FWS_CHARS)
    if not selector or not all(_LABEL.fullmatch(lab) for lab in selector.split(".")):
        raise SignatureError(f"invalid selector s={selector[:64]!r}")
    headers = tuple(split_colon_list(tags["h"].value))
    if not headers or any(not _FIELD_NAME.fullmatch(h) for h in headers):
        raise SignatureError("h= is empty or names an invalid header field")
    # §5.4 / §6.1.1: "the From header field MUST be signed".
    if "from" not in (h.lower() for h in headers):
        raise SignatureError("From header field not signed (h= lacks from)")
    identity = "@" + domain
    if "i" in tags:
        raw = tags["i"].value.strip(FWS_CHARS)
        _local, at, raw_domain = raw.rpartition("@")
        if not at:
            raise SignatureError(f"invalid i= {raw[:64]!r}")
        idomain = _domain(raw_domain, "i= domain")
        # Field text is latin-1 decoded (byte offsets); i= may be UTF-8 (RFC 8616 §4).
        identity = raw.encode("latin-1").decode("utf-8", "replace")
        # §6.1.1: i= domain must be d= or a subdomain of it, else PERMFAIL.
        if idomain != domain and not idomain.endswith("." + domain):
            raise SignatureError(f"i= domain {idomain} is not within d={domain}")
    try:
        signature = decode_base64(tags["b"].value, "b=")
        body_hash = decode_base64(tags["bh"].value, "bh=")
    except TagListError as exc:
        raise SignatureError(str(exc)) from None
    if not signature:
        raise SignatureError("b= is empty")
    if len(body_hash) != (20 if algorithm is Algorithm.RSA_SHA1 else 32):
        raise SignatureError(f"bh= is not a {algorithm.hash_name} hash")
    length = _int(tags, "l", 76)
    timestamp = _int(tags, "t", 12)
    expiration = _int(tags, "x", 12)
    # §3.5 x=: "the value of the "x=" tag MUST be greater than the value of the "t=" tag".
    if timestamp is not None and expiration is not None and expiration <= timestamp:
        raise SignatureError("x= expiration is not after t= timestamp")
    return Signature(algorithm, signature, body_hash, header_canon, body_canon, domain,
                     selector, headers, identity, length, timestamp, expiration,
                     strip_fws(tags["b"].value), tags)


def blank_b(field: HeaderField, tags: dict[str, Tag]) -> bytes:
    """The field with the b= value deleted, without its final CRLF (§3.7).

    "The value of the b= tag (including all surrounding whitespace) is
    deleted (i.e., treated as the empty string)."
    """
    raw = field.raw
    colon = raw.find(b":")
    start, end = tags["b"].span
    value = raw[colon + 1:-2]
    return raw[:colon + 1] + value[:start] + value[end:]
