"""Modified UTF-7 mailbox names (RFC 3501 §5.1.3, kept by RFC 9051 §5.1.3 / §9).

Printable US-ASCII (0x20-0x7e) stands for itself except ``&``, written
``&-``. Any other run of characters is UTF-16 (surrogate pairs for the
astral planes), base64 with ``,`` instead of ``/`` and no padding, between
``&`` and ``-``.

:func:`decode` is strict: a name has exactly one spelling, so two names that
differ on the wire never decode to the same mailbox. It refuses, with the
reason, what RFC 3501 §5.1.3 rules out: non-printable or 8-bit octets,
unterminated shifts, printable ASCII encoded in base64 ("&AGE-" for "a"),
two adjacent shifts ("&AOQ-&AOQ-" instead of "&AOQA5A-"), padding bits that
are not zero, and unpaired UTF-16 surrogates.
"""

from __future__ import annotations

import base64
import binascii

__all__ = ["MUTF7Error", "decode", "encode"]


class MUTF7Error(ValueError):
    """A name that is not canonical modified UTF-7; the message says why."""


def _printable(c: str) -> bool:
    return "\x20" <= c <= "\x7e"


def encode(name: str) -> str:
    """``name`` in modified UTF-7 (RFC 3501 §5.1.3)."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            raw = "".join(run).encode("utf-16-be", "surrogatepass")
            b64 = base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",")
            out.append("&" + b64 + "-")
            run.clear()

    for c in name:
        if _printable(c):
            flush()
            out.append("&-" if c == "&" else c)
        else:
            run.append(c)
    flush()
    return "".join(out)


_B64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")


def decode(text: str | bytes) -> str:
    """Decode a modified UTF-7 name; :class:`MUTF7Error` if not canonical."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise MUTF7Error("8-bit octet in a modified UTF-7 name (RFC 3501 §5.1.3)") from None
    out: list[str] = []
    i = 0
    n = len(text)
    prev_shift_end = -1
    while i < n:
        c = text[i]
        if not _printable(c):
            raise MUTF7Error(f"character {c!r} must be base64-encoded (RFC 3501 §5.1.3)")
        if c != "&":
            out.append(c)
            i += 1
            continue
        end = text.find("-", i + 1)
        if end < 0:
            raise MUTF7Error("'&' without a closing '-' (RFC 3501 §5.1.3)")
        if end == i + 1:
            out.append("&")
            i = end + 1
            continue
        if prev_shift_end == i:
            raise MUTF7Error("two adjacent base64 runs; they must be one (RFC 3501 §5.1.3)")
        out.append(_decode_run(text[i + 1:end]))
        i = end + 1
        prev_shift_end = i
    return "".join(out)


def _decode_run(b64: str) -> str:
    bad = set(b64) - _B64
    if bad:
        raise MUTF7Error(f"invalid base64 character {sorted(bad)[0]!r} in a shifted run")
    if len(b64) % 4 == 1:
        raise MUTF7Error("truncated base64 run")
    padded = b64.replace(",", "/") + "=" * (-len(b64) % 4)
    try:
        raw = base64.b64decode(padded, validate=True)
    except binascii.Error as e:  # pragma: no cover - the checks above catch these
        raise MUTF7Error(f"invalid base64: {e}") from None
    # Canonical: the leftover bits of the last base64 digit are zero, and the
    # run holds whole UTF-16 code units.
    if len(raw) % 2:
        raise MUTF7Error("base64 run is not a whole number of UTF-16 units")
    if base64.b64encode(raw).decode("ascii").rstrip("=") != padded.rstrip("="):
        raise MUTF7Error("non-zero padding bits in a base64 run")
    units = [int.from_bytes(raw[k:k + 2], "big") for k in range(0, len(raw), 2)]
    chars: list[str] = []
    k = 0
    while k < len(units):
        u = units[k]
        if 0xD800 <= u <= 0xDBFF:
            if k + 1 >= len(units) or not 0xDC00 <= units[k + 1] <= 0xDFFF:
                raise MUTF7Error("unpaired UTF-16 surrogate in a base64 run")
            chars.append(chr(0x10000 + ((u - 0xD800) << 10) + (units[k + 1] - 0xDC00)))
            k += 2
            continue
        if 0xDC00 <= u <= 0xDFFF:
            raise MUTF7Error("unpaired UTF-16 surrogate in a base64 run")
        ch = chr(u)
        if _printable(ch):
            raise MUTF7Error(f"printable {ch!r} must not be base64-encoded (RFC 3501 §5.1.3)")
        chars.append(ch)
        k += 1
    return "".join(chars)
