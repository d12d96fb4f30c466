"""Domain name checks and IDNA conversion for lookups.

RFC 1035 §2.3.4: labels are 1-63 octets, a name at most 255 octets on the
wire, which is 253 characters in text form without the trailing dot. Non-ASCII
labels are converted to A-labels with IDNA 2008 (RFC 5891 §4); labels with
underscores (``_dmarc``, ``_domainkey``, ``_mta-sts``) are allowed as they are.

:func:`mail_domain` is the one normaliser for the domain of a mail address
(SMTP paths, domains.conf, the CLI, the queue, DSNs): RFC 5321 §4.1.2
sub-domains (letters, digits, hyphens), U-labels and A-labels per IDNA 2008
(RFC 5890-5893), with the UTS #46 mapping for what people type. The line
between mapping and refusing, for every non-ASCII code point:

- UTS #46 *maps* it to something visible (upper case, full-width letters and
  digits, the ideographic and full-width full stops U+3002, U+FF0E, U+FF61
  becoming "."): the mapped form is used, so ``bob@kw．example`` is
  ``bob@kw.example``.
- UTS #46 would *drop* it (soft hyphen U+00AD, zero-width space U+200B, word
  joiner U+2060, variation selectors): refused. IDNA 2008 disallows all of
  them (RFC 5892 §2.2-2.3: unstable under NFKC_Casefold, default-ignorable),
  and a name that differs from another only by invisible characters is a
  look-alike, not a spelling.
- UTS #46 or IDNA 2008 *disallows* it, or a CONTEXTJ/CONTEXTO rule
  (RFC 5892 Appendix A: ZWNJ, ZWJ, middle dot, ...) or the Bidi rule
  (RFC 5893) fails: refused.

Address literals (``[192.0.2.1]``, RFC 5321 §4.1.3) are not domain names;
they are handled by the SMTP path parser and never normalised here.
"""

from __future__ import annotations

import functools
import ipaddress
import unicodedata
from typing import NamedTuple

import idna

from kittiwake.dns.types import InvalidName

MAX_LABEL = 63
MAX_NAME = 253

_LETDIG = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_LDH = _LETDIG | {"-"}


class DisallowedName(InvalidName):
    """A name IDNA 2008 refuses (RFC 5891 §5.4, RFC 5892): a disallowed or
    invisible code point, a joiner or other contextual character out of its
    context, a Bidi rule violation, or an A-label that does not decode."""


class MailDomain(NamedTuple):
    """A mail domain in both forms (RFC 5890 §2.3.2.1), lower case, no trailing dot."""

    ascii: str
    """A-labels: what DNS, non-SMTPUTF8 peers and every comparison use."""
    unicode: str
    """U-labels: what people read."""


def _char_name(c: str) -> str:
    return f"U+{ord(c):04X} ({unicodedata.name(c, 'unnamed')})"


def _refuse_unmappable(name: str) -> None:
    """Raise :class:`DisallowedName` for the first non-ASCII code point that
    UTS #46 drops or disallows (see the module docstring)."""
    for c in name:
        if c.isascii():
            continue
        try:
            mapped = idna.uts46_remap(c, std3_rules=False, transitional=False)
        except (idna.IDNAError, UnicodeError):
            raise DisallowedName(f"domain name {name!r}: character {_char_name(c)}"
                                 " is not allowed (IDNA 2008)") from None
        if mapped == "":
            raise DisallowedName(f"domain name {name!r}: invisible character {_char_name(c)}"
                                 " is not allowed (IDNA 2008)")


# Names already converted, by what was asked: one message's checks convert the same few
# names many times (SPF, DKIM, DMARC, the resolver's lookups), and the next message from
# that sender asks for them again. Bounded; a name that raises is not kept.
_CACHE_SIZE = 4096


def to_ascii(name: str) -> str:
    """Return ``name`` in lookup form: A-labels, no trailing dot.

    Raises :class:`InvalidName` with a readable reason for an empty label, a
    label over 63 octets, a name over 253 characters, or a label that IDNA 2008
    refuses.
    """
    if not isinstance(name, str):
        raise InvalidName(f"domain name must be text, not {type(name).__name__}")
    return _to_ascii(name)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _to_ascii(name: str) -> str:
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
            _refuse_unmappable(label)
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


