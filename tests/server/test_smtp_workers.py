"""SMTP worker processes (kittiwake.server.smtpworkers) of a real ``kittiwake serve``.

What a user sees: mail to port 25 served by a worker lands in the mailbox
(with a 250 only after it is stored); the per-IP connection limit holds
across workers; a worker's counters show on the server's /metrics; a worker
killed in the middle of deliveries loses none of the messages it
acknowledged, leaves no spool file and is started again; when the server
is killed its workers exit by themselves; domains.conf changes reach them.
"""

from __future__ import annotations

import os
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.server.test_stop_restart import _read_reply, _subjects
from tests.server.tls_helpers import (
    KITTIWAKE,
    PKI,
    TLSServe,
    _free_ports,
    launch_serve,
    leaf_der,
    nxdomain_resolver,
    write_tls_config,
)

from kittiwake.server.tls import CertificateFiles


def _start(directory: Path, resolver: str, processes: int, per_ip: int = 1000,
           certificate: CertificateFiles | None = None,
           messages_per_minute: int = 100000) -> TLSServe:
    """``kittiwake serve`` with smtp (port 25 duty) and metrics listeners and N workers."""
    if certificate is None:
        certificate = PKI.create(directory / "pki").issue(["localhost"], "ecdsa")
    config_dir = directory / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "domains.conf").write_text(
        '[domains."example.org"]\n[accounts.alice]\ndomain = "example.org"\n'
        '[accounts.alice.destinations."alice@example.org"]\n')
    log = directory / "serve.log"
    for _ in range(5):
        ports = dict(zip(("smtp", "metrics"), _free_ports(2), strict=True))
        write_tls_config(config_dir, [certificate], ports, resolver,
                         extra=f"smtp_processes = {processes}")
        conf = config_dir / "kittiwake.conf"
        # Many sessions from 127.0.0.1 within a minute: rates out of the way.
        conf.write_text(conf.read_text().replace(
            "max_connections_per_ip = 1000",
            f"max_connections_per_ip = {per_ip}\n"
            "smtp_connections_per_minute = [100000, 100000, 100000]\n"
            f"smtp_messages_per_minute = [{messages_per_minute}, 100000, 100000]"))
        proc = launch_serve(config_dir, log)
        if proc is not None:
            return TLSServe(proc, ports, config_dir, directory / "data", log)
        assert "cannot listen" in log.read_text(errors="replace"), log.read_text()
    raise AssertionError("no free ports")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[TLSServe]:
    with nxdomain_resolver() as resolver:
        server = _start(tmp_path, resolver, processes=2)
        try:
            yield server
        finally:
            server.stop()
            _reap_workers(server)


