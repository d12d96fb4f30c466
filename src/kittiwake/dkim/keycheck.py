"""Why a DKIM private key file cannot sign (RFC 6376, RFC 8301 §3.2), and
``python -m kittiwake.dkim.keycheck PATH...``: the same for each path, as one JSON
list (null where the key can sign).

The configuration check of ``serve`` (:func:`kittiwake.config.load.load` with
``keys_apart``) runs the command, so that the crypto library the check needs is
loaded in a short-lived process and not in the server: its SMTP workers sign
submitted mail, and the server itself signs only the DMARC and TLS reports it
sends (and loads the library then).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kittiwake.dkim.keys import MIN_RSA_BITS, load_private_key


def dkim_key_problem(path: Path) -> str | None:
    """Why this file cannot sign DKIM signatures (RFC 6376, RFC 8301 §3.2), or None."""
    try:
        key = load_private_key(path.read_bytes())
    except OSError as exc:
        return f"cannot read: {exc.strerror}"
    except ValueError as exc:
        return f"{exc} (expected an RSA or Ed25519 private key in PEM, e.g. from" \
               " `kittiwake dkim gen ed25519`)"
    bits = getattr(key, "key_size", None)
    if bits is not None and bits < MIN_RSA_BITS:
        return f"RSA key of {bits} bits is too small to sign with (RFC 8301 §3.2: at least" \
               f" {MIN_RSA_BITS})"
    return None


def main(argv: list[str]) -> int:
    print(json.dumps([dkim_key_problem(Path(arg)) for arg in argv]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
