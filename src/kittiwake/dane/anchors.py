"""DANE-TA(2) (RFC 7672 §3.1.2): chain the server certificate to a trust anchor.

The anchor is a certificate of the presented chain that a TLSA record matches,
or the public key of a ``2 x 0`` record. The server certificate must chain to
it by signatures, be within its validity dates (the anchor's own dates are not
checked), and carry one of the reference identifiers as a DNS name (§3.2).
Called by :func:`kittiwake.dane.verify.verify`, which handles DANE-EE itself.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509.oid import NameOID

from kittiwake.dane.records import MatchingType, Selector, Usage, describe, matches
from kittiwake.dane.verify import Verification, name_matches
from kittiwake.dns import TLSA, InvalidName, to_ascii

MAX_CHAIN_DEPTH = 8  # certificates between the server certificate and its anchor
MAX_CHAIN_CERTS = 16  # certificates of the presented chain considered at all


def _load(der: bytes) -> x509.Certificate | None:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        return None


def verify_ta(records: list[TLSA], chain: list[bytes], hostnames: Sequence[str],
               when: datetime.datetime, problems: list[str]) -> Verification | None:
    """DANE-TA(2) (RFC 7672 §3.1.2): find an anchor, chain the leaf to it, check it."""
    leaf = _load(chain[0])
    if leaf is None:
        problems.append("the server certificate is not a valid X.509 certificate")
        return None
    # A server sends a handful of certificates; more is noise or an attempt to
    # make path building expensive.
    pool = [(der, cert) for der in chain[1:MAX_CHAIN_CERTS] if (cert := _load(der)) is not None]
    everything = [(chain[0], leaf), *pool]
    for record in records:
        in_chain = [der for der, _cert in everything if matches(record, der)]
        anchor_key = _anchor_key(record)
        if not in_chain and anchor_key is None:
            continue
        path = _build_path(chain[0], leaf, pool, set(in_chain), anchor_key)
        if path is None:
            anchor = "a certificate the server sent" if in_chain else "the key in the record"
            problems.append(f"DANE-TA record {describe(record)} matches {anchor}, but the server"
                            " certificate does not chain to it")
            continue
        trouble = _check_path(path, set(in_chain), when)
        if trouble:
            problems.append(f"DANE-TA record {describe(record)}: {trouble}")
            continue
        name = _match_names(leaf, hostnames)
        if name is None:
            problems.append(f"DANE-TA record {describe(record)} matched, but the server"
                            f" certificate names ({', '.join(_names(leaf)) or 'none'}) match"
                            f" none of {', '.join(hostnames) or 'no names'} (RFC 7672 §3.2.2)")
            continue
        return Verification(record, Usage.DANE_TA,
                            f"server certificate for {name} chains to {describe(record)}", name)
    return None


def _anchor_key(record: TLSA) -> Any:
    """For ``2 0 0`` and ``2 1 0`` records, the anchor's public key from the record itself.

    RFC 7671 §5.2.3: with a full trust anchor key (or certificate) in DNS, the
    server need not send the anchor.
    """
    if record.mtype != MatchingType.FULL:
        return None
    try:
        if record.selector == Selector.SPKI:
            return serialization.load_der_public_key(record.data)
        return x509.load_der_x509_certificate(record.data).public_key()
    except (ValueError, UnsupportedAlgorithm):
        return None


def _signed_by(cert: x509.Certificate, key: Any) -> bool:
    """Whether ``key`` made the signature on ``cert`` (RSA PKCS#1 v1.5/PSS, ECDSA, EdDSA)."""
    try:
        params = cert.signature_algorithm_parameters
        if isinstance(key, rsa.RSAPublicKey):
            if not isinstance(params, padding.PKCS1v15 | padding.PSS):
                return False
            key.verify(cert.signature, cert.tbs_certificate_bytes, params,
                       cert.signature_hash_algorithm)  # type: ignore[arg-type]
        elif isinstance(key, ec.EllipticCurvePublicKey):
            if not isinstance(params, ec.ECDSA):
                return False
            key.verify(cert.signature, cert.tbs_certificate_bytes, params)
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _build_path(leaf_der: bytes, leaf: x509.Certificate,
                pool: list[tuple[bytes, x509.Certificate]], anchors: set[bytes],
                anchor_key: Any) -> list[tuple[bytes, x509.Certificate]] | None:
    """Certificates from the leaf up to an anchor (inclusive when it was sent).

    The chain may come in any order (RFC 8446 §4.4.2); each step needs the
    issuer's name to equal the subject and its key to verify the signature.
    """
    dead_ends: set[bytes] = set()  # certificates from which no path leads to an anchor

    def walk(path: list[tuple[bytes, x509.Certificate]]) -> list[Any] | None:
        der, cert = path[-1]
        if der in anchors:
            return path
        if anchor_key is not None and _signed_by(cert, anchor_key):
            return path  # the anchor is the key from DNS, not a sent certificate
        if len(path) > MAX_CHAIN_DEPTH or der in dead_ends:
            return None
        used = {d for d, _c in path}
        for cand_der, cand in pool:
            if cand_der in used or cand.subject != cert.issuer:
                continue
            if _signed_by(cert, cand.public_key()):
                found = walk([*path, (cand_der, cand)])
                if found:
                    return found
        dead_ends.add(der)
        return None

    try:
        return walk([(leaf_der, leaf)])
    except (ValueError, UnsupportedAlgorithm):
        return None


def _check_path(path: list[tuple[bytes, x509.Certificate]], anchors: set[bytes],
                when: datetime.datetime) -> str | None:
    """Dates of every certificate below the anchor; issuers must be CAs (RFC 5280 §4.2.1.9)."""
    for index, (der, cert) in enumerate(path):
        is_anchor = der in anchors
        if not is_anchor or index == 0:
            # RFC 7672 §3.1.2: the anchor's own dates are not checked; the
            # server certificate's always are.
            if when < cert.not_valid_before_utc:
                return (f"certificate {_subject(cert)} is not valid before"
                        f" {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
            if when > cert.not_valid_after_utc:
                return (f"certificate {_subject(cert)} expired at"
                        f" {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
        if index > 0:
            try:
                constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
                is_ca = constraints.value.ca
            except x509.ExtensionNotFound:
                is_ca = False
            if not is_ca:
                return f"issuing certificate {_subject(cert)} is not a CA (basicConstraints)"
    return None


def _subject(cert: x509.Certificate) -> str:
    try:
        return f"'{cert.subject.rfc4514_string()}'"
    except ValueError:
        return "(unreadable subject)"


def _names(cert: x509.Certificate) -> list[str]:
    """DNS names of the certificate: SAN dNSName, else the subject CN (RFC 7672 §3.2.3)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = san.value.get_values_for_type(x509.DNSName)
        if names:
            return [n.lower().rstrip(".") for n in names]
    except x509.ExtensionNotFound:
        pass
    return [str(a.value).lower().rstrip(".")
            for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]


def _match_names(cert: x509.Certificate, hostnames: Sequence[str]) -> str | None:
    names = _names(cert)
    for host in hostnames:
        try:
            wanted = to_ascii(host).lower()
        except InvalidName:
            continue
        if any(name_matches(pattern, wanted) for pattern in names):
            return wanted
    return None