def _workers(server: TLSServe) -> list[int]:
    """Pids of the server's SMTP worker processes."""
    out = []
    for task in Path(f"/proc/{server.proc.pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"kittiwake.server.smtpworker" in cmdline:
                out.append(int(child))
    return sorted(out)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _reap_workers(server: TLSServe) -> None:
    for pid in _workers(server):
        os.kill(pid, signal.SIGKILL)


_reply = _read_reply  # one complete SMTP reply (tests/server/test_stop_restart.py)


def _send(port: int, subject: str) -> bytes:
    """One message to alice; the reply to its data (b"" if the connection broke)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            if not _reply(sock).startswith(b"220"):
                return b""
            for command in (b"EHLO client.example.net", b"MAIL FROM:<bob@example.net>",
                            b"RCPT TO:<alice@example.org>", b"DATA"):
                sock.sendall(command + b"\r\n")
                if _reply(sock)[:1] not in (b"2", b"3"):
                    return b""
            sock.sendall(f"From: bob@example.net\r\nSubject: {subject}\r\n"
                         f"Message-ID: <{subject}@example.net>\r\n\r\nhello\r\n.\r\n".encode())
            return _reply(sock)
    except OSError:
        return b""


def _rcpt(port: int, address: bytes) -> bytes:
    """The reply to RCPT TO:<address>."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        _reply(sock)
        for command in (b"EHLO c.example", b"MAIL FROM:<x@example.net>"):
            sock.sendall(command + b"\r\n")
            _reply(sock)
        sock.sendall(b"RCPT TO:<" + address + b">\r\n")
        return _reply(sock)


def _metric(server: TLSServe, line_start: str) -> float:
    url = f"http://127.0.0.1:{server.ports['metrics']}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(line_start + " "):
                return float(line.split()[-1])
    raise AssertionError(f"no {line_start} on /metrics")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _wait(condition, timeout: float = 30, what: str = "") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_mail_through_workers_is_stored_and_counted_on_the_servers_metrics(
        served: TLSServe) -> None:
    workers = _workers(served)
    assert len(workers) == 2, served.text()
    port = served.ports["smtp"]
    # The server process itself does not accept: every session is a worker's.
    replies = [_send(port, f"m{i}") for i in range(6)]
    assert all(r.startswith(b"250") for r in replies), (replies, served.text())
    assert _subjects(served) == sorted(f"m{i}" for i in range(6))
    delivered = 'kittiwake_smtpserver_messages_total{result="delivered",service="smtp"}'
    _wait(lambda: _metric(served, delivered) == 6, what="worker counts on /metrics")
    # The deliveries are the server's (main process), with the session's connection id.
    text = served.text()
    assert text.count('msg="message accepted"') == 6 and "worker=smtp" in text, text
    assert "Traceback" not in text, text
    # The server froze its start-up objects out of the cyclic collector's way.
    frozen = re.search(r'msg="kittiwake started".*frozen_objects=(\d+)', text)
    assert frozen and int(frozen.group(1)) > 10_000, text


def test_connection_limit_per_ip_holds_across_worker_processes(tmp_path: Path) -> None:
    with nxdomain_resolver() as resolver:
        server = _start(tmp_path, resolver, processes=2, per_ip=2)
        try:
            port = server.ports["smtp"]
            held = []
            greetings = []
            for _ in range(3):  # the kernel spreads them over the workers
                sock = socket.create_connection(("127.0.0.1", port), timeout=30)
                held.append(sock)
                greetings.append(_reply(sock))
            assert [g[:3] for g in greetings] == [b"220", b"220", b"421"], greetings
            assert b"too many connections from your address" in greetings[2]
            for sock in held:
                sock.close()
            # Slots are given back when the sessions end.
            _wait(lambda: _send(port, "after").startswith(b"250"), what=server.text())
        finally:
            server.stop()
            _reap_workers(server)


def test_message_rate_holds_across_workers_and_sessions_without_mail_cost_none(
        tmp_path: Path) -> None:
    """The message rate is the server's: a port 25 connection's first message is
    counted when it opens (its token), given back if it closes without MAIL FROM;
    a second message in one session asks at its MAIL FROM."""
    with nxdomain_resolver() as resolver:
        server = _start(tmp_path, resolver, processes=2, messages_per_minute=4)
        try:
            port = server.ports["smtp"]
            for _ in range(6):  # sessions without a message use up nothing
                with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                    assert _reply(sock).startswith(b"220")
                    sock.sendall(b"EHLO client.example.net\r\n")
                    _reply(sock)
                    sock.sendall(b"QUIT\r\n")
                    assert _reply(sock).startswith(b"221")
            # Let the close notes reach the server before counting on them.
            time.sleep(0.5)
            assert [_send(port, f"r{i}")[:3] for i in range(3)] == [b"250"] * 3, server.text()
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                _reply(sock)
                replies = []
                for command in (b"EHLO client.example.net", b"MAIL FROM:<bob@example.net>",
                                b"RSET", b"MAIL FROM:<bob@example.net>"):
                    sock.sendall(command + b"\r\n")
                    replies.append(_reply(sock)[:3])
            # The 4th message of the minute fits (its token), the 5th does not.
            assert replies == [b"250", b"250", b"250", b"452"], (replies, server.text())
            assert _send(port, "over") == b""  # refused at MAIL FROM
        finally:
            server.stop()
            _reap_workers(server)


def kill_a_worker_while_sending(server: TLSServe, send: Callable[[str], bool], senders: int,
                                batch: int) -> tuple[list[str], list[str]]:
    """``senders`` threads send messages (``send(subject)``: whether it got its 250)
    while one SMTP worker is SIGKILLed once ``batch`` were accepted; they go on until
    the restarted worker's processes took ``batch`` more. The subjects acknowledged,
    and those that were not (each may or may not have been kept)."""
    accepted: list[str] = []
    failed: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def sender(n: int) -> None:
        i = 0
        while not stop.is_set():
            subject = f"s{n}-{i}"
            i += 1
            ok = send(subject)
            with lock:
                (accepted if ok else failed).append(subject)

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(senders)]
    for t in threads:
        t.start()
    try:
        _wait(lambda: len(accepted) >= batch, timeout=60, what=server.text())
        victim = _workers(server)[0]
        os.kill(victim, signal.SIGKILL)
        _wait(lambda: len(_workers(server)) == 2 and victim not in _workers(server),
              timeout=60, what=f"worker not restarted:\n{server.text()}")
        count = len(accepted)
        _wait(lambda: len(accepted) >= count + batch, timeout=60, what=server.text())
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    text = server.text()
    assert "smtp worker exited; starting it again" in text and "SIGKILL" in text, text
    return accepted, failed


