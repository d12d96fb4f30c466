"""The tls-alpn-01 certificate (RFC 8737 §3), the CAA check (RFC 8659 §3), host keys."""

from __future__ import annotations

import hashlib
from pathlib import Path

import josepy as jose
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from kittiwake.acme.caa import CAAForbidden, allows, check_issuer, issuers_for, parent_names
from kittiwake.acme.keys import HostKeyError, KeyType, generated_host_keys, load_host_keys
from kittiwake.acme.tlsalpn import (
    ACME_IDENTIFIER_OID,
    challenge_certificate,
    key_authorization,
)
from kittiwake.dns.mock import MockResolver
from kittiwake.dns.types import CAA


def test_challenge_certificate_follows_rfc8737() -> None:
    pem, _key = challenge_certificate("mail.example.org", "tok.thumb")
    cert = x509.load_pem_x509_certificate(pem)
    assert cert.issuer == cert.subject  # self-signed
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["mail.example.org"]
    ext = cert.extensions.get_extension_for_oid(ACME_IDENTIFIER_OID)
    assert ext.critical
    # extnValue: DER OCTET STRING (tag 4, length 32) of SHA-256(key authorization)
    assert ext.value.value == b"\x04\x20" + hashlib.sha256(b"tok.thumb").digest()


def test_key_authorization_is_token_dot_thumbprint() -> None:
    # RFC 7638 §3.1 example thumbprint is for an RSA key; check the shape and the library's.
    from acme import challenges

    key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    chall = challenges.HTTP01(token=b"\x01" * 16)
    assert key_authorization(chall.encode("token"), key) == chall.key_authorization(key)


def test_caa_names_climb_to_the_top() -> None:
    assert parent_names("a.b.example.org.") == ["a.b.example.org", "b.example.org",
                                                "example.org", "org"]


def test_caa_rules() -> None:
    issue_le = CAA(0, "issue", "letsencrypt.org")
    assert allows((), ["letsencrypt.org"], None)
    assert allows((CAA(0, "iodef", "mailto:x@example.org"),), ["letsencrypt.org"], None)
    assert allows((issue_le,), ["letsencrypt.org"], None)
    assert not allows((CAA(0, "issue", "sectigo.com"),), ["letsencrypt.org"], None)
    assert not allows((CAA(0, "issue", ";"),), ["letsencrypt.org"], None)  # nobody
    assert not allows((issue_le, CAA(128, "tbs", "x")), ["letsencrypt.org"], None)
    bound = CAA(0, "issue", "letsencrypt.org; accounturi=https://ca/acct/1")
    assert allows((bound,), ["letsencrypt.org"], "https://ca/acct/1")
    assert not allows((bound,), ["letsencrypt.org"], "https://ca/acct/2")


async def test_caa_check_uses_the_closest_ancestor() -> None:
    resolver = MockResolver()
    resolver.add("CAA", "example.org", '0 issue "sectigo.com"')
    with pytest.raises(CAAForbidden, match=r"mail.example.org: CAA at example.org"):
        await check_issuer(resolver, ["mail.example.org", "mta-sts.example.org"],
                           ["letsencrypt.org"])
    resolver.add("CAA", "mail.example.org", '0 issue "letsencrypt.org"')
    resolver.add("CAA", "mta-sts.example.org", '0 issue "letsencrypt.org"')
    results = await check_issuer(resolver, ["mail.example.org", "mta-sts.example.org"],
                                 ["letsencrypt.org"])
    assert [r.relevant_owner for r in results] == ["mail.example.org", "mta-sts.example.org"]


def test_known_issuers() -> None:
    assert issuers_for("https://acme-v02.api.letsencrypt.org/directory") == ("letsencrypt.org",)
    assert issuers_for("https://ca.example/dir") == ()
    assert issuers_for("https://ca.example/dir", ("ca.example",)) == ("ca.example",)


def test_generated_host_keys_are_private_and_stable(tmp_path: Path) -> None:
    keys, created = generated_host_keys(tmp_path / "hostkeys")
    assert created and [k.key_type for k in keys] == [KeyType.ECDSA, KeyType.RSA]
    assert all(k.path.stat().st_mode & 0o777 == 0o600 for k in keys)
    again, created = generated_host_keys(tmp_path / "hostkeys")
    assert not created and [k.spki_der() for k in again] == [k.spki_der() for k in keys]


def test_host_key_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(HostKeyError, match=r"bad.pem: not an unencrypted PEM private key"):
        load_host_keys([bad])
    keys, _ = generated_host_keys(tmp_path / "k")
    with pytest.raises(HostKeyError, match="a second ecdsa key"):
        load_host_keys([keys[0].path, keys[0].path])


def test_ari_certificate_id_of_rfc9773_example() -> None:
    """RFC 9773 §4.1's example: AKI 69:88:5B:..:D4 and serial 0x87654321."""
    import datetime as dt

    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    from kittiwake.acme.client import ari_certificate_id

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    aki = bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4")
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(0x87654321)
            .not_valid_before(dt.datetime(2030, 1, 1)).not_valid_after(dt.datetime(2030, 2, 1))
            .add_extension(x509.AuthorityKeyIdentifier(aki, None, None), critical=False)
            .sign(key, hashes.SHA256()))
    from cryptography.hazmat.primitives import serialization

    pem = cert.public_bytes(serialization.Encoding.PEM)
    assert ari_certificate_id(pem) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
