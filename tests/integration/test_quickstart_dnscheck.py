"""quickstart, then its records served in the signed DNS world, then dnscheck: all OK.

The flow a self-hoster follows: ``kittiwake quickstart`` in a fresh
directory, publish what ``config dnsrecords --json`` prints (here: in the
bind9 + unbound world's signed zone, PTR in its signed reverse zone),
start ``kittiwake serve``, run ``config dnscheck``. The server runs with a
certificate made for the pre-generated ECDSA host key (as the ACME client
will get), so the TLSA lines check the served certificate for real.

One line cannot be OK before the HTTP(S) listener is merged:
``mta-sts-policy`` (nothing serves https://mta-sts.DOMAIN/ yet). The test
asserts it is the only non-OK line, and that it says why.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pwd
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from kittiwake.cli.main import cli
from kittiwake.config import StaticConfig, write_static

from .dnsworld import MakeDNSWorld
from .loopback import free_port

DOMAIN = "signed.test"
HOST = f"mail.{DOMAIN}"
NOT_YET = {"mta-sts-policy"}  # needs kittiwake's https service (HTTP listener, issue 10)


def _free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (loopback.free_port never hands one out twice)."""
    return [free_port() for _ in range(count)]


def _certificate_for_host_key(config_dir: Path) -> tuple[str, str]:
    """A self-signed certificate for the ECDSA host key, as ACME would issue one."""
    key = serialization.load_pem_private_key(
        (config_dir / "hostkeys/ecdsa-p256.pem").read_bytes(), password=None)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
            .sign(key, hashes.SHA256()))  # type: ignore[arg-type]
    (config_dir / "certs").mkdir()
    (config_dir / "certs/host.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return "certs/host.crt", "hostkeys/ecdsa-p256.pem"


def _local_ports(config_dir: Path) -> None:
    """Ephemeral ports for every service, and the test certificate on the public listener."""
    data = tomllib.loads((config_dir / "kittiwake.conf").read_text())
    services = [(listener, service) for listener in data["listeners"].values()
                for service in ("smtp", "submission", "submissions", "imap", "imaps",
                                "metrics", "http", "https")
                if listener.get(service, {}).get("enabled")]
    for (listener, service), port in zip(services, _free_ports(len(services)), strict=True):
        listener[service]["port"] = port
    if os.getuid() == 0:
        # serve refuses user = "root"; the suite runs as root with KITTIWAKE_ALLOW_ROOT=1
        # (tests/conftest.py), and tests/server/test_serve_root* cover the privilege drop.
        data["user"] = ""
    cert_file, key_file = _certificate_for_host_key(config_dir)
    data["listeners"]["public"]["tls"]["certificates"] = [
        {"cert_file": cert_file, "key_file": key_file}]
    write_static(config_dir, StaticConfig.model_validate(data))


def test_quickstart_records_pass_dnscheck(tmp_path: Path,
                                          make_dns_world: MakeDNSWorld) -> None:
    runner = CliRunner()
    user = pwd.getpwuid(os.getuid()).pw_name
    made = runner.invoke(cli, ["quickstart", f"admin@{DOMAIN}", "--hostname", HOST,
                               "--ip", "127.0.0.1", "--dir", str(tmp_path),
                               "--acme-directory", "https://acme.test/dir",
                               "--acme-issuer", "ca.test", "--user", user])
    assert made.exit_code == 0, made.output
    assert "Password:" in made.output and f"config dnscheck {DOMAIN}" in made.output
    config_dir = tmp_path / "config"
    _local_ports(config_dir)
    listed = runner.invoke(cli, ["--config", str(config_dir), "config", "dnsrecords", DOMAIN,
                                 "--json"])
    assert listed.exit_code == 0, listed.output
    records = json.loads(listed.output)["records"]

    world = make_dns_world(start=False)
    for record in records:
        if record["type"] == "PTR":
            world.add_ptr("127.0.0.1", record["value"])
        else:
            world.add(record["name"], record["type"], record["rdata"])
    world.start()

    bindir = Path(sys.executable).parent
    log = tmp_path / "serve.log"
    with open(log, "wb") as log_file:
        server = subprocess.Popen([str(bindir / "kittiwake"), "--config", str(config_dir),
                                   "serve"], env=world.env, stdout=subprocess.DEVNULL,
                                  stderr=log_file)
    try:
        deadline = time.monotonic() + 30
        while "kittiwake started" not in log.read_text():
            assert server.poll() is None, f"serve exited: {log.read_text()}"
            assert time.monotonic() < deadline, f"serve did not start: {log.read_text()}"
            time.sleep(0.05)
        checked = subprocess.run([str(bindir / "kittiwake"), "--config", str(config_dir),
                                  "config", "dnscheck", DOMAIN, "--json"], env=world.env,
                                 capture_output=True, text=True, timeout=120)
        text = subprocess.run([str(bindir / "kittiwake"), "--config", str(config_dir),
                               "config", "dnscheck", DOMAIN], env=world.env,
                              capture_output=True, text=True, timeout=120)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=15)
    results = json.loads(checked.stdout)["results"]
    by_check: dict[str, list[dict[str, str]]] = {}
    for r in results:
        by_check.setdefault(r["check"], []).append(r)
    expected = {"mx", "host-address", "reverse-dns", "dnssec", "spf", "dkim", "dmarc",
                "mta-sts", "mta-sts-policy", "tlsrpt", "tlsa", "tlsa-served", "caa", "clients"}
    assert set(by_check) == expected, text.stdout
    not_ok = [r for r in results if r["level"] != "OK"]
    assert {r["check"] for r in not_ok} == NOT_YET, text.stdout
    policy = by_check["mta-sts-policy"][0]
    assert policy["level"] == "ERROR" and "cannot fetch" in policy["message"], policy
    assert len(by_check["dkim"]) == 2 and len(by_check["tlsa"]) == 2, text.stdout
    assert "matches TLSA 3 1 1" in by_check["tlsa-served"][0]["message"]
    assert checked.returncode == 2  # the one ERROR line
    # The text form: one aligned line per result.
    lines = text.stdout.splitlines()
    assert len(lines) == len(results)
    assert all(line.split()[0] in ("OK", "WARN", "ERROR") for line in lines)
    assert len({line.index(line.split()[2]) for line in lines}) == 1, text.stdout
