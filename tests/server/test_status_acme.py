"""`kittiwake status` and /metrics of a running server whose ACME authority cannot be
reached: each certificate (per key type) shows no expiry yet, the failed attempts, the
error and when the retry is due; the order and renewal-error counters agree.

The directory URL points at a bound TCP socket that does not listen, so every
connection is refused at once and no other process can answer there.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.server.serve_helpers import KITTIWAKE, Served, silent_resolver, start_serve


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: install the Debian package prometheus"
    check = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                           capture_output=True)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def status(conf: Path) -> dict:  # type: ignore[type-arg]
    out = subprocess.run([*KITTIWAKE, "--config", str(conf), "status", "--json"],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    return json.loads(out)  # type: ignore[no-any-return]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Served, Path]]:
    conf = tmp_path / "config"
    conf.mkdir()
    (conf / "domains.conf").write_text('[domains."example.org"]\n')
    with silent_resolver() as resolver, socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        directory = f"https://127.0.0.1:{closed.getsockname()[1]}/dir"

        def write_config(port: int) -> None:
            (conf / "kittiwake.conf").write_text(f"""
hostname = "mail.example.org"
data_dir = "../data"
shutdown_grace_seconds = 1
[dns]
resolvers = ["{resolver}"]
timeout_seconds = 0.2
[acme.testca]
directory_url = "{directory}"
challenge = "http-01"
[listeners.public]
ips = ["127.0.0.1"]
metrics = {{ enabled = true, port = {port} }}
[listeners.public.tls]
acme = "testca"
""")

        server = start_serve(conf, write_config, tmp_path / "serve.log")
        try:
            yield server, conf
        finally:
            server.stop()


def test_status_shows_acme_certificates_failing_to_renew(served: tuple[Served, Path]) -> None:
    server, conf = served
    deadline = time.monotonic() + 30
    while True:
        st = status(conf)
        certs = st["acme_certificates"]
        if len(certs) == 2 and all(c["failures"] >= 1 for c in certs):
            break
        assert time.monotonic() < deadline, (st, server.text())
        time.sleep(0.1)
    now = time.time()
    assert sorted(c["key_type"] for c in certs) == ["ecdsa", "rsa"]
    for cert in certs:
        assert cert["authority"] == "testca"
        assert cert["names"] == ["mail.example.org", "mta-sts.example.org",
                                 "autoconfig.example.org"]
        assert cert["not_after"] is None and cert["expires_in_seconds"] is None
        assert cert["last_error"]  # why the order failed, e.g. connection refused
        assert cert["renew_at"] > now - 5  # the retry after the backoff

    # The counters say the same: failed orders and renewal errors of this authority.
    samples = scrape(server.port)
    failed = samples[("kittiwake_acme_orders_total",
                      (("authority", "testca"), ("result", "failed")))]
    errors = samples[("kittiwake_acme_renewal_errors_total", (("authority", "testca"),))]
    assert failed >= 2 and errors == failed
    assert samples[("kittiwake_acme_orders_total", (("authority", "testca"), ("result", "ok")))] \
        == 0
    assert samples[("kittiwake_acme_orders_total",
                    (("authority", "testca"), ("result", "caa-forbidden")))] == 0

    screen = subprocess.run([*KITTIWAKE, "--config", str(conf), "status"], capture_output=True,
                            text=True, check=True, timeout=30).stdout
    lines = screen.splitlines()
    start = lines.index("ACME certificates:")
    header, rows = lines[start + 1], lines[start + 2:start + 4]
    assert header.split() == ["NAME", "KEY", "AUTHORITY", "EXPIRES", "RENEWAL", "FAILURES",
                              "LAST", "ERROR"]
    for row in rows:
        assert row.startswith("  mail.example.org (+2)  ")
        assert "none yet" in row and "testca" in row
        # Aligned: each column starts where its heading does.
        for heading in ("KEY", "AUTHORITY", "EXPIRES", "RENEWAL", "FAILURES"):
            column = header.index(heading)
            assert row[column - 2:column] == "  " and row[column] != " ", (heading, row)
    assert {row.split()[2] for row in rows} == {"ecdsa", "rsa"}
    assert "certificates:\n  none from files\n" in screen, screen


class FakeManager:
    """A unit-test stand-in for CertificateManager.status()."""

    def __init__(self, certs: list[dict[str, str | int | None]]) -> None:
        self.certs = certs

    def status(self) -> list[dict[str, str | int | None]]:
        return self.certs


def test_acme_entries_missing_first_then_by_expiry() -> None:
    from kittiwake.server.status import acme_certificates

    now = 1_800_000_000.0
    managers = {"le": FakeManager([
        {"names": "b.example,mta-sts.b.example", "key_type": "rsa",
         "not_after": "2027-03-01T00:00:00+00:00", "renew_at": "2027-01-30T00:00:00+00:00",
         "failures": 0, "last_error": None},
        {"names": "a.example", "key_type": "ecdsa", "not_after": "2027-02-01T00:00:00+00:00",
         # Names changed: the stored certificate no longer covers them, due at once.
         "renew_at": "0001-01-01T00:00:00+00:00", "failures": 0, "last_error": None}]),
        "other": FakeManager([
            {"names": "c.example", "key_type": "ecdsa", "not_after": None, "renew_at": "now",
             "failures": 3, "last_error": "refused"}])}
    out = acme_certificates(managers, now)
    assert [(c["authority"], c["names"][0]) for c in out] == [
        ("other", "c.example"), ("le", "a.example"), ("le", "b.example")]
    assert out[0]["renew_at"] == now and out[0]["expires_in_seconds"] is None
    assert out[1]["renew_at"] == now
    assert out[2]["names"] == ["b.example", "mta-sts.b.example"]
    assert out[2]["not_after"] == 1803859200.0
    assert out[2]["expires_in_seconds"] == round(1803859200.0 - now)
