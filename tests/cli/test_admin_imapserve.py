"""kittiwake admin imapserve: a PREAUTH IMAP session on stdin/stdout (for SSH tunnels)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kittiwake.cli.localserve import setup
from kittiwake.store import AccountStore
from kittiwake.store.store import account_dir

KITTIWAKE = [sys.executable, "-m", "kittiwake.cli.main"]
MSG = b"From: a@example.org\r\nSubject: over ssh\r\n\r\nhello\r\n"


def test_preauth_session_reads_the_account(tmp_path: Path) -> None:
    setup(tmp_path, "127.0.0.1")
    store = AccountStore("kittiwake", account_dir(tmp_path / "data", "kittiwake"))
    store.deliver("Inbox", MSG)
    store.close()
    out = subprocess.run(
        [*KITTIWAKE, "--config", str(tmp_path / "config"), "admin", "imapserve", "kittiwake"],
        input=b"a SELECT INBOX\r\nb FETCH 1 BODY.PEEK[]\r\nc LOGOUT\r\n",
        capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split(b"\r\n")
    assert lines[0].startswith(b"* PREAUTH [CAPABILITY IMAP4rev1 IMAP4rev2")
    assert b"* 1 EXISTS" in lines
    assert b"* 1 FETCH (BODY[] {%d}" % len(MSG) in out.stdout and MSG in out.stdout
    assert b"c OK" in out.stdout
    assert b"level=" not in out.stdout  # logs go to stderr, never into the protocol


def test_unknown_account_is_one_line(tmp_path: Path) -> None:
    setup(tmp_path, "127.0.0.1")
    out = subprocess.run(
        [*KITTIWAKE, "--config", str(tmp_path / "config"), "admin", "imapserve", "ghost"],
        input="", capture_output=True, timeout=30, text=True)
    assert out.returncode == 1
    assert out.stderr.strip() == ("kittiwake: no account 'ghost' in domains.conf"
                                  " (known: kittiwake)")
