"""Message splitting and the DKIM canonicalization algorithms (RFC 6376 §3.4, §3.7).

DKIM signs and verifies a message in its SMTP wire form, with CRLF line
ends. :func:`split_message` accepts files with bare LF line ends too (as a
command-line user has them) and works on the CRLF form of the message.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

CRLF = b"\r\n"
_BARE_LF = re.compile(rb"(?<!\r)\n")
# WSP runs that relaxed canonicalization changes (a single space stays as it is).
_WSP_RUN = re.compile(rb"\t[ \t]*| [ \t]+")
_TRAILING_WSP = re.compile(rb"[ \t]+(?=\r\n)")


class Canon(enum.StrEnum):
    """Canonicalization algorithms (RFC 6376 §3.4)."""

    SIMPLE = "simple"
    RELAXED = "relaxed"


@dataclass(frozen=True)
class HeaderField:
    """One header field as it appears in the message.

    ``raw`` is the whole field including continuation lines and the final
    CRLF; ``name`` is the field name without trailing white space (compare
    with :attr:`lname`); a line without a colon gets the name "".
    """

    name: str
    raw: bytes

    @property
    def lname(self) -> str:
        return self.name.lower()

    @property
    def value(self) -> bytes:
        """Everything after the first colon, without the final CRLF."""
        colon = self.raw.find(b":")
        return self.raw[colon + 1:-2] if colon >= 0 else b""


def to_crlf(message: bytes) -> bytes:
    """The message with every bare LF turned into CRLF (existing CRLFs are kept)."""
    if message.count(b"\n") == message.count(CRLF):
        return message  # no bare LF (the common case: SMTP's wire form)
    return _BARE_LF.sub(CRLF, message)


def split_message(message: bytes) -> tuple[list[HeaderField], bytes]:
    """Header fields (top to bottom) and body of the CRLF form of ``message``.

    The header ends at the first empty line (RFC 5322 §2.1); a message
    without one is all header with an empty body.
    """
    data = to_crlf(message)
    if data.startswith(CRLF):
        return [], data[2:]
    end = data.find(b"\r\n\r\n")
    if end < 0:
        head, body = data, b""
        if head and not head.endswith(CRLF):
            head += CRLF
    else:
        head, body = data[:end + 2], data[end + 4:]
    fields: list[HeaderField] = []
    current: list[bytes] = []
    for line in head.split(CRLF)[:-1]:
        if line[:1] in (b" ", b"\t") and current:
            current.append(line)  # RFC 5322 §2.2.3: folded continuation line
            continue
        if current:
            fields.append(_field(current))
        current = [line]
    if current:
        fields.append(_field(current))
    return fields, body


def _field(lines: list[bytes]) -> HeaderField:
    raw = CRLF.join(lines) + CRLF
    colon = raw.find(b":")
    name = raw[:colon].rstrip(b" \t").decode("latin-1") if colon >= 0 else ""
    if "\r" in name or "\n" in name:
        name = ""
    return HeaderField(name, raw)


def select_headers(fields: list[HeaderField], names: Sequence[str],
                   skip: int | None = None) -> list[HeaderField]:
    """The fields an h= list covers, in h= order (RFC 6376 §5.4.2).

    For a name listed n times the n last instances are taken, from the
    bottom up; a listed name with no instance left contributes nothing,
    which is how signers "over-sign" to forbid adding fields. ``skip`` is the
    index of the DKIM-Signature being verified, which is never selected.
    """
    # Instances per name, top to bottom, popped from the end (the bottom):
    # linear time however long h= and the header are.
    remaining: dict[str, list[int]] = {}
    for i, f in enumerate(fields):
        if i != skip:
            remaining.setdefault(f.lname, []).append(i)
    selected: list[HeaderField] = []
    for name in names:
        stack = remaining.get(name.lower())
        if stack:
            selected.append(fields[stack.pop()])
    return selected


def canon_header(field: HeaderField | bytes, canon: Canon) -> bytes:
    """One header field in canonical form, with its CRLF (RFC 6376 §3.4.1, §3.4.2)."""
    raw = field.raw if isinstance(field, HeaderField) else field
    if canon is Canon.SIMPLE:
        # §3.4.1: the field exactly as it is, folding and all.
        return raw
    colon = raw.find(b":")
    if colon < 0:
        name, value = raw.rstrip(CRLF), b""
    else:
        name, value = raw[:colon], raw[colon + 1:]
    # §3.4.2: lowercase the name; unfold; turn WSP runs into one SP; delete
    # WSP at the end of the value and around the colon.
    name = name.lower().rstrip(b" \t")
    value = value.replace(CRLF, b"")
    if b"\t" in value or b"  " in value:  # else no WSP run for _WSP_RUN to change
        value = _WSP_RUN.sub(b" ", value)
    value = value.strip(b" ")
    return name + b":" + value + CRLF


def canon_body(body: bytes, canon: Canon) -> bytes:
    """The body in canonical form (RFC 6376 §3.4.3, §3.4.4); ``body`` is CRLF form."""
    if canon is Canon.RELAXED:
        # §3.4.4: delete WSP at line ends, reduce WSP runs to one SP.
        if body and not body.endswith(CRLF):
            body += CRLF
        body = _TRAILING_WSP.sub(b"", body)
        body = _WSP_RUN.sub(b" ", body)
        body = _strip_trailing_crlfs(body)
        # §3.4.4 (errata 1384): an empty body stays empty under relaxed.
        return body + CRLF if body else b""
    # §3.4.3: drop empty lines at the end; an empty body becomes one CRLF.
    return _strip_trailing_crlfs(body) + CRLF


def _strip_trailing_crlfs(body: bytes) -> bytes:
    end = len(body)
    while end >= 2 and body[end - 2:end] == CRLF:
        end -= 2
    return body[:end]


def body_hash(body: bytes, canon: Canon, length: int | None = None) -> tuple[bytes, int]:
    """SHA-256 of the canonical body, cut at ``length`` octets when given (§3.5 l=, §3.7).

    Returns the digest and the full canonical body length, so callers can see
    whether ``l=`` left part of the body unsigned.
    """
    canonical = canon_body(body, canon)
    covered = canonical if length is None else canonical[:length]
    return hashlib.sha256(covered).digest(), len(canonical)
