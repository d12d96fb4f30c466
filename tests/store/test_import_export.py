"""Import and export through the CLI, as an administrator runs them."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from kittiwake.cli.main import cli
from kittiwake.store import AccountStore

MBOX = b"""From alice@example.org Mon Nov 23 10:00:00 2026
From: alice@example.org
Subject: first
Status: RO
X-Status: AF
X-Keywords: $Label1, Work

Hello
>From the quoted line
From inside a paragraph is fine

From bob@example.org Tue Nov 24 11:30:00 2026
From: bob@example.org
Subject: second
Status: O

Second body
"""


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    conf = tmp_path / "config"
    conf.mkdir()
    (conf / "kittiwake.conf").write_text('hostname = "mail.example.org"\ndata_dir = "../data"\n')
    (conf / "domains.conf").write_text("")
    runner = CliRunner()
    for args in (["domain", "add", "example.org"], ["account", "add", "alice",
                                                    "alice@example.org"]):
        result = runner.invoke(cli, ["--config", str(conf), *args])
        assert result.exit_code == 0, result.output
    return conf


def run(config_dir: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--config", str(config_dir), *args])
    assert result.exit_code == 0, result.output
    return result.output


def open_store(config_dir: Path) -> AccountStore:
    return AccountStore("alice", config_dir.parent / "data" / "accounts" / "alice")


def test_mbox_import_keeps_flags_dates_and_unquotes(config_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.mbox"
    source.write_bytes(MBOX)
    out = run(config_dir, "import", "mbox", "alice", "Old", str(source))
    assert "imported 2 messages" in out and "skipped 0" in out
    store = open_store(config_dir)
    first, second = store.messages("Old")
    assert first.flags.names() == ["\\Seen", "\\Answered", "\\Flagged", "$Label1", "Work"]
    assert second.flags.names() == []
    data = store.read(first.id)
    assert b"Status:" not in data and b"X-Keywords" not in data
    assert b"\r\nFrom the quoted line\r\n" in data
    assert b"\r\nFrom inside a paragraph is fine\r\n" in data
    assert data.endswith(b"fine\r\n")
    assert first.received == 1795428000000  # Mon Nov 23 10:00:00 2026 UTC
    store.close()


@pytest.mark.parametrize("fmt", ["mbox", "maildir"])
def test_export_then_reimport_gives_same_messages_and_flags(config_dir: Path, tmp_path: Path,
                                                            fmt: str) -> None:
    source = tmp_path / "in.mbox"
    source.write_bytes(MBOX)
    run(config_dir, "import", "mbox", "alice", "Inbox", str(source))
    export_dir = tmp_path / "export"
    run(config_dir, "export", fmt, "alice", str(export_dir), "Inbox")
    path = export_dir / ("Inbox.mbox" if fmt == "mbox" else "Inbox")
    run(config_dir, "import", fmt, "alice", "Again", str(path))
    store = open_store(config_dir)
    original = [(store.read(m.id), m.flags, m.received // 1000) for m in store.messages("Inbox")]
    again = [(store.read(m.id), m.flags, m.received // 1000) for m in store.messages("Again")]
    assert again == original
    store.close()


def test_archive_member_paths_cannot_escape(config_dir: Path, tmp_path: Path) -> None:
    archive = tmp_path / "evil.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("../../etc/evil.mbox", "/abs/path/box.mbox", "ok/cur/1.x:2,S"):
            data = MBOX if name.endswith(".mbox") else b"Subject: md\n\nbody\n"
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    out = run(config_dir, "import", "mbox", "alice", "Arch", str(archive))
    assert "imported 5 messages" in out
    store = open_store(config_dir)
    names = {m.name for m in store.mailboxes()}
    assert {"Arch/etc/evil.mbox", "Arch/abs/path/box.mbox", "Arch/ok"} <= names
    assert not any(".." in n for n in names)
    assert store.messages("Arch/ok")[0].flags.names() == ["\\Seen"]
    store.close()
    assert not (tmp_path / "etc").exists()


def test_wrong_format_is_one_line(config_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.mbox"
    source.write_bytes(MBOX)
    result = CliRunner().invoke(cli, ["--config", str(config_dir), "import", "maildir", "alice",
                                      "X", str(source)])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and "did you mean `import mbox`" in result.output


def test_account_check_and_list(config_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.mbox"
    source.write_bytes(MBOX)
    run(config_dir, "import", "mbox", "alice", "Inbox", str(source))
    assert "no problems found" in run(config_dir, "account", "check", "alice")
    listing = run(config_dir, "account", "list")
    assert listing.splitlines()[0].split() == ["account", "addresses", "messages", "size",
                                               "password"]
    assert listing.splitlines()[1].split()[:3] == ["alice", "alice@example.org", "2"]
    # Break a count behind the store's back: check reports it, repair fixes it.
    store = open_store(config_dir)
    store.db.execute("UPDATE mailbox SET messages = 7 WHERE name = 'Inbox'")
    store.close()
    result = CliRunner().invoke(cli, ["--config", str(config_dir), "account", "check", "alice"])
    assert result.exit_code == 1 and "mailbox Inbox: counts" in result.output
    run(config_dir, "account", "check", "alice", "--repair")
    assert "no problems found" in run(config_dir, "account", "check", "alice")


def test_setpassword_stores_only_derived_secrets(config_dir: Path) -> None:
    from kittiwake.sasl import Credentials, verify_password

    result = CliRunner().invoke(cli, ["--config", str(config_dir), "account", "setpassword",
                                      "alice"], input="correct horse battery\n")
    assert result.exit_code == 0, result.output
    store = open_store(config_dir)
    stored = store.credentials()
    store.close()
    assert stored is not None and "correct horse battery" not in stored
    creds = Credentials.from_json(stored)
    assert verify_password(creds, "correct horse battery")
    assert not verify_password(creds, "correct horse battery!")
    short = CliRunner().invoke(cli, ["--config", str(config_dir), "account", "setpassword",
                                     "alice"], input="short\n")
    assert short.exit_code == 1 and "too short" in short.output


def test_address_and_account_edits(config_dir: Path) -> None:
    run(config_dir, "address", "add", "al@example.org", "alice")
    run(config_dir, "address", "add", "@example.org", "alice")
    dup = CliRunner().invoke(cli, ["--config", str(config_dir), "address", "add",
                                   "AL@example.org", "alice"])
    assert dup.exit_code == 1 and "already belongs to account alice" in dup.output
    unknown = CliRunner().invoke(cli, ["--config", str(config_dir), "account", "add", "bob",
                                       "bob@nowhere.example"])
    assert unknown.exit_code == 1
    assert "domain 'nowhere.example' of 'bob@nowhere.example' is not configured" in unknown.output
    run(config_dir, "address", "rm", "al@example.org")
    text = (config_dir / "domains.conf").read_text()
    assert "al@example.org" not in text.replace("alice@example.org", "")
    assert '"@example.org"' in text
    run(config_dir, "account", "rm", "alice")
    assert "alice" not in (config_dir / "domains.conf").read_text()
