"""``config test`` lines for ACME listeners, host keys and the ``user`` setting.

A listener with ``tls.acme`` gets its certificates from the authority, so it
is not warned about as "no TLS certificate"; it is warned about when no
enabled service can answer its challenge (tls-alpn-01 on https port 443,
RFC 8737 §3; http-01 on http port 80, RFC 8555 §8.3). Host key files and the
user are checked as ``serve`` would use them, one line each.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from kittiwake.cli.main import cli
from kittiwake.config import StaticConfig
from kittiwake.config.load import check_user, host_key_problems
from kittiwake.config.warnings import acme_warnings, config_warnings

BASE = """\
hostname = "mail.example.org"
data_dir = "data"
[acme.le]
directory_url = "https://acme.example/dir"
challenge = "{challenge}"
[listeners.public]
ips = ["127.0.0.1"]
tls = {{ acme = "le", host_private_key_files = {keys} }}
smtp = {{ enabled = true }}
submission = {{ enabled = true }}
imap = {{ enabled = true }}
{web}
"""
DOMAINS = '[domains."example.org"]\n'


def pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
        ) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def write(directory: Path, challenge: str = "tls-alpn-01", web: str = "", keys: str = "[]",
          user: str = "") -> Path:
    text = BASE.format(challenge=challenge, web=web, keys=keys)
    if user:
        text = f'user = "{user}"\n' + text
    (directory / "kittiwake.conf").write_text(text)
    (directory / "domains.conf").write_text(DOMAINS)
    return directory


def config_test(directory: Path) -> tuple[int, list[str], str]:
    result = CliRunner().invoke(cli, ["--config", str(directory), "config", "test"])
    assert "Traceback" not in result.output
    return result.exit_code, result.stderr.strip().splitlines(), result.stdout


def static(challenge: str = "tls-alpn-01", web: str = "") -> StaticConfig:
    import tomllib

    return StaticConfig.model_validate(tomllib.loads(BASE.format(
        challenge=challenge, web=web, keys="[]")))


def test_acme_listener_is_not_warned_about_missing_certificates(tmp_path: Path) -> None:
    code, warnings, stdout = config_test(write(tmp_path, web="https = { enabled = true }"))
    assert code == 0 and warnings == [] and stdout.startswith("config OK"), warnings


def test_tls_alpn_without_https_is_one_warning() -> None:
    [warning] = config_warnings(static())
    assert warning.text() == (
        "kittiwake.conf: listeners.public.tls.acme: warning: the tls-alpn-01 challenge of"
        " acme.le needs a https service, and no listener enables https: the authority cannot"
        " validate the names, so no certificate is issued and STARTTLS, submission AUTH and"
        " IMAP LOGIN stay off; to fix: set listeners.public.https.enabled = true (port 443)")


def test_tls_alpn_with_https_on_another_port() -> None:
    [warning] = acme_warnings(static(web="https = { enabled = true, port = 8443 }"))
    assert warning.off == ("the tls-alpn-01 challenge of acme.le is validated on port 443,"
                           " but https is enabled only on port 8443")
    assert warning.fix.startswith("serve https on port 443")


def test_https_on_another_listener_answers_tls_alpn() -> None:
    import tomllib

    data = tomllib.loads(BASE.format(challenge="tls-alpn-01", web="", keys="[]"))
    # Challenges are shared by every https service of the process.
    data["listeners"]["web"] = {"ips": ["127.0.0.2"], "tls": {"acme": "le"},
                                "https": {"enabled": True}}
    assert acme_warnings(StaticConfig.model_validate(data)) == []


def test_http01_needs_http() -> None:
    [warning] = acme_warnings(static("http-01", web="https = { enabled = true }"))
    assert warning.off == ("the http-01 challenge of acme.le needs a http service, and no"
                           " listener enables http")
    assert warning.fix == ("set listeners.public.http.enabled = true (port 80, or"
                           " reverse_proxied behind a web server)")
    assert acme_warnings(static("http-01", web="http = { enabled = true }")) == []


def test_http01_behind_a_web_server_is_fine() -> None:
    web = "http = { enabled = true, port = 1080, reverse_proxied = true }"
    assert acme_warnings(static("http-01", web=web)) == []
    [warning] = acme_warnings(static("http-01", web="http = { enabled = true, port = 8080 }"))
    assert "validated on port 80, but http is enabled only on port 8080" in warning.off


def test_host_key_files_that_are_right_pass(tmp_path: Path) -> None:
    (tmp_path / "ec.pem").write_bytes(pem(ec.generate_private_key(ec.SECP256R1())))
    (tmp_path / "rsa.pem").write_bytes(pem(rsa.generate_private_key(65537, 2048)))
    assert host_key_problems(tmp_path, ["ec.pem", "rsa.pem"]) == []
    write(tmp_path, web="https = { enabled = true }", keys='["ec.pem", "rsa.pem"]')
    code, warnings, _ = config_test(tmp_path)
    assert (code, warnings) == (0, [])


@pytest.mark.parametrize(("content", "expected"), [
    (None, "host_private_key_files[0]: no file {f} (`kittiwake quickstart` writes ECDSA and"
     " RSA keys; or make one with `openssl genpkey`)"),
    (b"not a key", "host_private_key_files[0]: {f} is not an unencrypted PEM private key"),
    ("p384", ""),
    ("p521", "host_private_key_files[0]: {f}: ECDSA curve secp521r1; expected P-256"
     " (secp256r1) or P-384"),
    ("rsa1024", "host_private_key_files[0]: {f}: RSA key of 1024 bits; expected 2048 or more"),
    ("ed25519", "host_private_key_files[0]: {f}: a Ed25519PrivateKey; expected an ECDSA or"
     " RSA private key (what certificate authorities sign)"),
], ids=["missing", "garbage", "p384-ok", "p521", "rsa1024", "ed25519"])
def test_bad_host_key_is_one_line(tmp_path: Path, content: bytes | str | None,
                                  expected: str) -> None:
    target = tmp_path / "k.pem"
    keys = {"p384": lambda: ec.generate_private_key(ec.SECP384R1()),
            "p521": lambda: ec.generate_private_key(ec.SECP521R1()),
            "rsa1024": lambda: rsa.generate_private_key(65537, 1024),
            "ed25519": ed25519.Ed25519PrivateKey.generate}
    if isinstance(content, str):
        target.write_bytes(pem(keys[content]()))
    elif content is not None:
        target.write_bytes(content)
    write(tmp_path, web="https = { enabled = true }", keys='["k.pem"]')
    code, lines, _ = config_test(tmp_path)
    if not expected:
        assert (code, lines) == (0, [])
        return
    assert code == 1
    assert lines == [f"{tmp_path}/kittiwake.conf: listeners.public.tls."
                     + expected.format(f=target),
                     "kittiwake: 1 problem in the configuration"]


def test_two_keys_of_one_type(tmp_path: Path) -> None:
    for name in ("a.pem", "b.pem"):
        (tmp_path / name).write_bytes(pem(ec.generate_private_key(ec.SECP256R1())))
    assert host_key_problems(tmp_path, ["a.pem", "b.pem"]) == [
        f"host_private_key_files[1]: {tmp_path}/b.pem: a second ECDSA key (the first is"
        " host_private_key_files[0]); give one per type"]


def _missing_user() -> str:
    name = "kittiwake-no-such-user"
    with pytest.raises(KeyError):
        pwd.getpwnam(name)
    return name


def test_user_that_does_not_exist(tmp_path: Path) -> None:
    name = _missing_user()
    write(tmp_path, web="https = { enabled = true }", user=name)
    code, lines, _ = config_test(tmp_path)
    assert code == 1
    assert lines == [f"{tmp_path}/kittiwake.conf: user: no user {name!r} on this system;"
                     " serve started as root would refuse to start (create it, e.g."
                     f" `useradd --system {name}`, or name another)",
                     "kittiwake: 1 problem in the configuration"]


def test_user_root_and_existing_users() -> None:
    root = pwd.getpwuid(0).pw_name
    assert check_user(StaticConfig(hostname="mail.example.org", user=root)) == [
        f"user: {root!r} is root; name an unprivileged user (serve started as root runs as it"
        " after binding its ports)"]
    others = [e.pw_name for e in pwd.getpwall() if e.pw_uid != 0]
    assert others, "no unprivileged user on this machine"
    assert check_user(StaticConfig(hostname="mail.example.org", user=others[0])) == []
    assert check_user(StaticConfig(hostname="mail.example.org")) == []
    assert os.path.exists("/etc/passwd")


@pytest.mark.parametrize("extra", [[], ["--existing-webserver"]], ids=["own-web", "proxied"])
def test_fresh_quickstart_config_has_no_warning(tmp_path: Path, extra: list[str]) -> None:
    """tls-alpn-01 on its own https (443), or http-01 behind the existing web server."""
    made = CliRunner().invoke(cli, ["quickstart", "admin@example.org", "--ip", "198.51.100.7",
                                    "--dir", str(tmp_path), "--user", "nobody", *extra])
    assert made.exit_code == 0, made.output
    code, lines, stdout = config_test(tmp_path / "config")
    assert (code, lines) == (0, []) and stdout.startswith("config OK"), lines


@pytest.mark.parametrize(("extra", "files", "expected"), [
    ('eab_key_id = "kid-1"\n', {}, "acme.le.eab_key_id: set, but eab_hmac_key_file is not"),
    ('eab_key_id = "kid-1"\neab_hmac_key_file = "eab.key"\n', {},
     "acme.le.eab_hmac_key_file: cannot read {dir}/eab.key (No such file or directory)"),
    ('eab_key_id = "kid-1"\neab_hmac_key_file = "eab.key"\n', {"eab.key": "not base64!\n"},
     "acme.le.eab_hmac_key_file: {dir}/eab.key does not hold a base64url key"),
    ('eab_hmac_key_file = "eab.key"\n', {"eab.key": "c2VjcmV0LWhtYWMta2V5\n"},
     "acme.le.eab_hmac_key_file: set, but eab_key_id is not"),
    ('ca_file = "ca.pem"\n', {}, "acme.le.ca_file: no file {dir}/ca.pem"),
    ('ca_file = "ca.pem"\n', {"ca.pem": "-----BEGIN CERTIFICATE-----\nAAAA\n"},
     "acme.le.ca_file: {dir}/ca.pem is not a PEM CA certificate"),
])
def test_acme_authority_files_are_checked(tmp_path: Path, extra: str, files: dict[str, str],
                                          expected: str) -> None:
    """What `serve` would stop on (the EAB key, RFC 8555 §7.3.4; the directory's CA),
    `config test` reports first: one line naming the setting, the file and the fix."""
    write(tmp_path, web="https = { enabled = true }")
    conf = tmp_path / "kittiwake.conf"
    conf.write_text(conf.read_text().replace(
        'challenge = "tls-alpn-01"\n', 'challenge = "tls-alpn-01"\n' + extra))
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    code, lines, _ = config_test(tmp_path)
    assert code != 0
    wanted = expected.format(dir=tmp_path)
    assert any(wanted in line for line in lines), lines


def test_acme_eab_that_is_right_passes(tmp_path: Path) -> None:
    write(tmp_path, web="https = { enabled = true }")
    conf = tmp_path / "kittiwake.conf"
    conf.write_text(conf.read_text().replace(
        'challenge = "tls-alpn-01"\n',
        'challenge = "tls-alpn-01"\neab_key_id = "kid-1"\neab_hmac_key_file = "eab.key"\n'))
    (tmp_path / "eab.key").write_text(
        "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W\n")
    code, lines, stdout = config_test(tmp_path)
    assert code == 0 and lines == [] and stdout.startswith("config OK"), lines
