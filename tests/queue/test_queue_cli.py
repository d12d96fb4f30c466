"""``kittiwake queue ...`` against an in-process control server (no ``kittiwake serve``)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from queue_helpers import T0, Clock, envelope

from kittiwake.cli.main import cli
from kittiwake.queue import DeliveryError, Filter, Outcome, Queue
from kittiwake.server.control import ControlServer
from kittiwake.server.queuecontrol import register_control


class Running:
    """A queue and its control server on an event loop in a thread."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config_dir = root / "config"
        self.config_dir.mkdir()
        (self.config_dir / "kittiwake.conf").write_text(
            'hostname = "mail.example.org"\ndata_dir = "../data"\n')
        # Hold rules name accounts; the CLI checks them against domains.conf.
        (self.config_dir / "domains.conf").write_text(
            '[domains."example.org"]\n[accounts.bob]\ndomain = "example.org"\n'
            '[accounts.bob.destinations."bob@example.org"]\n')
        self.clock = Clock(T0)
        self.queue = Queue(root / "data", clock=self.clock)
        self.loop = asyncio.new_event_loop()
        self.server = ControlServer(root / "data" / "ctl")
        register_control(self.server, self.queue)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.run(self.server.start())

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def stop(self) -> None:
        self.run(self.server.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
        self.queue.close()

    def kittiwake(self, *args: str) -> Any:
        return CliRunner().invoke(cli, ["--config", str(self.config_dir), *args])


@pytest.fixture
def running() -> Iterator[Running]:
    root = Path(tempfile.mkdtemp(prefix="kwq"))  # short: Unix socket paths are limited
    r = Running(root)
    try:
        yield r
    finally:
        r.stop()
        shutil.rmtree(root)


def test_list_table(running: Running) -> None:
    q = running.queue
    m1 = running.run(q.enqueue(envelope("bob@example.net", account="alice"), b"1"))
    m2 = running.run(q.enqueue(envelope("carol@slow.example", mail_from=""), b"2"))
    (r1,) = running.run(q.recipients(m1.id))
    running.run(q.record_result([r1.id], Outcome.TEMPORARY, DeliveryError(
        451, "4.4.1", "greylisted, please try again later " * 3, "mx.example.net")))
    running.run(q.hold(Filter(ids=(m2.id,))))
    running.clock.advance(timedelta(minutes=3))
    result = running.kittiwake("queue", "list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["id", "age", "from", "to", "attempts", "next", "last", "error",
                                "held"]
    assert lines[1].split()[:6] == [str(m1.id), "3m", "alice@example.org", "bob@example.net",
                                    "1", "in"]
    assert lines[1].split()[6] in ("4m", "3m")  # 7.5 min ± 5% after the attempt, 3 min ago
    assert "mx.example.net: 451 4.4.1 greylisted" in lines[1] and "…" in lines[1]
    assert lines[2].split() == [str(m2.id), "3m", "<>", "carol@slow.example", "0", "now", "-",
                                "held"]
    # Columns are aligned: every row starts its "to" column at the same offset.
    to_col = lines[0].index("to ")
    assert lines[1][to_col:].startswith("bob@") and lines[2][to_col:].startswith("carol@")

    result = running.kittiwake("queue", "list", "--json", "--to-domain", "slow.example")
    assert result.exit_code == 0
    assert '"to": "carol@slow.example"' in result.output and "bob@" not in result.output


def test_hold_release_kick_drop_dump(running: Running) -> None:
    q = running.queue
    m = running.run(q.enqueue(envelope("a@one.example", "b@two.example"), b"raw\r\nbytes\xff"))
    result = running.kittiwake("queue", "hold")
    assert result.exit_code == 1 and "say which messages to hold" in result.output
    assert running.kittiwake("queue", "hold", "--to-domain", "one.example").output == \
        "held 1 recipient\n"
    assert running.kittiwake("queue", "release", "--all").output == "released 1 recipient\n"
    assert running.kittiwake("queue", "kick").output == "made 2 recipients due now\n"
    result = running.kittiwake("queue", "dump", str(m.id))
    assert result.exit_code == 0 and result.stdout_bytes == b"raw\r\nbytes\xff"
    result = running.kittiwake("queue", "dump", "999")
    assert result.exit_code == 1 and "no queued message with id 999" in result.output
    result = running.kittiwake("queue", "drop", "--id", str(m.id))
    assert result.output == (f"dropped message {m.id} from alice@example.org to"
                             " a@one.example, b@two.example\n")
    result = running.kittiwake("queue", "list", "--all")
    assert result.output.startswith("queue is empty\n")
    assert "a@one.example" in result.output and "failed" in result.output


def test_holdrules(running: Running) -> None:
    assert running.kittiwake("queue", "holdrules", "list").output == "no hold rules\n"
    result = running.kittiwake("queue", "holdrules", "add", "--account", "bob",
                               "--to-domain", "example.com")
    assert result.output == "added hold rule 1: account bob, from *, to example.com\n"
    lines = running.kittiwake("queue", "holdrules", "list").output.splitlines()
    assert [line.split() for line in lines] == [["id", "account", "from", "domain", "to",
                                                 "domain"], ["1", "bob", "*", "example.com"]]
    assert running.kittiwake("queue", "holdrules", "remove", "1").output == \
        "removed hold rule 1\n"
    result = running.kittiwake("queue", "holdrules", "remove", "1")
    assert result.exit_code == 1 and "no hold rule with id 1" in result.output


def test_server_not_running(tmp_path: Path) -> None:
    (tmp_path / "kittiwake.conf").write_text('hostname = "mail.example.org"\n'
                                            'data_dir = "data"\n')
    result = CliRunner().invoke(cli, ["--config", str(tmp_path), "queue", "kick"])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert "is `kittiwake serve` running?" in result.output
