"""systemd readiness (``Type=notify``) seen from a unix datagram socket as ``$NOTIFY_SOCKET``."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
from tests.server.tls_helpers import (
    KITTIWAKE,
    PKI,
    leaf_der,
    nxdomain_resolver,
    start_tls_serve,
)

from kittiwake.server import sdnotify
from kittiwake.server.systemd import unit_text


def _receive(sock: socket.socket, timeout: float = 30) -> dict[str, str]:
    sock.settimeout(timeout)
    data = sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.splitlines())


def test_notify_formats_and_abstract_socket_name() -> None:
    name = f"kittiwake-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        assert sdnotify.notify(sdnotify.ready("up"), {"NOTIFY_SOCKET": "@" + name})
        assert _receive(sock) == {"READY": "1", "STATUS": "up"}
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        assert sdnotify.notify(sdnotify.reloading(), {"NOTIFY_SOCKET": "@" + name})
        message = _receive(sock)
        assert message["RELOADING"] == "1"
        assert before <= int(message["MONOTONIC_USEC"]) <= before + 10_000_000
    assert not sdnotify.notify(sdnotify.stopping(), {})


def test_serve_notifies_ready_reloading_and_stopping(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    ca = PKI.create(tmp_path / "pki")
    certificate = ca.issue(["localhost"], "ecdsa")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, \
            nxdomain_resolver() as resolver:
        sock.bind(str(path))
        env = {**os.environ, "NOTIFY_SOCKET": str(path)}
        server = start_tls_serve(tmp_path, [certificate], resolver, services=("imaps",),
                                 env=env)
        try:
            ready = _receive(sock)
            assert ready["READY"] == "1", ready
            assert "listening" in server.text(), "READY=1 comes after the listeners are bound"
            port = server.ports["imaps"]
            context = ssl.create_default_context(cafile=str(ca.ca_file))
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                    context.wrap_socket(raw, server_hostname="localhost") as before:
                assert before.getpeercert(True) == leaf_der(certificate)
                # SIGHUP with changed certificate files: new handshakes get the new one.
                renewed = ca.issue(["localhost"], "ecdsa", label="renewed")
                certificate.cert_file.write_bytes(renewed.cert_file.read_bytes())
                certificate.key_file.write_bytes(renewed.key_file.read_bytes())
                server.proc.send_signal(signal.SIGHUP)
                reloading = _receive(sock)
                assert reloading["RELOADING"] == "1" and int(reloading["MONOTONIC_USEC"]) > 0
                assert _receive(sock)["READY"] == "1"
                with socket.create_connection(("127.0.0.1", port), timeout=10) as raw2, \
                        context.wrap_socket(raw2, server_hostname="localhost") as after:
                    assert after.getpeercert(True) == leaf_der(renewed)
                    assert after.recv(100).startswith(b"* OK")
                assert before.recv(4096).startswith(b"* OK")
                before.sendall(b"a NOOP\r\n")
                assert b"a OK" in before.recv(4096), "the open connection goes on"
            subprocess.run([*KITTIWAKE, "--config", str(server.config_dir), "restart"],
                           check=True, capture_output=True, timeout=60)
            assert _receive(sock)["RELOADING"] == "1", "restart: reloading, then ready"
            assert _receive(sock)["READY"] == "1"
            server.proc.terminate()
            assert _receive(sock)["STOPPING"] == "1"
            assert server.proc.wait(timeout=20) == 0
        finally:
            server.stop()


@pytest.mark.integration
def test_unit_text_is_a_valid_hardened_notify_unit(tmp_path: Path) -> None:
    (tmp_path / "kittiwake.conf").write_text(
        'hostname = "mail.example.org"\ndata_dir = "/var/lib/kittiwake"\nuser = "kittiwake"\n')
    executable = Path(KITTIWAKE[0]).with_name("kittiwake")
    assert executable.exists(), executable
    unit = unit_text(str(executable), tmp_path / "kittiwake.conf")
    lines = unit.splitlines()
    assert "Type=notify" in lines
    assert f"ExecStart={executable} --config {tmp_path} serve" in lines
    assert "ExecReload=/bin/kill -HUP $MAINPID" in lines
    assert "Restart=on-failure" in lines
    assert f"ReadWritePaths=/var/lib/kittiwake {tmp_path}" in lines
    assert "ProtectSystem=strict" in lines and "NoNewPrivileges=yes" in lines
    assert not any(line.startswith("User=") for line in lines), "serve drops privileges itself"
    assert "CAP_NET_BIND_SERVICE" in unit and "CAP_SETUID" in unit
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze missing: install the Debian package systemd"
    (tmp_path / "kittiwake.service").write_text(unit)
    verify = subprocess.run([analyze, "verify", str(tmp_path / "kittiwake.service")],
                            capture_output=True, text=True)
    assert (verify.returncode, verify.stdout + verify.stderr) == (0, ""), verify.stderr


def test_who_to_run_as() -> None:
    from kittiwake.server.privileges import PrivilegeError, run_as

    with pytest.raises(PrivilegeError) as exc:
        run_as("", euid=0, environ={})
    assert str(exc.value).startswith("kittiwake.conf: user: empty")
    assert "\n" not in str(exc.value)
    assert run_as("", euid=0, environ={"KITTIWAKE_ALLOW_ROOT": "1"}) is None
    assert run_as("kittiwake", euid=1000, environ={}) is None
    with pytest.raises(PrivilegeError, match="no user 'no-such-user-here'"):
        run_as("no-such-user-here", euid=0, environ={})
    with pytest.raises(PrivilegeError, match="is root"):
        run_as("root", euid=0, environ={})