def mail_domain(name: str) -> MailDomain:
    """The domain of a mail address, checked and in both forms.

    Accepts LDH names (RFC 5321 §4.1.2 sub-domain), A-labels (validated,
    RFC 5891 §5.4) and U-labels (RFC 5891 §4, after the UTS #46 mapping; see
    the module docstring for what is mapped and what refused), in any case,
    with or without one trailing dot. Raises :class:`DisallowedName` for what
    IDNA 2008 refuses, :class:`InvalidName` for anything else that is no
    domain name (spaces, ``_``, ``@``, an address literal, an all-numeric last
    label such as ``127.0.0.1``, empty or long labels).
    """
    if not isinstance(name, str):
        raise InvalidName(f"domain name must be text, not {type(name).__name__}")
    return _mail_domain(name)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _mail_domain(name: str) -> MailDomain:
    if name.startswith("["):
        raise InvalidName(f"{name!r} is an address literal (RFC 5321 §4.1.3), not a domain name")
    if len(name) > 4 * MAX_NAME:
        raise InvalidName(f"domain name is {len(name)} characters, at most {MAX_NAME} allowed")
    if name.isascii():
        text = name.lower()
    else:
        _refuse_unmappable(name)
        try:
            # UTS #46 §4 steps 1-2 (map, normalise to NFC); the full stops
            # U+3002, U+FF0E and U+FF61 become "." here (UTS #46 §2.3).
            text = idna.uts46_remap(name, std3_rules=False, transitional=False)
        except (idna.IDNAError, UnicodeError) as exc:
            raise DisallowedName(f"domain name {name!r} is not valid IDNA 2008 ({exc})") from None
    if text.endswith("."):
        text = text[:-1]
    if not text:
        raise InvalidName("empty domain name")
    ascii_labels: list[str] = []
    unicode_labels: list[str] = []
    for label in text.split("."):
        a, u = _mail_label(name, label)
        ascii_labels.append(a)
        unicode_labels.append(u)
    if ascii_labels[-1].isdigit():
        # RFC 3696 §2: a top-level domain is never all-numeric; "127.0.0.1"
        # is an IPv4 address without the brackets of an address literal.
        if len(ascii_labels) == 4:
            raise InvalidName(f"{name!r} is an IP address, not a domain name (as an"
                              f" address literal it is written [{text}])")
        raise InvalidName(f"domain name {name!r}: the last label {ascii_labels[-1]!r} is all"
                          " digits, which no top-level domain is")
    result = ".".join(ascii_labels)
    if len(result) > MAX_NAME:
        raise InvalidName(f"domain name is {len(result)} characters, at most {MAX_NAME} allowed")
    return MailDomain(result, ".".join(unicode_labels))


def _mail_label(name: str, label: str) -> tuple[str, str]:
    """(A-label, U-label) of one mapped, lower-case label of ``name``."""
    if label == "":
        raise InvalidName(f"domain name {name!r} has an empty label")
    bad = next((c for c in label if c.isascii() and c not in _LDH), None)
    if bad is not None:
        shown = repr(bad) if bad.isprintable() and bad != " " else f"U+{ord(bad):04X}"
        what = "a space" if bad == " " else f"character {shown}"
        raise InvalidName(f"domain name {name!r}: {what} is not allowed"
                          " (letters, digits, hyphens and dots only)")
    if label.isascii():
        if label[0] == "-" or label[-1] == "-":
            raise InvalidName(f"domain name {name!r}: label {label!r} starts or ends"
                              " with a hyphen")
        ascii_label = label
        unicode_label = label
        if label.startswith("xn--"):
            try:
                unicode_label = idna.ulabel(label)
            except (idna.IDNAError, UnicodeError) as exc:
                raise DisallowedName(f"domain name {name!r}: {label!r} is not a valid"
                                     f" A-label ({exc})") from None
    else:
        try:
            ascii_label = idna.alabel(label).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise DisallowedName(f"domain name {name!r}: label {label!r} is not valid"
                                 f" IDNA 2008 ({exc})") from None
        unicode_label = label
    if len(ascii_label) > MAX_LABEL:
        raise InvalidName(f"domain name {name!r}: label {label[:20]!r}... is"
                          f" {len(ascii_label)} octets, at most {MAX_LABEL} allowed")
    return ascii_label, unicode_label


def domain_key(name: str) -> str:
    """The comparison form of a domain (or address literal) from anywhere.

    A valid domain gives its :func:`mail_domain` A-label form; an address
    literal and anything invalid are only trimmed and lower-cased, so that an
    invalid name equals nothing but itself (``\u200bkw.example`` never
    becomes ``kw.example``).
    """
    text = name.strip()
    if not text or text.startswith("["):
        return text.lower()
    try:
        return mail_domain(text).ascii
    except InvalidName:
        return text.lower()


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


@functools.lru_cache(maxsize=_CACHE_SIZE)
def reverse_name(ip: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """The in-addr.arpa / ip6.arpa name for an address (RFC 1035 §3.5, RFC 3596 §2.5)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        raise InvalidName(f"{ip!r} is not an IP address") from None
    return address.reverse_pointer
