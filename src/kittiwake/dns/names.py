"""Domain name checks and IDNA conversion for lookups.

RFC 1035 §2.3.4: labels are 1-63 octets, a name at most 255 octets on the
wire, which is 253 characters in text form without the trailing dot. Non-ASCII
labels are converted to A-labels with IDNA 2008 (RFC 5891 §4); labels with
underscores (``_dmarc``, ``_domainkey``, ``_mta-sts``) are allowed as they are.
"""

from __future__ import annotations

import ipaddress

import idna

from kittiwake.dns.types import InvalidName

MAX_LABEL = 63
MAX_NAME = 253


def to_ascii(name: str) -> str:
    """Return ``name`` in lookup form: A-labels, no trailing dot.

    Raises :class:`InvalidName` with a readable reason for an empty label, a
    label over 63 octets, a name over 253 characters, or a label that IDNA 2008
    refuses.
    """
    if not isinstance(name, str):
        raise InvalidName(f"domain name must be text, not {type(name).__name__}")
    text = name.strip()
    if text.endswith("."):
        text = text[:-1]
    if not text:
        raise InvalidName("empty domain name")
    labels = text.split(".")
    out: list[str] = []
    for label in labels:
        if label == "":
            raise InvalidName(f"domain name {name!r} has an empty label")
        if label.isascii():
            ascii_label = label
        else:
            try:
                # RFC 5895 §2: map (lower-case, normalise) before IDNA 2008,
                # so "Bücher.example" works like "bücher.example".
                mapped = idna.uts46_remap(label, std3_rules=False, transitional=False)
                ascii_label = idna.alabel(mapped).decode("ascii")
            except (idna.IDNAError, UnicodeError) as exc:
                raise InvalidName(
                    f"domain name {name!r}: label {label!r} is not valid IDNA 2008 ({exc})"
                ) from None
        if len(ascii_label) > MAX_LABEL:
            raise InvalidName(
                f"domain name {name!r}: label {label[:20]!r}... is {len(ascii_label)} octets,"
                f" at most {MAX_LABEL} allowed"
            )
        out.append(ascii_label)
    result = ".".join(out)
    if len(result) > MAX_NAME:
        raise InvalidName(
            f"domain name is {len(result)} characters, at most {MAX_NAME} allowed"
        )
    return result


def to_unicode(name: str) -> str:
    """Return ``name`` with A-labels turned into U-labels where valid."""
    out = []
    for label in name.rstrip(".").split("."):
        if label.lower().startswith("xn--"):
            try:
                out.append(idna.ulabel(label))
                continue
            except (idna.IDNAError, UnicodeError):
                pass
        out.append(label)
    return ".".join(out)


def reverse_name(ip: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """The in-addr.arpa / ip6.arpa name for an address (RFC 1035 §3.5, RFC 3596 §2.5)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        raise InvalidName(f"{ip!r} is not an IP address") from None
    return address.reverse_pointer
