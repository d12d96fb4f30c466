"""Channel binding data from real TLS sessions (in memory, no sockets) drives -PLUS."""

from __future__ import annotations

import datetime
import hashlib
import ssl

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID
from sasl_helpers import PASSWORD, USER, options

from kittiwake.sasl import (
    Challenge,
    Success,
    connection_channel_bindings,
    new_client,
    new_server,
    tls_server_end_point,
)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_pair(ca: trustme.CA, version: ssl.TLSVersion):
    """Handshake a client and a server SSLObject over memory BIOs."""
    cert = ca.issue_cert("mx.example")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(server_ctx)
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(client_ctx)
    for ctx in (server_ctx, client_ctx):
        ctx.minimum_version = ctx.maximum_version = version
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname="mx.example")
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(20):
        for key, obj in (("c", client), ("s", server)):
            if not done[key]:
                try:
                    obj.do_handshake()
                    done[key] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            break
    assert all(done.values())
    der = ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())
    return client, server, der


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_both_ends_get_the_same_bindings(ca: trustme.CA, version: ssl.TLSVersion) -> None:
    client, server, der = tls_pair(ca, version)
    client_cbs = connection_channel_bindings(client)
    server_cbs = connection_channel_bindings(server, server_certificate_der=der)
    assert client_cbs == server_cbs
    types = [cb.type for cb in client_cbs]
    if version == ssl.TLSVersion.TLSv1_2:
        assert types[:1] == ["tls-unique"]
    else:
        assert "tls-unique" not in types  # undefined for TLS 1.3 (RFC 8446 C.5)
    assert types[-1] == "tls-server-end-point"
    # RFC 5929 §4.1: SHA-256 for a SHA-256-signed certificate.
    assert client_cbs[-1].data == hashlib.sha256(der).digest()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_scram_plus_over_a_tls_session(ca: trustme.CA, version: ssl.TLSVersion) -> None:
    client_tls, server_tls, der = tls_pair(ca, version)
    server_cbs = connection_channel_bindings(server_tls, server_certificate_der=der)
    client_cb = connection_channel_bindings(client_tls)[0]
    server = new_server("SCRAM-SHA-256-PLUS", options(channel_bindings=server_cbs))
    client = new_client("SCRAM-SHA-256-PLUS", USER, PASSWORD, channel_binding=client_cb)
    step = server.start(client.initial_response())
    while isinstance(step, Challenge):
        step = server.step(client.respond(step.data))
    assert isinstance(step, Success) and step.channel_binding == client_cb.type


def test_other_sessions_binding_fails(ca: trustme.CA) -> None:
    # A MITM terminating TLS has its own session: tls-unique differs.
    client_tls, _, _ = tls_pair(ca, ssl.TLSVersion.TLSv1_2)
    _, server_tls, der = tls_pair(ca, ssl.TLSVersion.TLSv1_2)
    server_cbs = connection_channel_bindings(server_tls, server_certificate_der=der)
    client_cb = connection_channel_bindings(client_tls)[0]
    server = new_server("SCRAM-SHA-1-PLUS", options(channel_bindings=server_cbs))
    client = new_client("SCRAM-SHA-1-PLUS", USER, PASSWORD, channel_binding=client_cb)
    step = server.start(client.initial_response())
    assert isinstance(step, Challenge)
    result = server.step(client.respond(step.data))
    assert not isinstance(result, Success)
    assert result.reason == "channel-binding"


def _self_signed(sign_hash: hashes.HashAlgorithm | None, ed25519: bool = False) -> bytes:
    key = Ed25519PrivateKey.generate() if ed25519 else ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mx.example")])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, sign_hash)
    )
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize(
    ("sign_hash", "ed25519", "expected"),
    [
        (hashes.SHA256(), False, "sha256"),
        (hashes.SHA384(), False, "sha384"),
        (hashes.SHA512(), False, "sha512"),
        (None, True, "sha256"),  # no single signature hash
    ],
)
def test_tls_server_end_point_hash_choice(sign_hash, ed25519: bool, expected: str) -> None:
    der = _self_signed(sign_hash, ed25519)
    assert tls_server_end_point(der) == hashlib.new(expected, der).digest()


def _rsa_signed(sign_hash: hashes.HashAlgorithm, pss: bool = False) -> bytes:
    key = _RSA_KEY
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rsa.example")])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(1).not_valid_before(now)
               .not_valid_after(now + datetime.timedelta(days=1)))
    if pss:
        cert = builder.sign(key, sign_hash, rsa_padding=padding.PSS(
            mgf=padding.MGF1(sign_hash), salt_length=padding.PSS.DIGEST_LENGTH))
    else:
        cert = builder.sign(key, sign_hash)
    return cert.public_bytes(serialization.Encoding.DER)


_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize(("sign_hash", "pss", "expected"), [
    (hashes.SHA224(), False, "sha224"), (hashes.SHA256(), False, "sha256"),
    (hashes.SHA384(), False, "sha384"), (hashes.SHA512(), False, "sha512"),
    (hashes.SHA384(), True, "sha384"),  # RSASSA-PSS: the hash is in the parameters
    (hashes.SHA512(), True, "sha512"),
])
def test_tls_server_end_point_rsa_hashes_and_pss(sign_hash: hashes.HashAlgorithm, pss: bool,
                                                 expected: str) -> None:
    der = _rsa_signed(sign_hash, pss)
    assert tls_server_end_point(der) == hashlib.new(expected, der).digest()
