"""``kittiwake dkim gen|txt|sign|verify`` as a user runs them (resolver injected)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import kittiwake.cli.dkim as cli_dkim
from kittiwake.cli.main import cli
from kittiwake.dkim import dns_record, load_private_key
from kittiwake.dns import MockResolver

MESSAGE = b"From: alice@example.org\nTo: bob@example.net\nSubject: hi\n\nHello Bob.\n"


def run(*args: str, stdin: bytes | None = None) -> Result:
    return CliRunner().invoke(cli, ["dkim", *args], input=stdin, catch_exceptions=False)


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> MockResolver:
    r = MockResolver()
    monkeypatch.setattr(cli_dkim, "resolver_factory", lambda ctx: r)
    return r


@pytest.fixture
def keyfile(tmp_path: Path) -> Path:
    result = run("gen", "ed25519")
    assert result.exit_code == 0
    path = tmp_path / "key.pem"
    path.write_text(result.stdout)
    return path


def test_gen(tmp_path: Path) -> None:
    ed = run("gen", "ed25519")
    assert ed.exit_code == 0 and ed.stdout.startswith("-----BEGIN PRIVATE KEY-----")
    assert dns_record(load_private_key(ed.stdout)).startswith("v=DKIM1; k=ed25519; p=")
    rsa = run("gen", "rsa", "--bits", "1024")
    assert rsa.exit_code == 0
    assert load_private_key(rsa.stdout).key_size == 1024  # type: ignore[union-attr]
    small = run("gen", "rsa", "--bits", "512")
    assert small.exit_code == 1
    assert small.stderr == "kittiwake: RSA keys need at least 1024 bits (RFC 8301 §3.2)\n"


def test_txt(keyfile: Path, tmp_path: Path) -> None:
    result = run("txt", str(keyfile))
    assert result.exit_code == 0
    assert result.stdout == dns_record(load_private_key(keyfile.read_bytes())) + "\n"
    bad = tmp_path / "bad.pem"
    bad.write_text("hello")
    result = run("txt", str(bad))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"kittiwake: {bad}: not a PEM private key")
    assert run("txt", str(tmp_path / "missing.pem")).exit_code == 1


def test_sign_then_verify(keyfile: Path, tmp_path: Path, resolver: MockResolver) -> None:
    msg = tmp_path / "msg.eml"
    msg.write_bytes(MESSAGE)
    signed = run("sign", "--domain", "example.org", "--selector", "sel", "--key", str(keyfile),
                 str(msg))
    assert signed.exit_code == 0, signed.stderr
    assert signed.stdout_bytes.startswith(b"DKIM-Signature: v=1; a=ed25519-sha256;")
    assert signed.stdout_bytes.endswith(MESSAGE)
    resolver.add("TXT", "sel._domainkey.example.org",
                 dns_record(load_private_key(keyfile.read_bytes())), authentic=True)

    result = run("verify", "--json", stdin=signed.stdout_bytes)
    assert result.exit_code == 0
    [entry] = json.loads(result.stdout)
    assert {k: entry[k] for k in ("domain", "selector", "algorithm", "status", "error",
                                  "authentic")} == {
        "domain": "example.org", "selector": "sel", "algorithm": "ed25519-sha256",
        "status": "pass", "error": "", "authentic": True}

    table = run("verify", stdin=signed.stdout_bytes)
    assert table.exit_code == 0
    header, row = table.stdout.splitlines()
    assert header.split() == ["STATUS", "DOMAIN", "SELECTOR", "ALGORITHM", "DNSSEC", "NOTE"]
    assert row.split() == ["pass", "example.org", "sel", "ed25519-sha256", "yes"]

    tampered = run("verify", stdin=signed.stdout_bytes.replace(b"Hello", b"Bye"))
    assert tampered.exit_code == 2
    assert "fail" in tampered.stdout and "body hash did not verify" in tampered.stdout


def test_sign_errors(keyfile: Path, tmp_path: Path) -> None:
    no_from = run("sign", "-d", "example.org", "-s", "sel", "--key", str(keyfile),
                  stdin=b"To: bob@example.net\n\nhi\n")
    assert no_from.exit_code == 1 and no_from.stderr.startswith("kittiwake: message has no From")
    bad_canon = run("sign", "-d", "example.org", "-s", "sel", "--key", str(keyfile), "-c",
                    "fancy", stdin=MESSAGE)
    assert bad_canon.exit_code == 1 and "canonicalization" in bad_canon.stderr
    public = tmp_path / "pub.pem"
    public.write_bytes(b"not a key")
    assert run("sign", "-d", "example.org", "-s", "sel", "--key", str(public),
               stdin=MESSAGE).exit_code == 1


def test_verify_exit_codes(keyfile: Path, resolver: MockResolver, tmp_path: Path) -> None:
    unsigned = run("verify", stdin=MESSAGE)
    assert unsigned.exit_code == 2 and unsigned.stdout == "no DKIM signatures\n"
    assert json.loads(run("verify", "--json", stdin=MESSAGE).stdout) == []

    signed = run("sign", "-d", "example.org", "-s", "sel", "--key", str(keyfile), stdin=MESSAGE)
    resolver.fail("TXT", "sel._domainkey.example.org", "servfail")
    temp = run("verify", "--json", stdin=signed.stdout_bytes)
    assert temp.exit_code == 3
    assert json.loads(temp.stdout)[0]["status"] == "temperror"

    missing = run("verify", str(tmp_path / "nope.eml"))
    assert missing.exit_code == 1 and missing.stderr.startswith("kittiwake: ")


def test_txt_from_public_key(keyfile: Path, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    key = load_private_key(keyfile.read_bytes())
    public = tmp_path / "pub.pem"
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    result = run("txt", str(public))
    assert result.exit_code == 0 and result.stdout == dns_record(key) + "\n"
