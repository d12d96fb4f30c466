"""SIGTERM while localserve sessions wait on "timeout" addresses: quiet, clean shutdown."""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

KITTIWAKE = [sys.executable, "-m", "kittiwake.cli.main"]


def _read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _hanging_session(ip: str, commands: bytes, ready: bytes) -> socket.socket:
    sock = socket.create_connection((ip, 1025), timeout=20)
    _read_until(sock, b"220 ")
    sock.sendall(b"EHLO client.example\r\n" + commands)
    _read_until(sock, ready)
    return sock


def test_sigterm_with_timeout_sessions_open(tmp_path: Path) -> None:
    ip = f"127.0.{random.randint(1, 250)}.{random.randint(2, 250)}"
    log = tmp_path / "log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([*KITTIWAKE, "localserve", "--dir", str(tmp_path / "ls"),
                                 "--ip", ip], stdout=out, stderr=subprocess.STDOUT)
    sessions: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 30
        while "kittiwake started" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        sessions.append(_hanging_session(
            ip, b"MAIL FROM:<mailfromtimeout@example.com>\r\n", b"250 AUTH"))
        sessions.append(_hanging_session(
            ip, b"MAIL FROM:<a@example.com>\r\nRCPT TO:<rcpttotimeout@localhost>\r\n",
            b"250 2.1.0"))
        data = _hanging_session(
            ip, b"MAIL FROM:<a@example.com>\r\nRCPT TO:<timeout@localhost>\r\nDATA\r\n",
            b"354 ")
        data.sendall(b"Subject: hi\r\n\r\nhello\r\n.\r\n")
        sessions.append(data)
        while log.read_text().count("not answering, as the address asked") < 3:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        for sock in sessions:
            rest = _read_until(sock, b"\r\n\r\n")  # to EOF
            assert rest.endswith(b"421 4.3.2 localhost service shutting down\r\n"), rest
    finally:
        for sock in sessions:
            sock.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert "kittiwake stopped" in text
    assert "Traceback" not in text and "level=error" not in text, text
    assert text.count("connection closed by shutdown") == 3
    # The banner says which address triggers what, and what submission does.
    assert 'MAIL FROM address: only with prefix "mailfrom"' in text
    assert "On submission (1587/1465) mail is queued first" in text
