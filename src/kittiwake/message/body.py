"""Body decoding: Content-Transfer-Encoding (RFC 2045 §6) and charsets to text.

Both are tolerant of damaged mail: base64 with junk or bad padding still
yields what it can, unknown encodings come back as stored, and text falls
back from the declared charset to UTF-8 and then windows-1252/latin-1.
"""

from __future__ import annotations

import binascii
import re

from kittiwake.message.charset import decode_bytes
from kittiwake.message.part import Part
from kittiwake.message.rfc2047 import b64decode_tolerant

# Starting only at the beginning of a run keeps this linear on long blank runs.
_QP_TRAILING_WS = re.compile(rb"(?<![ \t])[ \t]++(?=\r?\n|\Z)")


def decode_transfer(body: bytes, encoding: str) -> bytes:
    """Undo a Content-Transfer-Encoding; 7bit/8bit/binary/unknown are returned as is."""
    enc = encoding.lower()
    if enc == "base64":  # RFC 2045 §6.8: characters outside the alphabet are ignored
        return b64decode_tolerant(body)
    if enc == "quoted-printable":
        # RFC 2045 §6.7 rule 3: trailing white space was added in transport; drop it.
        body = _QP_TRAILING_WS.sub(b"", body)
        try:
            return binascii.a2b_qp(body)
        except (binascii.Error, ValueError):
            return body
    return body


def decode_body(part: Part, data: bytes) -> bytes:
    """The body of ``part`` (inside ``data``) with its transfer encoding undone."""
    return decode_transfer(data[part.body_start : part.end], part.encoding)


def text_of(part: Part, data: bytes) -> str:
    """The body of ``part`` as text, decoded from its charset (never raises)."""
    return decode_bytes(decode_body(part, data), part.charset)
