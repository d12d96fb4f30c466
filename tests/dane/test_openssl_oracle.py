"""Our DANE verdicts against OpenSSL's DANE implementation (``openssl s_client
-dane_tlsa_rrdata``) for the same chains, records and names.

An ``openssl s_server`` on 127.0.0.1 presents each chain; ``s_client`` checks
it with DANE at the test's point in time. Both must agree on match or not.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from kittiwake.dane import record_for, verify
from kittiwake.dns import TLSA

from .certs import NOW, PKI, Issued

pytestmark = pytest.mark.integration  # openssl s_server/s_client

OPENSSL = shutil.which("openssl")


class Servers:
    """One ``openssl s_server`` per chain, started on first use."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: dict[tuple[str, ...], tuple[subprocess.Popen[bytes], int]] = {}

    def port(self, pki: PKI, names: tuple[str, ...]) -> int:
        if names in self.procs:
            return self.procs[names][1]
        assert OPENSSL, "openssl (Debian package openssl) is not installed"
        leaf: Issued = getattr(pki, names[0])
        stem = self.workdir / "-".join(names)
        key, cert, chain = (stem.with_suffix(s) for s in (".key", ".pem", ".chain"))
        key.write_bytes(leaf.key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        cert.write_bytes(leaf.cert.public_bytes(serialization.Encoding.PEM))
        args = [OPENSSL, "s_server", "-accept", "127.0.0.1:0", "-cert", str(cert),
                "-key", str(key)]
        if len(names) > 1:
            chain.write_bytes(b"".join(getattr(pki, n).cert.public_bytes(
                serialization.Encoding.PEM) for n in names[1:]))
            args += ["-cert_chain", str(chain)]
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        assert proc.stdout is not None
        for _ in range(20):
            line = proc.stdout.readline().decode()
            if match := re.match(r"ACCEPT 127\.0\.0\.1:(\d+)", line):
                self.procs[names] = (proc, int(match.group(1)))
                return int(match.group(1))
        proc.kill()
        raise AssertionError(f"openssl s_server did not start for {names}")

    def close(self) -> None:
        for proc, _port in self.procs.values():
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    s = Servers(tmp_path_factory.mktemp("openssl"))
    yield s
    s.close()


def openssl_dane(port: int, record: TLSA, host: str) -> bool:
    assert OPENSSL, "openssl (Debian package openssl) is not installed"
    out = subprocess.run(
        [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-servername", host,
         "-dane_tlsa_domain", host, "-dane_tlsa_rrdata", str(record),
         "-dane_ee_no_namechecks", "-attime", str(int(NOW.timestamp())), "-brief"],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=20, check=False)
    text = (out.stdout + out.stderr).decode(errors="replace")
    assert "CONNECTION ESTABLISHED" in text, text
    return "Verification: OK" in text


R = Callable[[PKI], TLSA]
CASES: list[tuple[str, tuple[str, ...], R, str]] = [
    ("TA root full cert", ("leaf", "inter", "root"), lambda p: record_for(p.root.der, 2, 0, 1),
     "mx.example.org"),
    ("TA root, wrong name", ("leaf", "inter", "root"),
     lambda p: record_for(p.root.der, 2, 0, 1), "mx.other.org"),
    ("TA wildcard one label", ("leaf", "inter", "root"),
     lambda p: record_for(p.inter.der, 2, 1, 1), "smtp.mail.example.net"),
    ("TA wildcard two labels", ("leaf", "inter", "root"),
     lambda p: record_for(p.inter.der, 2, 1, 1), "a.smtp.mail.example.net"),
    ("TA key in DNS, not sent", ("leaf", "inter"), lambda p: record_for(p.root.der, 2, 1, 0),
     "mx.example.org"),
    ("TA digest, not sent", ("leaf", "inter"), lambda p: record_for(p.root.der, 2, 1, 2),
     "mx.example.org"),
    ("TA missing intermediate", ("leaf", "root"), lambda p: record_for(p.root.der, 2, 0, 1),
     "mx.example.org"),
    ("EE any name", ("leaf", "inter"), lambda p: record_for(p.leaf.der, 3, 1, 1),
     "unrelated.example"),
    ("EE other key", ("leaf", "inter"), lambda p: record_for(p.pss_leaf.der, 3, 1, 1),
     "mx.example.org"),
    ("EE expired", ("expired", "inter"), lambda p: record_for(p.expired.der, 3, 0, 2),
     "mx.example.org"),
    ("TA expired leaf", ("expired", "inter", "root"), lambda p: record_for(p.root.der, 2, 0, 1),
     "mx.example.org"),
    ("TA RSA-PSS", ("pss_leaf", "inter"), lambda p: record_for(p.inter.der, 2, 0, 1),
     "mx.example.org"),
    ("TA CN without SAN", ("cn_only", "inter"), lambda p: record_for(p.inter.der, 2, 1, 1),
     "mx.example.org"),
    ("TA forged issuer", ("forged", "inter"), lambda p: record_for(p.inter.der, 2, 0, 1),
     "mx.example.org"),
    ("TA issuer not a CA", ("under_leaf", "leaf"), lambda p: record_for(p.leaf.der, 2, 0, 1),
     "mx.example.org"),
    ("EE Ed25519 self-signed", ("self_signed",),
     lambda p: record_for(p.self_signed.der, 3, 1, 1), "self.example.org"),
    ("PKIX-EE is unusable", ("leaf", "inter"), lambda p: record_for(p.leaf.der, 1, 1, 1),
     "mx.example.org"),
]


@pytest.mark.parametrize(("chain", "make", "host"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_same_verdict_as_openssl(pki: PKI, servers: Servers, chain: tuple[str, ...],
                                 make: R, host: str) -> None:
    record = make(pki)
    ours = verify([record], [getattr(pki, n).der for n in chain], [host], NOW)
    theirs = openssl_dane(servers.port(pki, chain), record, host)
    assert ours.ok is theirs, f"kittiwake: {ours.reason}"
