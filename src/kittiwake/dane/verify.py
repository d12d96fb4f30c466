"""Verifying an SMTP server's certificate chain against TLSA records (RFC 7672 §3).

DANE-EE(3): the server certificate (or its public key) must match; no name
and no expiry checks (RFC 7672 §3.1.1). DANE-TA(2): a certificate in the
presented chain, or the public key in a ``2 x 0`` record, is the trust
anchor; the server certificate must chain to it by signatures, be within its
validity dates, and carry one of the reference identifiers as a DNS name
(RFC 7672 §3.1.2, §3.2). PKIX-TA(0) and PKIX-EE(1) are never used for SMTP
(RFC 7672 §3.1.3).

Path building is written here rather than done with
``cryptography.x509.verification``: DANE-TA anchors may be bare public keys,
the anchor's own dates are not checked, and the RFC 5280 web profile checks
that library applies (extension profiles, SAN required) are not DANE's. That
path, the only user of the crypto library here, is :mod:`.anchors`, loaded at
the first DANE-TA check: DANE-EE(3), the usual record, compares bytes only.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kittiwake.dane.der import DERError
from kittiwake.dane.records import (
    MatchingType,
    Selector,
    Usage,
    association_data,
    describe,
    matches,
    selected_bytes,
    short_hex,
    unusable_reason,
)
from kittiwake.dns import TLSA


@dataclass(frozen=True)
class Verification:
    """The outcome of :func:`verify`.

    ``matched`` is the TLSA record that authenticated the server (None when
    none did), ``usage`` its usage, ``name`` the reference identifier that
    matched for DANE-TA, and ``reason`` one line for logs, DSNs and TLSRPT.
    """

    matched: TLSA | None
    usage: Usage | None
    reason: str
    name: str | None = None

    @property
    def ok(self) -> bool:
        return self.matched is not None

    def __bool__(self) -> bool:
        return self.ok

    @property
    def tlsrpt_result_type(self) -> str | None:
        """RFC 8460 §4.3.1 result type of a failed check (None when it succeeded):
        no TLSA record matched the presented chain, a "validation-failure"."""
        return None if self.ok else "validation-failure"

    def to_json(self) -> dict[str, Any]:
        return {
            "matched": str(self.matched) if self.matched else None,
            "usage": self.usage.acronym if self.usage is not None else None,
            "name": self.name,
            "reason": self.reason,
        }


def verify(records: Sequence[TLSA], chain_der: Sequence[bytes], hostnames: Sequence[str],
           now: datetime.datetime | None = None) -> Verification:
    """Check the server's chain (leaf first, as sent in TLS) against ``records``.

    ``hostnames`` are the reference identifiers for DANE-TA name checks
    (:func:`kittiwake.dane.lookup.reference_identifiers`). Garbage in the
    chain never raises: it just does not match, and ``reason`` says why.
    """
    when = now or datetime.datetime.now(datetime.UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    usable = [r for r in records if unusable_reason(r) is None]
    if not usable:
        return Verification(None, None, "no usable TLSA records (only PKIX-TA/PKIX-EE or"
                                        " unknown parameters; RFC 7672 §3.1.3)")
    if not chain_der:
        return Verification(None, None, "the server sent no certificate")
    leaf = bytes(chain_der[0])
    # RFC 7672 §3.1.1: DANE-EE matches the server certificate alone.
    for record in usable:
        if record.usage == Usage.DANE_EE and matches(record, leaf):
            return Verification(record, Usage.DANE_EE,
                                f"server certificate matches {describe(record)}")
    ta_records = [r for r in usable if r.usage == Usage.DANE_TA]
    problems: list[str] = []
    if ta_records:
        from kittiwake.dane import anchors  # the crypto library, only for DANE-TA

        try:
            result = anchors.verify_ta(ta_records, [bytes(c) for c in chain_der], hostnames, when,
                                problems)
        except Exception as exc:  # network input must never raise (DESIGN.md 6)
            problems.append(f"could not check the certificate chain: {exc}")
            result = None
        if result is not None:
            return result
    if problems:
        return Verification(None, None, problems[0])
    return Verification(None, None, _no_match_reason(usable, leaf))


def _no_match_reason(records: list[TLSA], leaf: bytes) -> str:
    """``no TLSA record matched ...: leaf SHA2-256 SPKI is ab12..., records expect 3 1 1 cd..``"""
    first = records[0]
    try:
        have = association_data(selected_bytes(leaf, first.selector), first.mtype)
        what = (f"leaf {MatchingType(first.mtype).acronym} {Selector(first.selector).acronym}"
                f" is {short_hex(have)}")
    except (DERError, ValueError):
        what = f"the server certificate could not be parsed ({len(leaf)} bytes)"
    expect = ", ".join(f"{r.usage} {r.selector} {r.mtype} {short_hex(r.data)}" for r in records)
    return f"no TLSA record matched the server's certificate: {what}, records expect {expect}"


def name_matches(pattern: str, host: str) -> bool:
    """``pattern`` from a certificate covers ``host``; ``*.`` stands for one leftmost label."""
    if pattern.startswith("*."):
        suffix = pattern[2:]
        first, _, rest = host.partition(".")
        return bool(first) and bool(suffix) and rest == suffix
    return pattern == host
