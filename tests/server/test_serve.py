"""`kittiwake serve` as a real process: metrics listener, control socket, signals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest
from serve_helpers import KITTIWAKE, silent_resolver, start_serve


@pytest.fixture
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    conf = tmp_path / "config"
    conf.mkdir()
    (conf / "domains.conf").write_text('[domains."example.org"]\n')
    with silent_resolver() as resolver:
        def write_config(port: int) -> None:
            (conf / "kittiwake.conf").write_text(f"""
hostname = "mail.example.org"
data_dir = "../data"
shutdown_grace_seconds = 2
[dns]
resolvers = ["{resolver}"]
timeout_seconds = 0.2
[listeners.internal]
ips = ["127.0.0.1"]
metrics = {{ enabled = true, port = {port} }}
""")
        served = start_serve(conf, write_config, tmp_path / "serve.log")
        yield served.proc, conf, served.port, served.log
        served.kill()


@pytest.mark.integration
def test_metrics_served_and_promtool_clean(server) -> None:  # type: ignore[no-untyped-def]
    _proc, _conf, port, _log = server
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    assert b'kittiwake_panic_total{origin="smtpserver"} 0.0' in body
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: install the Debian package prometheus"
    check = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_loglevels_through_control_socket(server) -> None:  # type: ignore[no-untyped-def]
    _proc, conf, _port, _log = server
    sock = conf.parent / "data" / "ctl"
    assert oct(sock.stat().st_mode & 0o777) == "0o600"
    out = subprocess.run([*KITTIWAKE, "--config", str(conf), "loglevels", "smtpserver=trace",
                          "--json"], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == {"": "info", "smtpserver": "trace"}
    table = subprocess.run([*KITTIWAKE, "--config", str(conf), "loglevels"],
                           capture_output=True, text=True, check=True).stdout
    assert table.splitlines()[0].split() == ["package", "level"]
    assert "smtpserver  trace" in table
    bad = subprocess.run([*KITTIWAKE, "--config", str(conf), "loglevels", "dns=loud"],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.startswith("kittiwake: ") and \
        bad.stderr.count("\n") == 1


def test_sigterm_shuts_down_cleanly(server) -> None:  # type: ignore[no-untyped-def]
    proc, conf, _port, log = server
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    text = log.read_text()
    assert 'msg="signal received" signal=SIGTERM' in text and "kittiwake stopped" in text
    assert "Traceback" not in text
    assert not (conf.parent / "data" / "ctl").exists()
    # The resolver in the config does not answer: the start-up log says so.
    assert "DNSSEC status unknown" in text


def test_second_server_refuses_to_start(server) -> None:  # type: ignore[no-untyped-def]
    _proc, conf, _port, _log = server
    second = subprocess.run([*KITTIWAKE, "--config", str(conf), "serve"], capture_output=True,
                            text=True, timeout=30)
    assert second.returncode == 1
    assert "another kittiwake server is running" in second.stderr


def test_loglevels_without_server_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "kittiwake.conf").write_text('hostname = "x.example"\n')
    result = subprocess.run([*KITTIWAKE, "--config", str(tmp_path), "loglevels"],
                            capture_output=True, text=True, env={**os.environ})
    assert result.returncode == 1
    assert result.stderr.strip().startswith("kittiwake: cannot reach the running server")
    assert result.stderr.count("\n") == 1
