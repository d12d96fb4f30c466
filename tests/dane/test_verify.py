"""DANE certificate verification (RFC 7672 §3) against generated certificate chains."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from hypothesis import given, settings
from hypothesis import strategies as st

from kittiwake.dane import (
    Usage,
    matches,
    record_for,
    spki_of,
    unusable_reason,
    usable_for_smtp,
    verify,
)
from kittiwake.dns import TLSA

from .certs import NOW, PKI, ec_key, make

COMBOS = [(s, m) for s in (0, 1) for m in (0, 1, 2)]
HOST = ["mx.example.org"]


def chain(pki: PKI, *names: str) -> list[bytes]:
    return [getattr(pki, n).der for n in names]


@pytest.mark.parametrize(("selector", "mtype"), COMBOS)
def test_dane_ee_every_selector_and_matching_type(pki: PKI, selector: int, mtype: int) -> None:
    record = record_for(pki.leaf.der, 3, selector, mtype)
    result = verify([record], chain(pki, "leaf", "inter"), HOST, NOW)
    assert result.ok and result.matched == record and result.usage is Usage.DANE_EE
    # The same record does not match another server's certificate.
    other = verify([record], chain(pki, "pss_leaf", "inter"), HOST, NOW)
    assert not other.ok
    assert "no TLSA record matched" in other.reason


@pytest.mark.parametrize(("selector", "mtype"), COMBOS)
def test_dane_ta_every_selector_and_matching_type(pki: PKI, selector: int, mtype: int) -> None:
    record = record_for(pki.root.der, 2, selector, mtype)
    result = verify([record], chain(pki, "leaf", "inter", "root"), HOST, NOW)
    assert result.ok, result.reason
    assert result.usage is Usage.DANE_TA and result.name == "mx.example.org"


def test_record_digests_match_hashlib(pki: PKI) -> None:
    digest = hashes.Hash(hashes.SHA512())
    digest.update(pki.leaf.spki)
    assert record_for(pki.leaf.der, 3, 1, 2).data == digest.finalize()
    assert record_for(pki.leaf.der, 3, 0, 0).data == pki.leaf.der
    assert record_for(pki.leaf.der).usage == 3 and record_for(pki.leaf.der).selector == 1


def test_spki_bytes_are_the_certificates_own(pki: PKI) -> None:
    for issued in (pki.root, pki.inter, pki.leaf, pki.self_signed):
        assert spki_of(issued.der) == issued.spki
    assert spki_of(pki.leaf.spki) == pki.leaf.spki  # a bare key is its own SPKI


def test_dane_ee_ignores_names_and_expiry(pki: PKI) -> None:
    record = record_for(pki.expired.der, 3, 1, 1)
    result = verify([record], [pki.expired.der], ["unrelated.example"], NOW)
    assert result.ok and result.usage is Usage.DANE_EE
    self_signed = record_for(pki.self_signed.der, 3, 0, 1)
    assert verify([self_signed], [pki.self_signed.der], ["mx.example.org"], NOW).ok


def test_dane_ee_raw_public_key(pki: PKI) -> None:
    """RFC 7250 raw public keys: the server sends just the SPKI."""
    record = record_for(pki.leaf.der, 3, 1, 1)
    assert verify([record], [pki.leaf.spki], [], NOW).ok
    assert not verify([record_for(pki.leaf.der, 3, 0, 1)], [pki.leaf.spki], [], NOW).ok


@pytest.mark.parametrize(("selector", "mtype"), COMBOS)
def test_dane_ee_matches_the_leaf_only(pki: PKI, selector: int, mtype: int) -> None:
    """RFC 7672 §3.1.1: a man-in-the-middle that appends the real server's (public)
    certificate to its own chain is refused; only the first certificate is the server's."""
    attacker = make("mx.example.org", ec_key(), None, ca=False, sans=("mx.example.org",))
    record = record_for(pki.leaf.der, 3, selector, mtype)
    for presented in ([attacker.der, pki.leaf.der],
                      [attacker.der, pki.inter.der, pki.leaf.der],
                      [attacker.der, pki.leaf.der, pki.leaf.der]):
        result = verify([record], presented, HOST, NOW)
        assert not result.ok, (len(presented), result.reason)
        assert result.matched is None and result.usage is None
        assert "no TLSA record matched the server's certificate" in result.reason
    # The same record with the real server's chain still matches.
    assert verify([record], [pki.leaf.der, attacker.der], HOST, NOW).ok


