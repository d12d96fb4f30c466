"""``kittiwake quickstart``: what a self-hoster gets in the new directory and on screen."""

from __future__ import annotations

import hashlib
import json
import re
import stat
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kittiwake.cli.main import cli
from kittiwake.config import load
from kittiwake.sasl.credentials import Credentials, verify_password
from kittiwake.store import AccountStore
from kittiwake.store.store import account_dir

ARGS = ["--ip", "198.51.100.7", "--ip", "2001:db8::7", "--user", "nobody"]


def run_quickstart(tmp_path: Path, *extra: str) -> str:
    result = CliRunner().invoke(cli, ["quickstart", "Admin@Example.org", "--dir", str(tmp_path),
                                      *ARGS, *extra])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    directory = tmp_path_factory.mktemp("quickstart")
    return directory, run_quickstart(directory)


def test_config_loads_and_has_the_listeners(made: tuple[Path, str]) -> None:
    directory, _output = made
    config = load(directory / "config")
    static = config.static
    assert static.hostname == "mail.example.org"
    assert static.user == "nobody" and static.postmaster_account == "admin"
    public, internal = static.listeners["public"], static.listeners["internal"]
    assert public.ips == ["198.51.100.7", "2001:db8::7"]
    for service in ("smtp", "submission", "submissions", "imap", "imaps", "http", "https"):
        assert getattr(public, service).enabled, service
    assert public.tls is not None and public.tls.acme == "letsencrypt"
    assert public.tls.host_private_key_files == ["hostkeys/ecdsa-p256.pem",
                                                 "hostkeys/rsa2048.pem"]
    assert internal.ips == ["127.0.0.1"] and internal.metrics.enabled
    assert static.acme["letsencrypt"].challenge == "tls-alpn-01"
    domain = config.domains.domains["example.org"]
    assert sorted(domain.dkim.sign) == sorted(domain.dkim.selectors) and len(domain.dkim.sign) == 2
    assert domain.dmarc_reports is not None and domain.dmarc_reports.localpart == "dmarc-reports"
    assert domain.mta_sts is not None and domain.mta_sts.mode == "enforce"
    assert "admin@example.org" in config.domains.accounts["admin"].destinations


def test_keys_are_private_pkcs8_of_the_right_kinds(made: tuple[Path, str]) -> None:
    directory, _output = made
    conf = directory / "config"
    kinds = {"hostkeys/ecdsa-p256.pem": ec.EllipticCurvePrivateKey,
             "hostkeys/rsa2048.pem": rsa.RSAPrivateKey}
    for relative, kind in kinds.items():
        path = conf / relative
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_text().startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, kind)
    rsa_key = serialization.load_pem_private_key((conf / "hostkeys/rsa2048.pem").read_bytes(),
                                                 None)
    assert isinstance(rsa_key, rsa.RSAPrivateKey) and rsa_key.key_size == 2048
    assert stat.S_IMODE((conf / "hostkeys").stat().st_mode) == 0o700
    for path in (conf / "dkim").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_password_is_printed_once_and_stored_only_as_secrets(made: tuple[Path, str]) -> None:
    directory, output = made
    password = re.search(r"Password:\s+(\S+)", output).group(1)  # type: ignore[union-attr]
    assert output.count(password) == 1
    config = load(directory / "config")
    store = AccountStore("admin", account_dir(config.data_dir, "admin"))
    try:
        stored = store.credentials()
    finally:
        store.close()
    assert stored is not None and password not in stored
    assert verify_password(Credentials.from_json(stored), password)
    for path in directory.rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path


def test_output_has_every_record_and_the_next_steps(made: tuple[Path, str]) -> None:
    directory, output = made
    for needle in ("IN\tMX\t10 mail.example.org.", '"v=spf1 ip4:198.51.100.7 ip6:2001:db8::7',
                   "_dmarc.example.org.", "rua=mailto:dmarc-reports@example.org",
                   "_mta-sts.example.org.", "mta-sts.example.org.", "_smtp._tls.example.org.",
                   "_25._tcp.mail.example.org.", 'CAA\t0 issue "letsencrypt.org"',
                   "autoconfig.example.org.", "autodiscover.example.org.",
                   "_submission._tcp", "_submissions._tcp", "_imap._tcp", "_imaps._tcp",
                   "_pop3._tcp.example.org.\t3600\tIN\tSRV\t0 0 0 .",
                   "7.100.51.198.in-addr.arpa.", "config dnscheck example.org",
                   f"--config {directory / 'config'} serve"):
        assert needle in output, needle
    unit = (directory / "kittiwake.service").read_text()
    assert "ExecStart=" in unit and str(directory / "config") in unit


