"""A running `kittiwake serve`: submitted mail for remote recipients is queued durably
and visible through `kittiwake queue list`, also after the server was killed and
started again."""

from __future__ import annotations

import json
import smtplib
import ssl
import subprocess
from pathlib import Path

import trustme
from serve_helpers import KITTIWAKE, Served, silent_resolver, start_serve

MESSAGE = b"From: alice@example.org\r\nSubject: hello\r\n\r\nHi, queued.\r\n"


def _queued(base: list[str]) -> list[dict[str, object]]:
    """The rows of ``kittiwake queue list --json`` (one per queued recipient)."""
    listed = subprocess.run([*base, "queue", "list", "--json"], capture_output=True,
                            text=True, check=True).stdout
    return list(json.loads(listed)["queued"])


def _addresses(rows: list[dict[str, object]]) -> list[str]:
    return sorted(str(row["to"]) for row in rows)


def test_submitted_remote_mail_is_queued_and_survives_a_restart(tmp_path: Path) -> None:
    conf = tmp_path / "config"
    conf.mkdir()
    ca = trustme.CA()
    cert = ca.issue_cert("mail.example.org")
    cert.private_key_and_cert_chain_pem.write_to_path(str(conf / "cert.pem"))
    cert.private_key_pem.write_to_path(str(conf / "key.pem"))
    with silent_resolver() as resolver:
        def write_config(port: int) -> None:
            (conf / "kittiwake.conf").write_text(f"""
hostname = "mail.example.org"
data_dir = "../data"
[dns]
resolvers = ["{resolver}"]
timeout_seconds = 0.2
[listeners.public]
ips = ["127.0.0.1"]
submission = {{ enabled = true, port = {port} }}
[listeners.public.tls]
certificates = [{{ cert_file = "cert.pem", key_file = "key.pem" }}]
""")
        write_config(0)
        (conf / "domains.conf").write_text("")
        base = [*KITTIWAKE, "--config", str(conf)]
        subprocess.run([*base, "domain", "add", "example.org"], check=True,
                       capture_output=True)
        subprocess.run([*base, "account", "add", "alice", "alice@example.org"], check=True,
                       capture_output=True)
        subprocess.run([*base, "account", "setpassword", "alice"],
                       input=b"long enough secret\n", check=True, capture_output=True)
        served: Served = start_serve(conf, write_config, tmp_path / "serve.log")
        try:
            client_tls = ssl.create_default_context()
            ca.configure_trust(client_tls)
            client_tls.check_hostname = False  # we connect by IP; the chain is verified
            with smtplib.SMTP("127.0.0.1", served.port, timeout=10) as client:
                client.starttls(context=client_tls)
                client.login("alice@example.org", "long enough secret")
                refused = client.sendmail(
                    "alice@example.org", ["bob@remote.example", "carol@remote.example"],
                    MESSAGE)
            assert refused == {}
            rows = _queued(base)
            text = json.dumps(rows)
            assert "bob@remote.example" in text and "carol@remote.example" in text
            table = subprocess.run([*base, "queue", "list"], capture_output=True, text=True,
                                   check=True).stdout
            assert "bob@remote.example" in table and "remote.example" in table
        finally:
            # A crash right after the 250: no clean shutdown, no chance to flush.
            served.kill()

        # Started again on the same data: the same message, both recipients, same bytes.
        again = start_serve(conf, write_config, tmp_path / "serve2.log", port=served.port)
        try:
            after = _queued(base)
            assert _addresses(after) == _addresses(rows), (rows, after)
            assert _addresses(rows) == ["bob@remote.example", "carol@remote.example"]
            message_ids = {row["message_id"] for row in after}
            assert len(message_ids) == 1, after
            dumped = subprocess.run([*base, "queue", "dump", str(message_ids.pop())],
                                    capture_output=True, check=True).stdout
            assert dumped.endswith(MESSAGE), dumped
            assert again.proc.poll() is None
        finally:
            assert again.stop() == 0, again.text()