def test_dane_ta_checks_names(pki: PKI) -> None:
    record = record_for(pki.root.der, 2, 0, 1)
    full = chain(pki, "leaf", "inter", "root")
    result = verify([record], full, ["mx.other.example"], NOW)
    assert not result.ok and result.matched is None
    assert "mx.example.org" in result.reason and "mx.other.example" in result.reason
    # The second reference identifier may be the one that matches.
    assert verify([record], full, ["mx.other.example", "MX.Example.ORG."], NOW).ok


@pytest.mark.parametrize(("host", "ok"), [
    ("smtp.mail.example.net", True),
    ("mail.example.net", False),
    ("a.smtp.mail.example.net", False),
    ("smtp.mail.example.net.evil", False),
])
def test_dane_ta_wildcard_is_one_label(pki: PKI, host: str, ok: bool) -> None:
    record = record_for(pki.inter.der, 2, 1, 1)
    assert verify([record], chain(pki, "leaf", "inter"), [host], NOW).ok is ok


def test_dane_ta_common_name_without_san(pki: PKI) -> None:
    record = record_for(pki.inter.der, 2, 1, 1)
    assert verify([record], chain(pki, "cn_only", "inter"), HOST, NOW).ok
    assert not verify([record], chain(pki, "cn_only", "inter"), ["other.example"], NOW).ok


def test_dane_ta_checks_expiry(pki: PKI) -> None:
    record = record_for(pki.root.der, 2, 1, 1)
    result = verify([record], chain(pki, "expired", "inter", "root"), HOST, NOW)
    assert not result.ok
    assert "expired" in result.reason and "mx.example.org" in result.reason


def test_dane_ta_intermediate_as_anchor(pki: PKI) -> None:
    record = record_for(pki.inter.der, 2, 0, 2)
    result = verify([record], chain(pki, "leaf", "inter"), HOST, NOW)
    assert result.ok and result.matched == record


def test_dane_ta_anchor_key_in_dns_need_not_be_sent(pki: PKI) -> None:
    """RFC 7671 §5.2.3: with ``2 1 0`` the record holds the key itself."""
    record = record_for(pki.root.der, 2, 1, 0)
    assert verify([record], chain(pki, "leaf", "inter"), HOST, NOW).ok
    # A digest of a key that is not sent cannot anchor anything.
    digest_only = record_for(pki.root.der, 2, 1, 1)
    assert not verify([digest_only], chain(pki, "leaf", "inter"), HOST, NOW).ok


def test_dane_ta_chain_in_any_order(pki: PKI) -> None:
    record = record_for(pki.root.der, 2, 0, 1)
    assert verify([record], chain(pki, "leaf", "root", "inter"), HOST, NOW).ok


def test_dane_ta_rsa_pss_signature(pki: PKI) -> None:
    record = record_for(pki.inter.der, 2, 1, 1)
    assert verify([record], chain(pki, "pss_leaf", "inter"), HOST, NOW).ok


def test_dane_ta_missing_intermediate(pki: PKI) -> None:
    record = record_for(pki.root.der, 2, 0, 1)
    result = verify([record], chain(pki, "leaf", "root"), HOST, NOW)
    assert not result.ok and "does not chain" in result.reason


def test_dane_ta_forged_issuer_name(pki: PKI) -> None:
    record = record_for(pki.inter.der, 2, 0, 1)
    result = verify([record], chain(pki, "forged", "inter"), HOST, NOW)
    assert not result.ok and "does not chain" in result.reason


def test_dane_ta_issuer_must_be_ca(pki: PKI) -> None:
    record = record_for(pki.leaf.der, 2, 0, 1)
    result = verify([record], chain(pki, "under_leaf", "leaf"), HOST, NOW)
    assert not result.ok and "not a CA" in result.reason


def test_dane_ta_self_signed_leaf_as_anchor_still_checks_names(pki: PKI) -> None:
    record = record_for(pki.self_signed.der, 2, 1, 1)
    assert verify([record], [pki.self_signed.der], ["self.example.org"], NOW).ok
    assert not verify([record], [pki.self_signed.der], ["mx.example.org"], NOW).ok


