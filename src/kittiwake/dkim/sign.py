"""Signing messages with DKIM (RFC 6376 §5) using rsa-sha256 or ed25519-sha256 (RFC 8463).

:func:`sign` returns the ``DKIM-Signature:`` header field to put at the top
of the message; :func:`sign_message` returns the message with it in place.
The algorithm follows from the key: RSA keys sign rsa-sha256 (never
rsa-sha1, RFC 8301 §3.1), Ed25519 keys sign ed25519-sha256.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from kittiwake.dkim.canon import (
    Canon,
    HeaderField,
    body_hash,
    canon_header,
    select_headers,
    split_message,
)
from kittiwake.dkim.keys import load_private_key, sign_data

if TYPE_CHECKING:
    from kittiwake.dkim.keys import PrivateKey

# RFC 5322 §2.1.1: lines SHOULD be no more than 78 characters.
LINE_WIDTH = 78

# §5.4.1: the fields a signer SHOULD sign, plus the usual MIME and identity ones.
DEFAULT_HEADERS: tuple[str, ...] = (
    "From", "Reply-To", "Subject", "Date", "To", "Cc", "Message-ID", "In-Reply-To",
    "References", "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
    "Content-ID", "Content-Description", "Resent-Date", "Resent-From", "Resent-Sender",
    "Resent-To", "Resent-Cc", "Resent-Message-ID", "List-Id", "List-Help", "List-Unsubscribe",
    "List-Unsubscribe-Post", "List-Subscribe", "List-Post", "List-Owner", "List-Archive",
    "Sender", "Autocrypt", "Feedback-ID",
)
# §5.4.2 / §8.15: fields listed once more than they occur ("over-signed"), so
# that nobody can add another instance without breaking the signature.
OVERSIGNED: frozenset[str] = frozenset(h.lower() for h in (
    "From", "Reply-To", "Subject", "Date", "To", "Cc", "Message-ID", "In-Reply-To",
    "References", "MIME-Version", "Content-Type", "Content-Transfer-Encoding", "Sender",
    "List-Unsubscribe", "List-Unsubscribe-Post",
))

_SELECTOR = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?)*")  # noqa: E501
_BAD_DOMAIN_CHARS = re.compile(r"[\s;@:=]")


def default_headers(fields: Sequence[HeaderField]) -> list[str]:
    """h= for a message: each present DEFAULT_HEADERS field once per instance,
    over-signed fields once more (so they are listed even when absent)."""
    counts: dict[str, int] = {}
    for f in fields:
        counts[f.lname] = counts.get(f.lname, 0) + 1
    names: list[str] = []
    for name in DEFAULT_HEADERS:
        n = counts.get(name.lower(), 0) + (1 if name.lower() in OVERSIGNED else 0)
        names.extend([name] * n)
    return names


def sign(message: bytes, domain: str, selector: str, private_key: PrivateKey | bytes | str, *,
         headers: Sequence[str] | None = None,
         canonicalization: tuple[str, str] = ("relaxed", "relaxed"),
         identity: str | None = None, expiration: int | None = None,
         now: float | None = None, body_length: int | None = None) -> bytes:
    """The ``DKIM-Signature: ...\\r\\n`` field signing ``message`` (§5).

    ``private_key`` is a key object or PEM. ``headers`` is the h= list (it
    must include From, §5.4); by default :func:`default_headers`.
    ``identity`` is the i= AUID, within ``domain``. ``expiration`` is how
    many seconds after ``now`` the signature expires (x=). ``body_length``
    sets l= to sign only the first octets of the canonical body; avoid it
    (§8.2). Raises ValueError for unusable arguments.
    """
    fields, body = split_message(message)
    try:
        body_canon = Canon(canonicalization[1])
    except (ValueError, IndexError):
        raise ValueError(f"unknown canonicalization {canonicalization!r} "
                         "(known: simple, relaxed)") from None
    if body_length is not None and body_length < 0:
        raise ValueError("body_length must not be negative")
    digest, _ = body_hash(body, body_canon, body_length)
    return sign_fields(fields, digest, domain, selector, private_key, headers=headers,
                       canonicalization=canonicalization, identity=identity,
                       expiration=expiration, now=now, body_length=body_length)


def sign_fields(fields: Sequence[HeaderField], body_digest: bytes, domain: str, selector: str,
                private_key: PrivateKey | bytes | str, *,
                headers: Sequence[str] | None = None,
                canonicalization: tuple[str, str] = ("relaxed", "relaxed"),
                identity: str | None = None, expiration: int | None = None,
                now: float | None = None, body_length: int | None = None) -> bytes:
    """:func:`sign` for a parsed header and a body hash computed as the body arrived
    (:class:`~kittiwake.dkim.bodyhash.BodyHasher` with the body canonicalization and
    ``body_length``)."""
    key = load_private_key(private_key) if isinstance(private_key, bytes | str) else private_key
    domain = domain.strip().rstrip(".").lower()
    if not domain or _BAD_DOMAIN_CHARS.search(domain):
        raise ValueError(f"invalid signing domain {domain!r}")
    if not _SELECTOR.fullmatch(selector):
        raise ValueError(f"invalid selector {selector!r}")
    try:
        header_canon, body_canon = Canon(canonicalization[0]), Canon(canonicalization[1])
    except ValueError:
        raise ValueError(f"unknown canonicalization {canonicalization!r} "
                         "(known: simple, relaxed)") from None
    if identity is not None:
        idomain = identity.rpartition("@")[2].lower()
        if "@" not in identity or _BAD_DOMAIN_CHARS.search(identity.replace("@", "", 1)) or (
                idomain != domain and not idomain.endswith("." + domain)):
            raise ValueError(f"identity {identity!r} is not an address within {domain}")
    if not any(f.lname == "from" for f in fields):
        raise ValueError("message has no From header field (RFC 6376 §5.4 requires signing it)")
    names = list(headers) if headers is not None else default_headers(fields)
    if "from" not in (n.lower() for n in names):
        raise ValueError("the signed header fields must include From (RFC 6376 §5.4)")
    for name in names:
        if not name or not name.isascii() or not name.isprintable() or ":" in name or " " in name:
            raise ValueError(f"invalid header field name {name!r}")
    if body_length is not None and body_length < 0:
        raise ValueError("body_length must not be negative")
    if expiration is not None and expiration <= 0:
        raise ValueError("expiration must be a positive number of seconds")

    from cryptography.hazmat.primitives.asymmetric import ed25519  # with the key, not before

    timestamp = int(time.time() if now is None else now)
    digest = body_digest
    algorithm = "ed25519-sha256" if isinstance(key, ed25519.Ed25519PrivateKey) else "rsa-sha256"
    tags = ["v=1;", f"a={algorithm};", f"c={header_canon}/{body_canon};", f"d={domain};",
            f"s={selector};"]
    if identity is not None:
        tags.append(f"i={identity};")
    if body_length is not None:
        tags.append(f"l={body_length};")
    tags.append(f"t={timestamp};")
    if expiration is not None:
        tags.append(f"x={timestamp + int(expiration)};")
    folder = _Folder("DKIM-Signature:")
    for tag in tags:
        folder.add_word(tag)
    folder.add_list("h=", names, ":", ";")
    folder.add_word(f"bh={base64.b64encode(digest).decode()};")
    folder.add_word("b=")
    unsigned = folder.text()

    # §3.7 / §5.5: hash the selected fields, then this field with b= empty and no CRLF.
    parts = [canon_header(f, header_canon) for f in select_headers(fields, names)]
    parts.append(canon_header(unsigned.encode() + b"\r\n", header_canon)[:-2])
    _, signature = sign_data(key, b"".join(parts))
    folder.add_chunks(base64.b64encode(signature).decode())
    return folder.text().encode() + b"\r\n"


def sign_message(message: bytes, domain: str, selector: str,
                 private_key: PrivateKey | bytes | str, *,
                 headers: Sequence[str] | None = None,
                 canonicalization: tuple[str, str] = ("relaxed", "relaxed"),
                 identity: str | None = None, expiration: int | None = None,
                 now: float | None = None, body_length: int | None = None) -> bytes:
    """``message`` with a DKIM-Signature field prepended (arguments as for :func:`sign`).

    A message with bare LF line ends gets the field with LF line ends too.
    """
    field = sign(message, domain, selector, private_key, headers=headers,
                 canonicalization=canonicalization, identity=identity,
                 expiration=expiration, now=now, body_length=body_length)
    if b"\n" in message and b"\r\n" not in message:
        field = field.replace(b"\r\n", b"\n")
    return field + message


class _Folder:
    """Builds a header field folded at LINE_WIDTH (RFC 5322 §2.2.3)."""

    def __init__(self, start: str) -> None:
        self.lines = [start]

    def _fits(self, word: str) -> bool:
        return len(self.lines[-1]) + len(word) <= LINE_WIDTH

    def add_word(self, word: str, space: bool = True) -> None:
        piece = (" " if space else "") + word
        if not self._fits(piece) and self.lines[-1].strip():
            self.lines.append(" " + word)
        else:
            self.lines[-1] += piece

    def add_list(self, prefix: str, items: Sequence[str], sep: str, end: str) -> None:
        """A list tag that may break after a separator (FWS is allowed there)."""
        words = [item + sep for item in items[:-1]] + [items[-1] + end]
        self.add_word(prefix + words[0])
        for word in words[1:]:
            self.add_word(word, space=False)

    def add_chunks(self, value: str) -> None:
        """A base64 value, split across lines (FWS may appear anywhere in it)."""
        while value:
            room = LINE_WIDTH - len(self.lines[-1])
            if room <= 0:
                self.lines.append(" ")
                continue
            self.lines[-1] += value[:room]
            value = value[room:]

    def text(self) -> str:
        return "\r\n".join(self.lines)
