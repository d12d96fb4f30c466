"""``kittiwake export`` / ``import`` show their progress line once, then the summary."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from kittiwake.cli import progress as progress_module
from kittiwake.cli.main import cli
from kittiwake.cli.progress import Progress

MBOX = b"""From alice@example.org Mon Nov 23 10:00:00 2026
From: alice@example.org
Subject: first

one

From bob@example.org Tue Nov 24 11:30:00 2026
From: bob@example.org
Subject: second

two
"""


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    conf = tmp_path / "config"
    conf.mkdir()
    (conf / "kittiwake.conf").write_text('hostname = "mail.example.org"\ndata_dir = "../data"\n')
    (conf / "domains.conf").write_text("")
    for args in (["domain", "add", "example.org"],
                 ["account", "add", "alice", "alice@example.org"]):
        result = CliRunner().invoke(cli, ["--config", str(conf), *args])
        assert result.exit_code == 0, result.output
    source = tmp_path / "in.mbox"
    source.write_bytes(MBOX)
    result = CliRunner().invoke(cli, ["--config", str(conf), "import", "mbox", "alice", "Inbox",
                                      str(source)])
    assert result.exit_code == 0, result.output
    return conf


@pytest.mark.parametrize("fmt", ["mbox", "maildir"])
def test_export_prints_one_final_progress_line(config_dir: Path, tmp_path: Path,
                                               fmt: str) -> None:
    result = CliRunner().invoke(cli, ["--config", str(config_dir), "export", fmt, "alice",
                                      str(tmp_path / "out"), "Inbox"])
    assert result.exit_code == 0, result.output
    progress_lines = [line for line in result.stderr.splitlines()
                      if line.startswith("exported")]
    assert len(progress_lines) == 1, result.stderr
    assert re.fullmatch(r"exported 2 messages, [\d,]+/s", progress_lines[0])
    assert result.stdout.splitlines()[-1] == f"exported 2 messages to {tmp_path / 'out'}"


def test_import_prints_one_final_progress_line(config_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "again.mbox"
    source.write_bytes(MBOX)
    result = CliRunner().invoke(cli, ["--config", str(config_dir), "import", "mbox", "alice",
                                      "Again", str(source)])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("imported")]
    assert len(lines) == 1 and lines[0].startswith("imported 2 messages ("), result.stderr
    # Then the search index, with a progress line of its own: the messages are committed
    # first (pending for the index), so an interrupted indexing loses none of them.
    indexing = [line for line in result.stderr.splitlines() if line.startswith("indexed")]
    assert len(indexing) == 1 and indexing[0].startswith("indexed for search 2 messages"), \
        result.stderr
    assert re.fullmatch(r"indexed 2 messages for search in [\d.]+ s",
                        result.stdout.splitlines()[-1]), result.stdout
    from kittiwake.store import AccountStore
    from kittiwake.store.schema import INDEX_DONE

    store = AccountStore("alice", tmp_path / "data" / "accounts" / "alice")
    try:
        assert {r[0] for r in store.db.execute("SELECT indexed FROM message")} == {INDEX_DONE}
        assert [m.subject for m in store.search("two")] == ["second", "second"]
    finally:
        store.close()


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(progress_module, "time", fake)
    return fake


def stderr(capsys: pytest.CaptureFixture[str]) -> str:
    """What was written to stderr (captured: not a terminal, so a line per interval)."""
    return capsys.readouterr().err


def test_long_run_shows_a_line_per_interval_and_one_final_line(
        clock: FakeTime, capsys: pytest.CaptureFixture[str]) -> None:
    p = Progress("exported", interval=5.0)
    p.update(1)
    assert stderr(capsys) == ""  # not at the first item
    clock.now += 5.0
    p.update(2)
    clock.now += 1.0
    p.update(3)
    p.done()
    assert [line.split(",")[0] for line in stderr(capsys).splitlines()] == [
        "exported 2 messages", "exported 3 messages"]


def test_final_line_is_not_repeated_when_the_last_one_said_it(
        clock: FakeTime, capsys: pytest.CaptureFixture[str]) -> None:
    p = Progress("exported", interval=5.0)
    clock.now += 5.0
    p.update(7)
    p.done()
    assert len(stderr(capsys).splitlines()) == 1


def test_nothing_done_still_shows_the_final_line(
        clock: FakeTime, capsys: pytest.CaptureFixture[str]) -> None:
    Progress("exported").done()
    assert stderr(capsys) == "exported 0 messages, 0/s\n"