def test_unusable_only_records_never_match(pki: PKI) -> None:
    records = [record_for(pki.leaf.der, 1, 1, 1), record_for(pki.root.der, 0, 0, 1)]
    assert not any(usable_for_smtp(r) for r in records)
    result = verify(records, chain(pki, "leaf", "inter", "root"), HOST, NOW)
    assert not result.ok and "no usable TLSA records" in result.reason


@pytest.mark.parametrize(("record", "why"), [
    (TLSA(0, 1, 1, bytes(32)), "PKIX-TA is not usable for SMTP"),
    (TLSA(1, 1, 1, bytes(32)), "PKIX-EE is not usable for SMTP"),
    (TLSA(4, 1, 1, bytes(32)), "unknown certificate usage 4"),
    (TLSA(3, 2, 1, bytes(32)), "unknown selector 2"),
    (TLSA(3, 1, 3, bytes(32)), "unknown matching type 3"),
    (TLSA(3, 1, 1, bytes(31)), "SHA2-256 data is 31 bytes, expected 32"),
    (TLSA(2, 0, 2, bytes(32)), "SHA2-512 data is 32 bytes, expected 64"),
])
def test_unusable_reasons(record: TLSA, why: str) -> None:
    assert why in (unusable_reason(record) or "")
    assert not usable_for_smtp(record)


def test_unusable_records_are_skipped_among_usable_ones(pki: PKI) -> None:
    good = record_for(pki.leaf.der, 3, 1, 1)
    result = verify([TLSA(1, 1, 1, good.data), TLSA(3, 9, 1, good.data), good],
                    chain(pki, "leaf"), HOST, NOW)
    assert result.matched == good


def test_no_match_reason_names_both_sides(pki: PKI) -> None:
    wanted = record_for(pki.pss_leaf.der, 3, 1, 1)
    have = record_for(pki.leaf.der, 3, 1, 1)
    result = verify([wanted], chain(pki, "leaf"), HOST, NOW)
    assert result.reason == (
        "no TLSA record matched the server's certificate: leaf SHA2-256 SPKI is"
        f" {have.data.hex()[:16]}..., records expect 3 1 1 {wanted.data.hex()[:16]}...")


def test_empty_chain(pki: PKI) -> None:
    result = verify([record_for(pki.leaf.der)], [], HOST, NOW)
    assert not result.ok and result.reason == "the server sent no certificate"


def test_to_json(pki: PKI) -> None:
    record = record_for(pki.root.der, 2, 1, 1)
    data = verify([record], chain(pki, "leaf", "inter", "root"), HOST, NOW).to_json()
    assert data["usage"] == "DANE-TA" and data["matched"] == str(record)
    assert data["name"] == "mx.example.org"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=3),
       st.lists(st.tuples(st.sampled_from([2, 3]), st.sampled_from([0, 1]),
                          st.sampled_from([0, 1, 2]), st.binary(max_size=80)),
                min_size=1, max_size=4))
def test_garbage_chain_never_raises(garbage: list[bytes],
                                    fields: list[tuple[int, int, int, bytes]]) -> None:
    records = [TLSA(u, s, m, d) for u, s, m, d in fields]
    result = verify(records, garbage, HOST, NOW)
    assert result.reason
    if result.ok:  # only an exact "3 0 0" copy of the bytes can match garbage
        assert result.matched is not None
        assert (result.matched.usage, result.matched.selector, result.matched.mtype) == (3, 0, 0)
        assert result.matched.data == garbage[0]


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_damaged_certificates_never_raise(pki: PKI, data: st.DataObject) -> None:
    """Flip bytes in a real chain: verify returns a result, it never raises."""
    chain_der = chain(pki, "leaf", "inter", "root")
    index = data.draw(st.integers(0, 2))
    der = bytearray(chain_der[index])
    for _ in range(data.draw(st.integers(1, 4))):
        der[data.draw(st.integers(0, len(der) - 1))] = data.draw(st.integers(0, 255))
    chain_der[index] = bytes(der)
    records = [record_for(pki.root.der, 2, 0, 1), record_for(pki.root.der, 2, 1, 0),
               record_for(pki.pss_leaf.der, 3, 1, 1)]
    result = verify(records, chain_der, HOST, NOW)
    assert isinstance(result.reason, str) and result.reason
    assert matches(records[2], chain_der[0]) is False