def test_tlsa_records_are_the_host_keys_spki_hashes(made: tuple[Path, str]) -> None:
    directory, output = made
    for name in ("ecdsa-p256", "rsa2048"):
        key = serialization.load_pem_private_key(
            (directory / "config/hostkeys" / f"{name}.pem").read_bytes(), None)
        spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        assert f"TLSA\t3 1 1 {hashlib.sha256(spki).hexdigest()}" in output


def test_dnsrecords_prints_the_same_records(made: tuple[Path, str]) -> None:
    directory, output = made
    result = CliRunner().invoke(cli, ["--config", str(directory / "config"), "config",
                                      "dnsrecords", "example.org"])
    assert result.exit_code == 0, result.output
    zone_lines = [ln for ln in result.output.splitlines() if ln and not ln.startswith(";")]
    assert zone_lines and all(line in output for line in zone_lines)
    as_json = CliRunner().invoke(cli, ["--config", str(directory / "config"), "config",
                                       "dnsrecords", "example.org", "--json"])
    assert len(json.loads(as_json.output)["records"]) == len(zone_lines)


def test_second_run_refuses_in_one_line(made: tuple[Path, str]) -> None:
    directory, _output = made
    result = CliRunner().invoke(cli, ["quickstart", "admin@example.org", "--dir",
                                      str(directory), *ARGS])
    assert result.exit_code == 1
    assert "kittiwake.conf exists already" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_dnsrecords_for_an_unknown_domain_is_one_line(made: tuple[Path, str]) -> None:
    directory, _output = made
    result = CliRunner().invoke(cli, ["--config", str(directory / "config"), "config",
                                      "dnsrecords", "example.net"])
    assert result.exit_code == 1
    assert result.output.strip() == ("kittiwake: domain 'example.net' is not in domains.conf"
                                     " (known: example.org)")


def test_existing_webserver_leaves_80_and_443_and_says_what_to_proxy(tmp_path: Path) -> None:
    output = run_quickstart(tmp_path, "--existing-webserver", "--hostname", "mx.example.org")
    static = tomllib.loads((tmp_path / "config/kittiwake.conf").read_text())
    public, internal = static["listeners"]["public"], static["listeners"]["internal"]
    assert "http" not in public and "https" not in public
    assert internal["http"] == {"enabled": True, "port": 1080, "reverse_proxied": True}
    assert static["acme"]["letsencrypt"]["challenge"] == "http-01"
    for needle in ("http://127.0.0.1:1080", "http://mx.example.org/.well-known/acme-challenge/",
                   "https://mta-sts.example.org/.well-known/mta-sts.txt",
                   "https://autoconfig.example.org/mail/config-v1.1.xml",
                   "https://autodiscover.example.org/autodiscover/autodiscover.xml"):
        assert needle in output, needle


@pytest.mark.parametrize(("args", "message"), [
    (["nobody"], "expected your address, like you@example.org"),
    (["a@com"], "is a public suffix"),
    (["a@example.org", "--ip", "300.1.1.1"], "--ip '300.1.1.1' is not an IP address"),
    (["a@example.org", "--ip", "0.0.0.0"], "give the server's own public address"),
    (["a@example.org", "--ip", "192.0.2.1", "--hostname", "bad_host.example"], "--hostname"),
])
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["quickstart", "--dir", str(tmp_path), *args])
    assert result.exit_code == 1, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "config").exists()


def test_other_acme_authority_without_known_issuer_says_so(tmp_path: Path) -> None:
    output = run_quickstart(tmp_path, "--acme-directory", "https://acme.test/dir")
    static = tomllib.loads((tmp_path / "config/kittiwake.conf").read_text())
    assert static["acme"]["acme"]["directory_url"] == "https://acme.test/dir"
    assert static["listeners"]["public"]["tls"]["acme"] == "acme"
    assert "\tCAA\t" not in output
    assert "no CAA record: the CAA issuer name of [acme.acme] is not known" in output
    with_issuer = run_quickstart(tmp_path / "second", "--acme-directory",
                                 "https://acme.test/dir", "--acme-issuer", "ca.test")
    assert 'example.org.\t3600\tIN\tCAA\t0 issue "ca.test"' in with_issuer


def test_dnsrecords_names_the_acme_account_in_caa_once_registered(tmp_path: Path) -> None:
    from kittiwake.acme.paths import account_file

    run_quickstart(tmp_path)
    config = load(tmp_path / "config")
    args = ["--config", str(tmp_path / "config"), "config", "dnsrecords", "example.org"]
    before = CliRunner().invoke(cli, args)
    assert "CAA\t0 issue \"letsencrypt.org\"" in before.output, before.output
    path = account_file(config.data_dir, "letsencrypt")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"uri": "https://acme.example/acct/42"}))
    after = CliRunner().invoke(cli, args)
    assert "CAA\t0 issue \"letsencrypt.org; accounturi=https://acme.example/acct/42\"" \
        in after.output, after.output
