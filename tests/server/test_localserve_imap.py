"""localserve serves the test mail over IMAP (1143, plain) and IMAPS (1993)."""

from __future__ import annotations

import imaplib
import random
import smtplib
import ssl
import subprocess
import sys
import time
from pathlib import Path

from kittiwake.cli.localserve import upgrade

KITTIWAKE = [sys.executable, "-m", "kittiwake.cli.main"]

OLD_CONFIG = """# kittiwake localserve: generated on first run; edit freely.
hostname = "localhost"

[listeners.local]
ips = ["127.0.0.1"]
smtp = { enabled = true, port = 1025 }
metrics = { enabled = true, port = 1081 }

[listeners.local.tls]
certificates = []
"""


def test_an_old_config_gains_the_imap_listeners(tmp_path: Path) -> None:
    path = tmp_path / "kittiwake.conf"
    path.write_text(OLD_CONFIG)
    assert upgrade(path) == ["imap", "imaps"]
    text = path.read_text()
    section = text.split("[listeners.local]\n", 1)[1].split("\n\n", 1)[0]
    assert "imap = { enabled = true, port = 1143, no_require_starttls = true }" in section
    assert "imaps = { enabled = true, port = 1993 }" in section
    assert upgrade(path) == []  # once only
    assert path.read_text() == text


PREVIOUS_VERSION = """# kittiwake localserve: generated on first run; edit freely.
hostname = "localhost"
data_dir = "../data"
shutdown_grace_seconds = 3
postmaster_account = "kittiwake"

[listeners.local]
ips = ["{ip}"]
hostname = "localhost"
smtp = {{ enabled = true, port = 1025 }}
submissions = {{ enabled = true, port = 1465 }}
submission = {{ enabled = true, port = 1587 }}
metrics = {{ enabled = true, port = 1081 }}

[listeners.local.tls]
certificates = [
  {{ cert_file = "certs/localserve.crt", key_file = "certs/localserve.key" }},
]
"""


def _start(directory: Path, ip: str, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        proc = subprocess.Popen([*KITTIWAKE, "localserve", "--dir", str(directory), "--ip", ip],
                                stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while "kittiwake started" not in log.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    return proc


def test_mail_sent_to_localserve_is_read_over_imap_and_imaps(tmp_path: Path) -> None:
    ip = f"127.0.{random.randint(1, 250)}.{random.randint(2, 250)}"
    directory = tmp_path / "ls"
    # A directory made before IMAP existed (its config as that version wrote it).
    (directory / "config").mkdir(parents=True)
    (directory / "config" / "kittiwake.conf").write_text(PREVIOUS_VERSION.format(ip=ip))
    (directory / "config" / "domains.conf").write_text(
        '[domains.localhost]\n[accounts.kittiwake]\ndomain = "localhost"\n'
        '[accounts.kittiwake.destinations."kittiwake@localhost"]\n'
        '[accounts.kittiwake.destinations."@localhost"]\n')
    proc = _start(directory, ip, tmp_path / "log")
    try:
        with smtplib.SMTP(ip, 1025, timeout=10) as client:
            client.sendmail("app@example.com", ["anyone@example.com"],
                            b"From: app@example.com\r\nSubject: your order\r\n\r\nthanks\r\n")
        with imaplib.IMAP4(ip, 1143, timeout=10) as imap:
            imap.login("kittiwake", "kittiwake")
            typ, data = imap.select("INBOX", readonly=True)
            assert (typ, data) == ("OK", [b"1"])
            typ, data = imap.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            assert data[0][1] == b"Subject: your order\r\n\r\n"
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # localserve's certificate is self-signed
        with imaplib.IMAP4_SSL(ip, 1993, ssl_context=context, timeout=10) as imap:
            imap.login("kittiwake@localhost", "kittiwake")
            typ, data = imap.status("INBOX", "(MESSAGES UNSEEN)")
            assert data == [b'"INBOX" (MESSAGES 1 UNSEEN 1)']
    finally:
        proc.terminate()
        proc.wait(timeout=15)
