"""``kittiwake smtp dial`` against kittiwake's own SMTP server, as an administrator uses it."""

from __future__ import annotations

import json
import socket

from kittiwake.cli.dial import pkix_check

from .conftest import Servers, invoke


async def test_starttls_and_certificate_shown(servers: Servers) -> None:
    result = await invoke(["smtp", "dial", "--ca-file", str(servers.ca_file),
                           f"localhost:{servers.tls_port}"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Greeting: 220 " in out and "mx.example.org" in out
    assert "STARTTLS: offered" in out
    assert "TLS: TLSv1.3" in out
    assert "names:   mx.example.org, localhost, 127.0.0.1" in out
    assert "PKIX:    valid for localhost" in out
    before, after = out.split("EHLO after TLS:")
    assert "  STARTTLS" in before and "STARTTLS" not in after  # RFC 3207 §4.2
    assert "  PIPELINING" in after


async def test_certificate_not_from_a_trusted_ca_is_reported(servers: Servers,
                                                             tmp_path) -> None:  # type: ignore[no-untyped-def]
    other = tmp_path / "other-ca.pem"
    import trustme

    trustme.CA().cert_pem.write_to_path(str(other))
    result = await invoke(["smtp", "dial", "--json", "--ca-file", str(other),
                           f"127.0.0.1:{servers.tls_port}"])
    assert result.exit_code == 2, result.output
    report = json.loads(result.output)
    assert report["tls"]["version"] == "TLSv1.3"
    assert report["tls"]["certificate"]["names"] == ["mx.example.org", "localhost", "127.0.0.1"]
    assert report["pkix"]["valid"] is False
    assert report["pkix"]["reason"].startswith("NOT valid for 127.0.0.1")
    assert "STARTTLS" in report["capabilities"]
    assert report["capabilities_after_tls"] and "STARTTLS" not in \
        report["capabilities_after_tls"]


async def test_server_without_starttls(servers: Servers) -> None:
    result = await invoke(["smtp", "dial", f"127.0.0.1:{servers.plain_port}"])
    assert result.exit_code == 2, result.output
    assert "STARTTLS: NOT offered" in result.output
    assert "TLSv" not in result.output


async def test_nothing_listening_is_temporary() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = await invoke(["smtp", "dial", f"127.0.0.1:{port}"])
    assert result.exit_code == 3
    assert f"Error: connecting to [127.0.0.1] port {port}" in result.output


async def test_bad_port_is_a_user_error() -> None:
    result = await invoke(["smtp", "dial", "mx.example.org:99999"])
    assert result.exit_code == 1
    assert "port must be a number from 1 to 65535" in result.output


async def test_implicit_tls(servers: Servers) -> None:
    result = await invoke(["smtp", "dial", "--implicit-tls", "--ca-file", str(servers.ca_file),
                           f"127.0.0.1:{servers.implicit_port}"])
    assert result.exit_code == 0, result.output
    assert "STARTTLS: " not in result.output
    assert "PKIX:    valid for 127.0.0.1" in result.output
    assert "EHLO after TLS:\n" in result.output and "  AUTH " in result.output


def test_pkix_checks_the_name(servers: Servers) -> None:
    from cryptography import x509

    roots = x509.load_pem_x509_certificates(servers.ca_file.read_bytes())
    assert pkix_check((servers.leaf_der,), "mx.example.org", roots)[0] is True
    valid, why = pkix_check((servers.leaf_der,), "other.example.org", roots)
    assert not valid
    assert why == "NOT valid for other.example.org: leaf certificate has no matching subjectAltName"
    assert pkix_check((b"garbage",), "mx.example.org", roots)[0] is False
