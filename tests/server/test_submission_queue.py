"""A running `kittiwake serve`: submitted mail for remote recipients is queued durably
and visible through `kittiwake queue list`."""

from __future__ import annotations

import json
import smtplib
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import trustme

KITTIWAKE = [sys.executable, "-m", "kittiwake.cli.main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_submitted_remote_mail_is_queued(tmp_path: Path) -> None:
    conf = tmp_path / "config"
    conf.mkdir()
    ca = trustme.CA()
    cert = ca.issue_cert("mail.example.org")
    cert.private_key_and_cert_chain_pem.write_to_path(str(conf / "cert.pem"))
    cert.private_key_pem.write_to_path(str(conf / "key.pem"))
    port = free_port()
    (conf / "kittiwake.conf").write_text(f"""
hostname = "mail.example.org"
data_dir = "../data"
[dns]
resolvers = ["127.0.0.1:{free_port()}"]
timeout_seconds = 0.2
[listeners.public]
ips = ["127.0.0.1"]
submission = {{ enabled = true, port = {port} }}
[listeners.public.tls]
certificates = [{{ cert_file = "cert.pem", key_file = "key.pem" }}]
""")
    (conf / "domains.conf").write_text("")
    base = [*KITTIWAKE, "--config", str(conf)]
    subprocess.run([*base, "domain", "add", "example.org"], check=True, capture_output=True)
    subprocess.run([*base, "account", "add", "alice", "alice@example.org"], check=True,
                   capture_output=True)
    subprocess.run([*base, "account", "setpassword", "alice"], input=b"long enough secret\n",
                   check=True, capture_output=True)
    log = tmp_path / "serve.log"
    with open(log, "wb") as log_file:
        proc = subprocess.Popen([*base, "serve"], stderr=log_file, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while "kittiwake started" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        client_tls = ssl.create_default_context()
        ca.configure_trust(client_tls)
        client_tls.check_hostname = False  # we connect by IP; the chain is still verified
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.starttls(context=client_tls)
            client.login("alice@example.org", "long enough secret")
            refused = client.sendmail(
                "alice@example.org", ["bob@remote.example", "carol@remote.example"],
                b"From: alice@example.org\r\nSubject: hello\r\n\r\nHi\r\n")
        assert refused == {}
        listed = subprocess.run([*base, "queue", "list", "--json"], capture_output=True,
                                text=True, check=True).stdout
        rows = json.loads(listed)
        text = json.dumps(rows)
        assert "bob@remote.example" in text and "carol@remote.example" in text
        table = subprocess.run([*base, "queue", "list"], capture_output=True, text=True,
                               check=True).stdout
        assert "bob@remote.example" in table and "remote.example" in table
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    # Still there after a restart: the queue is durable.
    assert any((tmp_path / "data" / "queue" / "msg").rglob("*"))
