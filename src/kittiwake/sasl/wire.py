"""Base64 framing of SASL data shared by SMTP AUTH (RFC 4954 §4) and IMAP AUTHENTICATE.

Both protocols carry SASL data as base64 lines, use "*" to cancel an exchange
and "=" for an empty initial response (RFC 4954 §4, RFC 4959 §3). These helpers
keep the two drivers identical; malformed base64 is a syntax error (SMTP 501,
IMAP BAD), distinct from any mechanism Failure.
"""

from __future__ import annotations

import base64
import binascii
import enum

__all__ = ["CANCEL", "Cancel", "decode_initial_response", "decode_response", "encode_challenge"]


class Cancel(enum.Enum):
    """The client sent "*": abort the exchange (SMTP 501 5.0.0, IMAP BAD)."""

    CANCEL = "*"


CANCEL = Cancel.CANCEL


def _strict_b64(text: bytes) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("invalid base64 in SASL response") from exc


def decode_initial_response(argument: bytes | str) -> bytes:
    """The initial response argument of ``AUTH MECH <ir>``: "=" is empty data.

    Raises ``ValueError`` for bad base64 (the driver answers 501 / BAD).
    """
    raw = argument.encode("ascii", "replace") if isinstance(argument, str) else argument
    raw = raw.strip()
    if raw == b"=":
        return b""
    if not raw:
        raise ValueError("empty initial response argument (use '=')")
    return _strict_b64(raw)


def decode_response(line: bytes | str) -> bytes | Cancel:
    """One client response line (without CRLF): base64 data, or :data:`CANCEL` for "*".

    An empty line is empty data. Raises ``ValueError`` for bad base64.
    """
    raw = line.encode("ascii", "replace") if isinstance(line, str) else line
    raw = raw.strip()
    if raw == b"*":
        return CANCEL
    return _strict_b64(raw)


def encode_challenge(data: bytes) -> bytes:
    """Base64 of a challenge for ``334 <data>`` / ``+ <data>`` (empty data gives b"")."""
    return base64.b64encode(data)
