"""``kittiwake queue list`` with the server stopped: the stored queue, read-only."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from click.testing import CliRunner
from queue_helpers import envelope

from kittiwake.cli.main import cli
from kittiwake.queue import DeliveryError, Outcome, Queue


def _config(root: Path) -> Path:
    config_dir = root / "config"
    config_dir.mkdir()
    (config_dir / "kittiwake.conf").write_text(
        'hostname = "mail.example.org"\ndata_dir = "../data"\n')
    return config_dir


def _fill(data_dir: Path) -> tuple[int, int]:
    async def fill() -> tuple[int, int]:
        queue = Queue(data_dir)
        try:
            m1 = await queue.enqueue(envelope("bob@example.net", account="alice"), b"1")
            m2 = await queue.enqueue(envelope("carol@done.example"), b"2")
            (r1,) = await queue.recipients(m1.id)
            await queue.record_result([r1.id], Outcome.TEMPORARY,
                                      DeliveryError(451, "4.4.1", "greylisted", "mx.example.net"))
            (r2,) = await queue.recipients(m2.id)
            await queue.record_result([r2.id], Outcome.OK, None)
            return m1.id, m2.id
        finally:
            queue.close()
    return asyncio.run(fill())


def _digest(directory: Path) -> dict[str, str]:
    """The database and message files (SQLite may leave an empty -wal and -shm beside)."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*"))
            if p.is_file() and not p.name.endswith(("-wal", "-shm"))}


def test_list_of_a_stopped_server_reads_the_database(tmp_path: Path) -> None:
    config_dir = _config(tmp_path)
    m1, m2 = _fill(tmp_path / "data")
    before = _digest(tmp_path / "data" / "queue")
    result = CliRunner().invoke(cli, ["--config", str(config_dir), "queue", "list", "--all"])
    assert result.exit_code == 0, result.output
    queue_dir = (tmp_path / "data" / "queue").resolve()
    assert result.stderr == (f"the server is not running; showing the queue as stored in"
                             f" {queue_dir}\n")
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["id", "age", "from", "to"]
    assert lines[1].split()[0] == str(m1) and "bob@example.net" in lines[1]
    assert "mx.example.net: 451 4.4.1 greylisted" in lines[1]
    assert any(line.split()[0] == str(m2) and "carol@done.example" in line and
               "delivered" in line for line in lines[3:])
    # Read-only: the database and its files are exactly as the server left them.
    assert _digest(tmp_path / "data" / "queue") == before
    wal = tmp_path / "data" / "queue" / "index.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0

    as_json = CliRunner().invoke(cli, ["--config", str(config_dir), "queue", "list", "--json",
                                       "--to-domain", "example.net"])
    assert as_json.exit_code == 0
    assert '"to": "bob@example.net"' in as_json.stdout and "carol" not in as_json.stdout


def test_list_of_a_server_that_never_queued(tmp_path: Path) -> None:
    config_dir = _config(tmp_path)
    result = CliRunner().invoke(cli, ["--config", str(config_dir), "queue", "list"])
    assert result.exit_code == 0
    assert result.stdout == "queue is empty\n"
    assert result.stderr.startswith("the server is not running; no queue database at")
    assert not (tmp_path / "data" / "queue").exists()


def test_other_commands_still_need_the_server(tmp_path: Path) -> None:
    config_dir = _config(tmp_path)
    result = CliRunner().invoke(cli, ["--config", str(config_dir), "queue", "kick"])
    assert result.exit_code == 1 and "cannot reach the running server" in result.stderr
