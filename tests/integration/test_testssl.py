"""testssl.sh (Debian ``testssl.sh``) against every TLS service of a real ``kittiwake serve``.

SMTP STARTTLS (ports 25 and 587), submissions (465), IMAP STARTTLS (143),
IMAPS (993) and HTTPS (443: the MTA-STS policy, autoconfig and the ACME
tls-alpn-01 listener, whose ClientHello peek must not weaken anything) on
loopback, served with an ECDSA and an RSA certificate of a test CA that
testssl is told to trust. Each service must have: no protocol below TLS 1.2,
no cipher category below "strong" (AEAD), forward secrecy with
exactly the groups of :mod:`kittiwake.server.tls`, both certificates served,
and no finding of severity MEDIUM, HIGH or CRITICAL (nor a scan problem).

The runs go in parallel (one testssl per service) with the checks that judge
a configuration: protocols, cipher categories, forward secrecy, server
preference, server defaults and the vulnerability checks. Why this is slower
than 20 s: each testssl run makes a few hundred handshakes.
:func:`run_testssl` takes any :class:`Target`, e.g. ``Target("https", port)``
for the HTTPS listener.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.server.tls_helpers import PKI, SERVICES, TLSServe, start_tls_serve

# Protocols, cipher categories, forward secrecy (with the groups), server preference,
# renegotiation, compression (CRIME). The vulnerability checks left out (-U) need
# protocols or ciphers that -p and -s already show are not offered; -S (server
# defaults, certificates) runs for one implicit-TLS target to see both certificates.
TESTSSL_CHECKS = ["-p", "-s", "-f", "-P", "-R", "-C"]
CERTIFICATE_CHECK = "-S"
# WARN is testssl's "this check could not run" (e.g. a connection timed out on a busy
# machine): not a rating. The checks this test relies on are asserted by value below.
BAD_SEVERITIES = {"MEDIUM", "HIGH", "CRITICAL", "FATAL"}
OLD_PROTOCOLS = ("SSLv2", "SSLv3", "TLS1", "TLS1_1")
WEAK_CIPHER_LISTS = ("cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT",
                     "cipherlist_LOW", "cipherlist_3DES_IDEA", "cipherlist_AVERAGE")
GOOD_CURVES = {"prime256v1", "secp384r1", "X25519", "X448"}


@dataclass(frozen=True)
class Target:
    """A TLS service: ``starttls`` is "smtp" or "imap", None for implicit TLS (or HTTPS)."""

    name: str
    port: int
    starttls: str | None = None
    certificates: bool = False  # also check the certificates served (-S)


def run_testssl(targets: list[Target], ca_file: Path, workdir: Path,
                timeout: float = 400) -> dict[str, list[dict[str, str]]]:
    """Run testssl.sh against every target at once; its JSON findings per target name."""
    testssl = shutil.which("testssl") or shutil.which("testssl.sh")
    assert testssl, "testssl missing: install the Debian package testssl.sh"
    procs: dict[str, tuple[subprocess.Popen[bytes], Path, Path]] = {}
    for target in targets:
        json_file = workdir / f"{target.name}.json"
        out_file = workdir / f"{target.name}.txt"
        json_file.unlink(missing_ok=True)
        cmd = [testssl, "--quiet", "--color", "0", "--warnings", "off", "-n", "none",
               "--openssl-timeout", "10", "--add-ca", str(ca_file),
               "--jsonfile", str(json_file), *TESTSSL_CHECKS]
        if target.certificates:
            cmd.append(CERTIFICATE_CHECK)
        if target.starttls:
            cmd += ["-t", target.starttls]
        cmd.append(f"localhost:{target.port}")
        with open(out_file, "wb") as out:
            procs[target.name] = (subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT),
                                  json_file, out_file)
    results: dict[str, list[dict[str, str]]] = {}
    for name, (proc, json_file, out_file) in procs.items():
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            for other, _, _ in procs.values():
                other.kill()
            raise AssertionError(f"testssl {name} ran over {timeout} s:\n"
                                 f"{out_file.read_text(errors='replace')}") from None
        assert json_file.exists(), f"testssl {name} wrote no JSON:\n{out_file.read_text()}"
        results[name] = json.loads(json_file.read_text())
    return results


def problems(findings: list[dict[str, str]], certificates: bool = False) -> list[str]:
    """What a configuration rated "good" must not show, one line per finding."""
    out = []
    by_id = {f["id"]: f for f in findings}
    for f in findings:
        if f["severity"] in BAD_SEVERITIES:
            out.append(f"{f['severity']} {f['id']}: {f['finding']}")
    for name in OLD_PROTOCOLS:
        if by_id.get(name, {}).get("finding") != "not offered":
            out.append(f"{name}: {by_id.get(name, {}).get('finding', 'not tested')}")
    for name in ("TLS1_2", "TLS1_3"):
        if not by_id.get(name, {}).get("finding", "").startswith("offered"):
            out.append(f"{name}: {by_id.get(name, {}).get('finding', 'not tested')}")
    for name in WEAK_CIPHER_LISTS:
        if by_id.get(name, {}).get("finding") != "not offered":
            out.append(f"{name}: {by_id.get(name, {}).get('finding', 'not tested')}")
    curves = set(by_id.get("PFS_ECDHE_curves", {}).get("finding", "").split())
    if curves != GOOD_CURVES:
        out.append(f"ECDHE groups: {sorted(curves)}, expected {sorted(GOOD_CURVES)}")
    if certificates and by_id.get("cert_numbers", {}).get("finding") != "2":
        out.append(f"certificates served: {by_id.get('cert_numbers', {}).get('finding')}"
                   " (expected ECDSA and RSA)")
    if by_id.get("cipher_order", {}).get("finding") != "server":
        out.append(f"cipher order: {by_id.get('cipher_order', {}).get('finding')}")
    return out


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    import socket

    directory = tmp_path_factory.mktemp("testssl")
    ca = PKI.create(directory / "pki")
    certificates = [ca.issue(["localhost"], "ecdsa"), ca.issue(["localhost"], "rsa")]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:  # a resolver that is silent
        udp.bind(("127.0.0.1", 0))
        server = start_tls_serve(directory, certificates, f"127.0.0.1:{udp.getsockname()[1]}",
                                 services=(*SERVICES, "https"))
        try:
            yield server, ca, directory
        finally:
            server.stop()


@pytest.fixture(scope="module")
def findings(served) -> dict[str, list[dict[str, str]]]:  # type: ignore[no-untyped-def]
    server, ca, directory = served
    assert isinstance(server, TLSServe)
    starttls = {"smtp": "smtp", "submission": "smtp", "imap": "imap"}
    with_certificates = {"submissions", "https"}  # -S once per kind of implicit TLS
    targets = [Target(service, port, starttls.get(service), service in with_certificates)
               for service, port in server.ports.items()]
    return run_testssl(targets, ca.ca_file, directory)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("service", ["smtp", "submission", "submissions", "imap", "imaps",
                                     "https"])
def test_testssl_rates_the_service_good(findings, served, service: str) -> None:  # type: ignore[no-untyped-def]
    server, _ca, _directory = served
    found = findings[service]
    assert found, f"testssl found nothing on {service}"
    bad = problems(found, certificates=service in ("submissions", "https"))
    assert bad == [], f"{service}: testssl findings:\n" + "\n".join(bad)
    assert server.proc.poll() is None, server.text()
    assert "Traceback" not in server.text()