def test_worker_killed_during_deliveries_loses_no_acknowledged_message(
        served: TLSServe) -> None:
    port = served.ports["smtp"]
    accepted, failed = kill_a_worker_while_sending(
        served, lambda subject: _send(port, subject).startswith(b"250"), senders=6, batch=20)
    stored = _subjects(served)
    # Every acknowledged message is there exactly once; one that got no 250 may or may
    # not be (the client will send it again).
    for subject in accepted:
        assert stored.count(subject) == 1, subject
    assert set(stored) <= set(accepted) | set(failed)
    # The killed worker's unfinished spool files are gone (the running processes'
    # reserves of empty files made ahead, smtpserver.spool.SpoolReserve, are not mail).
    def left() -> list[Path]:
        files = [p for p in (served.data_dir / "spool").rglob("*") if p.is_file()]
        return [p for p in files if p.parent.name != "reserve" or _size(p)]

    _wait(lambda: not left(), what="spool files left")
    served.stop()
    check = subprocess.run([*KITTIWAKE, "--config", str(served.config_dir), "account", "check",
                            "alice"], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


def test_workers_exit_when_the_server_is_killed(served: TLSServe) -> None:
    workers = _workers(served)
    assert len(workers) == 2
    served.proc.kill()
    served.proc.wait()
    _wait(lambda: not any(_alive(p) for p in workers), timeout=15,
          what="workers outlived their server")


def test_workers_follow_domains_conf_and_a_restart(served: TLSServe) -> None:
    port = served.ports["smtp"]
    domains = served.config_dir / "domains.conf"
    domains.write_text(domains.read_text()
                       + '[accounts.alice.destinations."bob@example.org"]\n')
    _wait(lambda: _rcpt(port, b"bob@example.org").startswith(b"250"),
          what="workers did not see the new address")
    before = _workers(served)
    restart = subprocess.run([*KITTIWAKE, "--config", str(served.config_dir), "restart"],
                             capture_output=True, text=True, timeout=90)
    assert restart.returncode == 0, restart.stderr + served.text()
    _wait(lambda: len(_workers(served)) == 2, timeout=60, what=served.text())
    assert not set(before) & set(_workers(served))
    assert not any(_alive(p) for p in before)
    assert _send(port, "after restart").startswith(b"250"), served.text()


def test_workers_serve_certificates_reloaded_on_sighup(tmp_path: Path) -> None:
    ca = PKI.create(tmp_path / "pki")
    certificate = ca.issue(["localhost"], "ecdsa")
    context = ssl.create_default_context(cafile=str(ca.ca_file))
    context.check_hostname = False  # the certificate is for localhost, we dial 127.0.0.1

    def served_certificate(port: int) -> bytes:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.starttls(context=context)
            peer = client.sock.getpeercert(True)  # type: ignore[union-attr]
            assert peer is not None
            return peer

    with nxdomain_resolver() as resolver:
        server = _start(tmp_path, resolver, processes=2, certificate=certificate)
        try:
            port = server.ports["smtp"]
            assert served_certificate(port) == leaf_der(certificate)
            renewed = ca.issue(["localhost"], "ecdsa", label="renewed")
            certificate.cert_file.write_bytes(renewed.cert_file.read_bytes())
            certificate.key_file.write_bytes(renewed.key_file.read_bytes())
            server.proc.send_signal(signal.SIGHUP)
            # Every worker takes the new files: many connections in a row all get them.
            _wait(lambda: all(served_certificate(port) == leaf_der(renewed)
                              for _ in range(8)), what=server.text())
        finally:
            server.stop()
            _reap_workers(server)
