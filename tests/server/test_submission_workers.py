"""Submission (587 STARTTLS, 465 implicit TLS) in the SMTP worker processes of a real
``kittiwake serve`` (kittiwake.server.smtpworkers).

What a user sees: mail submitted with AUTH PLAIN through a worker is queued
(by the server process, after its commit) and DKIM-signed with the domain's
selectors; wrong passwords spread over two workers are counted by one login
limiter, so they lock the address out as the same failures on one process
would; a worker killed in the middle of submissions loses none of the
messages it acknowledged.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import smtplib
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.submission import submit
from tests.server.serve_helpers import silent_resolver
from tests.server.test_smtp_workers import (
    _reap_workers,
    _wait,
    _workers,
    kill_a_worker_while_sending,
)
from tests.server.test_stop_restart import _read_reply
from tests.server.tls_helpers import (
    KITTIWAKE,
    PKI,
    TLSServe,
    _free_ports,
    launch_serve,
    write_tls_config,
)

from kittiwake import dkim
from kittiwake.dns import MockResolver
from kittiwake.queue.store import QueueStore
from kittiwake.sasl import new_client

PASSWORD = "a long enough secret"
SERVICES = ("submission", "submissions")
LOGIN_LIMITS = """
[limits.login]
ip_failures_before_delay = 4
ip_max_failures = 4
account_failures_before_delay = 100
max_delay_seconds = 0
"""


def _start(directory: Path, resolver: str, processes: int = 2) -> tuple[TLSServe, PKI]:
    """``kittiwake serve`` with submission and submissions listeners and N workers."""
    pki = PKI.create(directory / "pki")
    certificate = pki.issue(["localhost"], "ecdsa")
    config_dir = directory / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    for name, kind in (("ed", "ed25519"), ("rsa", "rsa")):
        (config_dir / f"{name}.pem").write_bytes(dkim.generate_key(kind))
    (config_dir / "domains.conf").write_text(
        '[domains."example.org".dkim]\nsign = ["ed", "rsa"]\n'
        '[domains."example.org".dkim.selectors.ed]\nprivate_key_file = "ed.pem"\n'
        '[domains."example.org".dkim.selectors.rsa]\nprivate_key_file = "rsa.pem"\n'
        '[accounts.alice]\ndomain = "example.org"\n'
        '[accounts.alice.destinations."alice@example.org"]\n')
    log = directory / "serve.log"
    password_set = False
    for _ in range(5):
        ports = dict(zip(SERVICES, _free_ports(len(SERVICES)), strict=True))
        write_tls_config(config_dir, [certificate], ports, resolver,
                         extra=f"smtp_processes = {processes}")
        conf = config_dir / "kittiwake.conf"
        conf.write_text(conf.read_text().replace(
            "max_connections_per_ip = 1000",
            "max_connections_per_ip = 1000\n"
            "smtp_connections_per_minute = [100000, 100000, 100000]") + LOGIN_LIMITS)
        if not password_set:
            subprocess.run([*KITTIWAKE, "--config", str(config_dir), "account",
                            "setpassword", "alice"], input=f"{PASSWORD}\n".encode(),
                           check=True, capture_output=True, timeout=60)
            password_set = True
        proc = launch_serve(config_dir, log)
        if proc is not None:
            return TLSServe(proc, ports, config_dir, directory / "data", log), pki
        assert "cannot listen" in log.read_text(errors="replace"), log.read_text()
    raise AssertionError("no free ports")


@pytest.fixture
def served(tmp_path: Path, request: pytest.FixtureRequest
           ) -> Iterator[tuple[TLSServe, ssl.SSLContext]]:
    """The server (``smtp_processes`` 2, or the test's parameter) and a client context."""
    processes = getattr(request, "param", 2)
    with silent_resolver() as resolver:  # the queue's deliveries wait: mail stays queued
        server, pki = _start(tmp_path, resolver, processes)
        context = ssl.create_default_context(cafile=str(pki.ca_file))
        context.check_hostname = False  # the certificate is for localhost, we dial 127.0.0.1
        try:
            yield server, context
        finally:
            server.stop()
            _reap_workers(server)


def _message(subject: str) -> bytes:
    return (f"From: alice@example.org\r\nTo: bob@remote.example\r\nSubject: {subject}\r\n"
            f"\r\nhello from {subject}\r\n").encode()


def _submit(server: TLSServe, tls: ssl.SSLContext, subject: str, implicit: bool) -> bool:
    """Submit one message with AUTH PLAIN; whether it got its 250."""
    port = server.ports["submissions" if implicit else "submission"]
    try:
        return submit(port, tls, implicit, _message(subject), PASSWORD, timeout=30) == {}
    except (OSError, smtplib.SMTPException):
        return False


def _queued(server: TLSServe) -> dict[str, bytes]:
    """The queued messages by subject."""
    store = QueueStore(server.data_dir / "queue", readonly=True)
    try:
        out = {}
        for message, _recipient in store.list():
            data = store.read(message.id)
            subject = next(line for line in data.split(b"\r\n")
                           if line.startswith(b"Subject: "))[9:].decode()
            assert subject not in out, f"{subject} queued twice"
            out[subject] = data
        return out
    finally:
        store.close()


def test_submission_through_workers_is_queued_and_dkim_signed(
        served: tuple[TLSServe, ssl.SSLContext]) -> None:
    server, tls = served
    assert len(_workers(server)) == 2, server.text()
    subjects = [f"{'465' if implicit else '587'}-{i}" for implicit in (False, True)
                for i in range(4)]
    for subject in subjects:
        assert _submit(server, tls, subject, implicit=subject.startswith("465")), server.text()
    queued = _queued(server)
    assert sorted(queued) == sorted(subjects)
    resolver = MockResolver()
    for name in ("ed", "rsa"):
        key = dkim.load_private_key((server.config_dir / f"{name}.pem").read_bytes())
        resolver.add("TXT", f"{name}._domainkey.example.org", dkim.dns_record(key))
    for subject, data in queued.items():
        results = asyncio.run(dkim.verify(resolver, data))
        assert sorted((r.selector, r.status) for r in results) == [
            ("ed", dkim.Status.PASS), ("rsa", dkim.Status.PASS)], (subject, results)
    text = server.text()
    # The sessions were the workers' (the server process listens on no SMTP port): the
    # queue writes were done for them by the server, one per message.
    queued_lines = [line for line in text.splitlines() if "msg=queued" in line]
    assert len(queued_lines) == len(subjects), text
    assert all("worker=smtp" in line and "service=submission" in line
               for line in queued_lines), text
    assert "Traceback" not in text, text


def _port_hex(port: int) -> str:
    return f"{port:04X}"


def _serving_pid(sock: socket.socket, server_port: int, pids: list[int]) -> int:
    """Which of ``pids`` holds the server side of the connection ``sock``."""
    client_port = sock.getsockname()[1]
    inode = ""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(":" + _port_hex(server_port)) and \
                fields[2].endswith(":" + _port_hex(client_port)):
            inode = fields[9]
    assert inode, "connection not found in /proc/net/tcp"
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    raise AssertionError("no worker holds the connection")


class Session:
    """One submission session on the STARTTLS port, after EHLO and STARTTLS."""

    def __init__(self, server: TLSServe, tls: ssl.SSLContext) -> None:
        port = server.ports["submission"]
        raw = socket.create_connection(("127.0.0.1", port), timeout=30)
        assert _read_reply(raw).startswith(b"220")
        self.pid = _serving_pid(raw, port, _workers(server))
        for command in (b"EHLO client.example", b"STARTTLS"):
            raw.sendall(command + b"\r\n")
            assert _read_reply(raw)[:1] == b"2"
        self.sock = tls.wrap_socket(raw)
        self.command(b"EHLO client.example")

    def command(self, line: bytes) -> bytes:
        self.sock.sendall(line + b"\r\n")
        return _read_reply(self.sock)

    def auth(self, password: str) -> bytes:
        token = base64.b64encode(f"\0alice@example.org\0{password}".encode())
        return self.command(b"AUTH PLAIN " + token)[:3]

    def scram(self, password: str) -> bytes:
        """AUTH SCRAM-SHA-256 (RFC 5802, RFC 7677): the final reply's code, after the
        client verified the server's signature (the server knows the stored keys)."""
        client = new_client("SCRAM-SHA-256", "alice@example.org", password)
        first = client.initial_response()
        assert first is not None
        reply = self.command(b"AUTH SCRAM-SHA-256 " + base64.b64encode(first))
        assert reply.startswith(b"334 "), reply
        reply = self.command(base64.b64encode(client.respond(base64.b64decode(reply[4:]))))
        if not reply.startswith(b"334 "):
            return reply[:3]
        client.finish(base64.b64decode(reply[4:]))  # raises unless the server proved it
        return self.command(b"")[:3]

    def close(self) -> None:
        self.sock.close()


def _on_both_workers(server: TLSServe, tls: ssl.SSLContext,
                     opened: list[Session]) -> list[Session]:
    """A fresh session on each worker (the kernel hands each connection to one of them:
    sessions are opened until both hold one); every session opened goes to ``opened``."""
    by_worker: dict[int, Session] = {}
    for _ in range(60):
        session = Session(server, tls)
        opened.append(session)
        by_worker.setdefault(session.pid, session)
        if len(by_worker) == 2:
            return list(by_worker.values())
    raise AssertionError("every connection went to one worker")


def test_failed_logins_on_two_workers_count_in_one_limiter(
        served: tuple[TLSServe, ssl.SSLContext]) -> None:
    server, tls = served
    opened: list[Session] = []
    try:
        one, two = _on_both_workers(server, tls, opened)
        # ip_max_failures = 4: three failures from this address, over both workers...
        assert [one.auth("wrong 1"), two.auth("wrong 2"), one.auth("wrong 3")] == \
            [b"535"] * 3
        # ...leave it below the limit: the right password works...
        assert two.auth(PASSWORD) == b"235"
        assert one.auth("wrong 4") == b"535"
        # ...and the fourth failure refuses the address on every worker, right password
        # or not, as four failures on one process would (each worker saw two).
        for session in _on_both_workers(server, tls, opened):
            assert session.auth(PASSWORD) == b"535"
    finally:
        for session in opened:
            session.close()
    assert 'msg="login refused: too many failures"' in server.text(), server.text()


def test_scram_exchanges_through_workers_are_the_servers(
        served: tuple[TLSServe, ssl.SSLContext]) -> None:
    server, tls = served
    opened: list[Session] = []
    try:
        # Several steps over the channel (server-first, server-final with the server's
        # signature, the client's empty line), on each worker.
        assert [s.scram(PASSWORD) for s in _on_both_workers(server, tls, opened)] == \
            [b"235", b"235"]
        assert [s.scram("wrong") for s in _on_both_workers(server, tls, opened)] == \
            [b"535", b"535"]
    finally:
        for session in opened:
            session.close()


def test_worker_killed_during_submissions_loses_no_acknowledged_message(
        served: tuple[TLSServe, ssl.SSLContext]) -> None:
    server, tls = served
    accepted, failed = kill_a_worker_while_sending(
        server, lambda subject: _submit(server, tls, subject, implicit=subject[1] in "13579"),
        senders=4, batch=10)
    queued = _queued(server)  # raises on a message queued twice
    for subject in accepted:
        assert subject in queued, subject
    assert set(queued) <= set(accepted) | set(failed)


@pytest.mark.parametrize("served", [1, 2], indirect=True,
                         ids=["one-process", "two-workers"])
def test_dkim_keys_are_read_again_on_sighup(served: tuple[TLSServe, ssl.SSLContext]) -> None:
    server, tls = served
    assert len(_workers(server)) == (0 if "smtp_processes = 1" in
                                     (server.config_dir / "kittiwake.conf").read_text() else 2)
    assert _submit(server, tls, "before", implicit=False), server.text()
    renewed = dkim.generate_key("ed25519")
    (server.config_dir / "ed.pem").write_bytes(renewed)
    server.proc.send_signal(signal.SIGHUP)
    resolver = MockResolver()
    resolver.add("TXT", "ed._domainkey.example.org",
                 dkim.dns_record(dkim.load_private_key(renewed)))
    sent = 0

    def signed_with_the_new_key() -> bool:
        # Every process signs with the new key: several submissions in a row all do.
        nonlocal sent
        subjects = []
        for _ in range(6):
            sent += 1
            subjects.append(f"after-{sent}")
            assert _submit(server, tls, subjects[-1], implicit=sent % 2 == 0), server.text()
        queued = _queued(server)
        return all(
            [r.status for r in asyncio.run(dkim.verify(resolver, queued[s]))
             if r.selector == "ed"] == [dkim.Status.PASS] for s in subjects)

    _wait(signed_with_the_new_key, timeout=60, what=server.text())
