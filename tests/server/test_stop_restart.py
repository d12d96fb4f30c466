"""``kittiwake stop`` and ``kittiwake restart`` of a real serve with SMTP transactions open.

The promise: a 250 is never lost, an unfinished transaction gets a temporary
error (421, the sender retries), and during a restart no connection is
refused: the new program takes over the listening sockets, connections that
arrive meanwhile wait in the kernel's queue.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from tests.server.tls_helpers import (
    KITTIWAKE,
    PKI,
    TLSServe,
    nxdomain_resolver,
    start_tls_serve,
)

from kittiwake.store import AccountStore


def _read_reply(sock: socket.socket) -> bytes:
    """One complete SMTP reply (all its lines)."""
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk
        lines = data.split(b"\r\n")
        if len(lines) > 1 and len(lines[-2]) >= 4 and lines[-2][3:4] == b" ":
            return data


def _open_transaction(port: int, subject: str) -> socket.socket:
    """A session in DATA with half the message sent."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    assert _read_reply(sock).startswith(b"220")
    for command, code in ((b"EHLO client.example.net", b"250"),
                          (b"MAIL FROM:<bob@example.net>", b"250"),
                          (b"RCPT TO:<alice@example.org>", b"250"),
                          (b"DATA", b"354")):
        sock.sendall(command + b"\r\n")
        reply = _read_reply(sock)
        assert reply.startswith(code), (command, reply)
    sock.sendall(f"From: bob@example.net\r\nSubject: {subject}\r\n\r\nfirst half\r\n".encode())
    return sock


def _send_message(port: int, subject: str) -> bytes:
    sock = _open_transaction(port, subject)
    with sock:
        sock.sendall(b"second half\r\n.\r\n")
        return _read_reply(sock)


def _subjects(server: TLSServe) -> list[str]:
    store = AccountStore("alice", server.data_dir / "accounts" / "alice")
    try:
        return sorted(m.subject for m in store.messages("Inbox"))
    finally:
        store.close()


def _wait_for_log(server: TLSServe, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while text not in server.text():
        assert time.monotonic() < deadline, f"no {text!r} in the log:\n{server.text()}"
        time.sleep(0.05)


@pytest.fixture
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    ca = PKI.create(tmp_path / "pki")
    with nxdomain_resolver() as resolver:
        served = start_tls_serve(tmp_path, [ca.issue(["localhost"], "ecdsa")], resolver,
                                 services=("smtp",))
        try:
            yield served
        finally:
            served.stop()


def test_restart_finishes_or_defers_open_transactions_and_refuses_no_connection(
        server: TLSServe) -> None:
    port = server.ports["smtp"]
    finishing = _open_transaction(port, "finished during the restart")
    abandoned = _open_transaction(port, "never finished")
    restart = subprocess.Popen([*KITTIWAKE, "--config", str(server.config_dir), "restart"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_log(server, "restart requested")
    # A connection while the old program finishes its sessions: queued, not refused.
    during: list[bytes] = []
    late = threading.Thread(target=lambda: during.append(_send_message(port, "sent mid-restart")))
    late.start()
    finishing.sendall(b"second half\r\n.\r\n")
    assert _read_reply(finishing).startswith(b"250"), server.text()
    finishing.close()
    # The abandoned one outlives the grace time (3 s): a temporary error, never a 250.
    reply = _read_reply(abandoned)
    assert reply.startswith(b"421"), reply
    abandoned.close()
    out, err = restart.communicate(timeout=60)
    assert restart.returncode == 0, err
    assert out.startswith(f"kittiwake restarted (pid {server.proc.pid})"), out
    late.join(timeout=60)
    assert during and during[0].startswith(b"250"), during
    assert server.proc.poll() is None, server.text()
    assert _send_message(port, "after the restart").startswith(b"250")
    assert _subjects(server) == ["after the restart", "finished during the restart",
                                 "sent mid-restart"]
    # The new program answers (ping) while its SMTP workers still start; it logs
    # "kittiwake started" once they all do.
    deadline = time.monotonic() + 60
    while server.text().count("kittiwake started") < 2:
        assert time.monotonic() < deadline, server.text()
        time.sleep(0.05)
    text = server.text()
    assert text.count("kittiwake started") == 2 and "Traceback" not in text, text


def test_stop_waits_for_the_server_to_exit(server: TLSServe) -> None:
    port = server.ports["smtp"]
    open_session = _open_transaction(port, "finished while stopping")
    stop = subprocess.Popen([*KITTIWAKE, "--config", str(server.config_dir), "stop"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_log(server, "stop requested")
    open_session.sendall(b"second half\r\n.\r\n")
    assert _read_reply(open_session).startswith(b"250")
    open_session.close()
    out, err = stop.communicate(timeout=60)
    assert stop.returncode == 0, err
    assert out == f"kittiwake stopped (pid {server.proc.pid})\n"
    assert server.proc.wait(timeout=5) == 0
    assert "kittiwake stopped" in server.text()
    assert _subjects(server) == ["finished while stopping"]
    again = subprocess.run([*KITTIWAKE, "--config", str(server.config_dir), "stop"],
                           capture_output=True, text=True)
    assert again.returncode == 1 and again.stderr.count("\n") == 1, again.stderr
