"""kittiwake.certinfo against the cryptography package as the oracle.

The server reads its certificates' names, key type and expiry with its own DER
reader; each field must equal what ``cryptography`` reads, for generated
certificates of every shape the server meets (SAN or CN only, DNS and IP names,
RSA/ECDSA/Ed25519 keys, UTCTime and GeneralizedTime, non-ASCII names) and for
every real CA certificate of the system store; bad input raises
CertificateError and nothing else.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kittiwake import certinfo
from kittiwake.certinfo import CertificateError, CertificateInfo

EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ED_KEY = ed25519.Ed25519PrivateKey.generate()
KEYS = {"ecdsa": EC_KEY, "rsa": RSA_KEY, "ed25519": ED_KEY}


def make_cert(cn: str | None, dns: list[str], ips: list[str], key_type: str = "ecdsa",
              not_after: dt.datetime | None = None, san: bool = True) -> x509.Certificate:
    key = KEYS[key_type]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])
    issuer = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test CA")])
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start)
               .not_valid_after(not_after or start + dt.timedelta(days=90))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
    if san:
        names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns]
        names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        names.append(x509.RFC822Name("postmaster@example.org"))  # ignored by both
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    algorithm = None if key_type == "ed25519" else hashes.SHA256()
    return builder.sign(key, algorithm)


def oracle(cert: x509.Certificate, with_ips: bool) -> list[str]:
    """The names as the server read them with cryptography before."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [n.lower() for n in san.get_values_for_type(x509.DNSName)]
        if with_ips:
            names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
        return names
    except x509.ExtensionNotFound:
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return [str(cn[0].value).lower()] if cn else []


def read(cert: x509.Certificate) -> CertificateInfo:
    return certinfo.read_pem(cert.public_bytes(serialization.Encoding.PEM))


def test_typical_server_certificate() -> None:
    cert = make_cert("mail.example.org", ["mail.example.org", "MTA-STS.example.org"],
                     ["192.0.2.1", "2001:db8::25"])
    info = read(cert)
    assert info.host_names() == ["mail.example.org", "mta-sts.example.org"]
    assert info.host_names(with_ips=True) == ["mail.example.org", "mta-sts.example.org",
                                              "192.0.2.1", "2001:db8::25"]
    assert info.key_type == "ecdsa"
    assert info.not_after == cert.not_valid_after_utc.timestamp()
    assert info.der == cert.public_bytes(serialization.Encoding.DER)


def test_first_common_name_counts() -> None:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "one.example"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "two.example")])
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(EC_KEY.public_key()).serial_number(1).not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=1)).sign(EC_KEY, hashes.SHA256()))
    assert read(cert).host_names() == oracle(cert, with_ips=False) == ["one.example"]


def test_common_name_when_there_is_no_alt_name_extension() -> None:
    info = read(make_cert("Mail.Example.ORG", [], [], key_type="rsa", san=False))
    assert info.host_names() == ["mail.example.org"] and info.key_type == "rsa"
    assert read(make_cert(None, [], [], san=False)).host_names() == []


def test_dates_after_2049_are_generalized_time() -> None:
    late = dt.datetime(2051, 6, 30, 23, 59, 59, tzinfo=dt.UTC)
    assert read(make_cert("a.example", ["a.example"], [], not_after=late)).not_after == \
        late.timestamp()


def test_leaf_of_a_chain_file_with_text_around_it() -> None:
    leaf = make_cert("leaf.example", ["leaf.example"], [])
    other = make_cert("ca.example", ["ca.example"], [])
    pem = (b"subject=leaf\n" + leaf.public_bytes(serialization.Encoding.PEM)
           + other.public_bytes(serialization.Encoding.PEM))
    assert certinfo.read_pem(pem).host_names() == ["leaf.example"]


label = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
hostname = st.builds(lambda parts: ".".join(parts), st.lists(label, min_size=1, max_size=4))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cn=st.one_of(st.none(), hostname, st.text(min_size=1, max_size=20).filter(
           lambda t: "\x00" not in t)),
       dns=st.lists(hostname, max_size=4), ips=st.lists(st.ip_addresses().map(str), max_size=3),
       key_type=st.sampled_from(sorted(KEYS)), san=st.booleans(),
       days=st.integers(1, 40000))
def test_equals_cryptography(cn: str | None, dns: list[str], ips: list[str], key_type: str,
                             san: bool, days: int) -> None:
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    cert = make_cert(cn, dns, ips, key_type, start + dt.timedelta(days=days), san)
    info = read(cert)
    assert info.host_names() == oracle(cert, with_ips=False)
    assert info.host_names(with_ips=True) == oracle(cert, with_ips=True)
    assert info.key_type == key_type
    assert info.not_after == cert.not_valid_after_utc.timestamp()


def system_certificates() -> list[Path]:
    return sorted(Path("/etc/ssl/certs").glob("*.pem"))


def test_every_system_ca_certificate_reads_as_cryptography_reads_it() -> None:
    """Real certificates from many CAs: RSA and EC keys, v1 and v3, every string type."""
    paths = system_certificates()
    assert len(paths) > 50, "the ca-certificates package is missing"
    for path in paths:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        info = certinfo.read_pem(path.read_bytes())
        assert info.not_after == cert.not_valid_after_utc.timestamp(), path
        assert info.host_names() == oracle(cert, with_ips=False), path
        kind = cert.public_key()
        expected = ("rsa" if isinstance(kind, rsa.RSAPublicKey) else
                    "ecdsa" if isinstance(kind, ec.EllipticCurvePublicKey) else "other")
        assert (info.key_type if info.key_type in ("rsa", "ecdsa") else "other") == expected


def test_not_a_certificate() -> None:
    der = make_cert("a.example", ["a.example"], []).public_bytes(serialization.Encoding.DER)
    with pytest.raises(CertificateError, match="no PEM CERTIFICATE"):
        certinfo.read_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(CertificateError, match="base64"):
        certinfo.read_pem(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n")
    with pytest.raises(CertificateError):
        certinfo.read_der(der[:-1])
    with pytest.raises(CertificateError):
        certinfo.read_der(der + b"\x00")


DER = make_cert("a.example", ["a.example", "b.example"], ["192.0.2.7"]).public_bytes(
    serialization.Encoding.DER)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_damaged_certificates_raise_certificate_error_only(data: st.DataObject) -> None:
    der = bytearray(DER)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(der) - 1))
        der[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(der)))
    try:
        info = certinfo.read_der(bytes(der[:cut]))
    except CertificateError:
        return
    assert isinstance(info.not_after, float)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_certificate_error_only(blob: bytes) -> None:
    try:
        certinfo.read_der(blob)
    except CertificateError:
        pass
