"""TLSA record fields, their RFC 7218 acronyms, and which records SMTP may use.

RFC 6698 §2.1 defines the three fields (certificate usage, selector,
matching type); RFC 7218 gives them the acronyms used in messages here
(``DANE-EE SPKI SHA2-256``); RFC 7672 §3.1.3 says which of them an SMTP
client may use. :func:`record_for` computes the record that matches a
certificate, for ``kittiwake dane`` and for tests.
"""

from __future__ import annotations

import enum
import hashlib

from kittiwake.dane.der import DERError, spki_of
from kittiwake.dns import TLSA


class Usage(enum.IntEnum):
    """TLSA certificate usages (RFC 6698 §2.1.1, acronyms of RFC 7218 §2.1)."""

    PKIX_TA = 0
    PKIX_EE = 1
    DANE_TA = 2
    DANE_EE = 3

    @property
    def acronym(self) -> str:
        return self.name.replace("_", "-")


class Selector(enum.IntEnum):
    """TLSA selectors (RFC 6698 §2.1.2, RFC 7218 §2.2)."""

    CERT = 0
    SPKI = 1

    @property
    def acronym(self) -> str:
        return "Cert" if self is Selector.CERT else "SPKI"


class MatchingType(enum.IntEnum):
    """TLSA matching types (RFC 6698 §2.1.3, RFC 7218 §2.3)."""

    FULL = 0
    SHA2_256 = 1
    SHA2_512 = 2

    @property
    def acronym(self) -> str:
        return {0: "Full", 1: "SHA2-256", 2: "SHA2-512"}[self.value]


# RFC 6698 §2.1.3: the digest lengths; a record whose data has another length
# can never match, which RFC 7671 §4 lets us treat as unusable.
_DIGEST_SIZES = {MatchingType.SHA2_256: 32, MatchingType.SHA2_512: 64}


def tlsa_name(host: str, port: int = 25) -> str:
    """The TLSA owner name for ``host``: ``_25._tcp.host`` (RFC 6698 §3, RFC 7672 §2.2.3)."""
    return f"_{port}._tcp.{host.rstrip('.')}"


def describe(record: TLSA) -> str:
    """``3 1 1 ab12... (DANE-EE SPKI SHA2-256)``: a record as a person reads it."""
    names = []
    for value, enum_type in ((record.usage, Usage), (record.selector, Selector),
                             (record.mtype, MatchingType)):
        try:
            names.append(enum_type(value).acronym)
        except ValueError:
            names.append(f"unknown({value})")
    return (f"{record.usage} {record.selector} {record.mtype} {short_hex(record.data)}"
            f" ({' '.join(names)})")


def short_hex(data: bytes, chars: int = 16) -> str:
    """The start of ``data`` in hex, for messages; the whole value when short."""
    text = data.hex()
    return text if len(text) <= chars else text[:chars] + "..."


def unusable_reason(record: TLSA) -> str | None:
    """Why an SMTP client must not use ``record``, or None when it may.

    RFC 7672 §3.1.3: PKIX-TA(0) and PKIX-EE(1) are unusable for SMTP, as are
    unknown usages, selectors and matching types (RFC 6698 §4.1, RFC 7671 §4).
    """
    if record.usage in (Usage.PKIX_TA, Usage.PKIX_EE):
        return f"usage {Usage(record.usage).acronym} is not usable for SMTP (RFC 7672 §3.1.3)"
    if record.usage not in (Usage.DANE_TA, Usage.DANE_EE):
        return f"unknown certificate usage {record.usage}"
    if record.selector not in (Selector.CERT, Selector.SPKI):
        return f"unknown selector {record.selector}"
    if record.mtype not in (MatchingType.FULL, MatchingType.SHA2_256, MatchingType.SHA2_512):
        return f"unknown matching type {record.mtype}"
    size = _DIGEST_SIZES.get(MatchingType(record.mtype))
    if size is not None and len(record.data) != size:
        return (f"{MatchingType(record.mtype).acronym} data is {len(record.data)} bytes,"
                f" expected {size}")
    if not record.data:
        return "empty certificate association data"
    return None


def usable_for_smtp(record: TLSA) -> bool:
    """True for DANE-TA(2) and DANE-EE(3) records with known fields (RFC 7672 §3.1.3)."""
    return unusable_reason(record) is None


def association_data(selected: bytes, mtype: int) -> bytes:
    """Apply matching type ``mtype`` to the selected bytes (RFC 6698 §2.1.3)."""
    match mtype:
        case MatchingType.FULL:
            return selected
        case MatchingType.SHA2_256:
            return hashlib.sha256(selected).digest()
        case MatchingType.SHA2_512:
            return hashlib.sha512(selected).digest()
    raise ValueError(f"unknown TLSA matching type {mtype}")


def selected_bytes(der: bytes, selector: int) -> bytes:
    """The bytes a selector picks from a DER certificate (RFC 6698 §2.1.2).

    Selector 1 of a bare SubjectPublicKeyInfo (an RFC 7250 raw public key) is
    the key itself. Raises :class:`DERError` when SPKI cannot be found.
    """
    if selector == Selector.CERT:
        return der
    if selector == Selector.SPKI:
        return spki_of(der)
    raise ValueError(f"unknown TLSA selector {selector}")


def matches(record: TLSA, der: bytes) -> bool:
    """Whether ``record``'s selector and matching type pick ``record.data`` out of ``der``."""
    try:
        return association_data(selected_bytes(der, record.selector), record.mtype) == record.data
    except (DERError, ValueError):
        return False


def record_for(cert_der: bytes, usage: int = Usage.DANE_EE, selector: int = Selector.SPKI,
               mtype: int = MatchingType.SHA2_256) -> TLSA:
    """The TLSA record for a DER certificate (or bare SPKI with selector 1).

    ``record_for(der)`` is the ``3 1 1`` record RFC 7671 §10.1.2 recommends.
    Raises ValueError for unknown fields or bytes that are not DER.
    """
    try:
        data = association_data(selected_bytes(cert_der, selector), mtype)
    except DERError as exc:
        raise ValueError(f"not a DER certificate or public key: {exc}") from None
    return TLSA(int(usage), int(selector), int(mtype), data)
