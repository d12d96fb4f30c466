"""Queue control commands through a real ControlServer on a Unix socket."""

from __future__ import annotations

import base64
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from queue_helpers import Clock, envelope

from kittiwake.queue import DeliveryError, Dropped, Outcome, Queue
from kittiwake.server.control import ControlClientError, ControlServer, request
from kittiwake.server.queuecontrol import register_control


class Env:
    def __init__(self, queue: Queue, socket: Path, clock: Clock,
                 dropped: list[list[Dropped]]) -> None:
        self.queue, self.socket, self.clock, self.dropped = queue, socket, clock, dropped

    async def call(self, command: str, **args: Any) -> Any:
        return await request(self.socket, command, args)

    async def listing(self, **args: Any) -> dict[str, Any]:
        """queue-list with its streamed rows gathered into one object."""
        rows: dict[str, list[Any]] = {"queued": [], "history": []}

        def collect(data: dict[str, Any]) -> None:
            for key, items in data.items():
                rows[key].extend(items)

        result = await request(self.socket, "queue-list", args, collect)
        assert result["queued"] == len(rows["queued"])
        assert result.get("history", 0) == len(rows["history"])
        return {**result, **rows}


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    root = Path(tempfile.mkdtemp(prefix="kwq"))  # short: Unix socket paths are limited
    clock = Clock()
    queue = Queue(root, clock=clock)
    server = ControlServer(root / "ctl")
    dropped: list[list[Dropped]] = []

    async def on_dropped(items: list[Dropped]) -> None:
        assert all(d.message.path.exists() for d in items)  # still there for DSNs
        dropped.append(items)

    register_control(server, queue, on_dropped)
    await server.start()
    try:
        yield Env(queue, root / "ctl", clock, dropped)
    finally:
        await server.close()
        queue.close()
        shutil.rmtree(root)


async def test_list_shows_queued_recipients_and_history(env: Env) -> None:
    m = await env.queue.enqueue(envelope("bob@example.net", "carol@example.com",
                                         account="alice"), b"data")
    bob, carol = await env.queue.recipients(m.id)
    await env.queue.record_result([carol.id], Outcome.OK, None, "mx.example.com")
    err = DeliveryError(451, "4.4.1", "connection refused", "mx.example.net")
    await env.queue.record_result([bob.id], Outcome.TEMPORARY, err)
    result = await env.listing()
    (row,) = result["queued"]
    assert (row["message_id"], row["to"], row["from"], row["account"], row["attempts"],
            row["held"]) == (m.id, "bob@example.net", "alice@example.org", "alice", 1, False)
    assert row["last_error"] == {"code": 451, "enhanced": "4.4.1",
                                 "text": "connection refused", "host": "mx.example.net"}
    assert result["now"] == env.clock().isoformat()
    assert result["history"] == []
    result = await env.listing(all=True, to_domain="example.com")
    assert result["queued"] == []
    assert [(h["address"], h["status"]) for h in result["history"]] == [
        ("carol@example.com", "delivered")]


async def test_hold_release_kick(env: Env) -> None:
    m1 = await env.queue.enqueue(envelope("a@one.example"), b"1")
    await env.queue.enqueue(envelope("b@two.example"), b"2")
    with pytest.raises(ControlClientError, match="say which messages to hold"):
        await env.call("queue-hold")
    assert await env.call("queue-hold", id=m1.id) == {"count": 1}
    assert [r["held"] for r in (await env.listing(id=[m1.id]))["queued"]] == [True]
    assert [b.message_id for b in await env.queue.due(env.clock())] == [m1.id + 1]
    assert await env.call("queue-release", all=True) == {"count": 1}
    # A failed attempt pushes the next one out; kick makes it due again.
    (r,) = await env.queue.recipients(m1.id)
    await env.queue.record_result([r.id], Outcome.TEMPORARY)
    assert m1.id not in [b.message_id for b in await env.queue.due(env.clock())]
    assert await env.call("queue-kick", to_domain="one.example") == {"count": 1}
    assert m1.id in [b.message_id for b in await env.queue.due(env.clock())]
    with pytest.raises(ControlClientError, match="id must be a message id"):
        await env.call("queue-kick", id="abc")


async def test_drop_and_dump(env: Env) -> None:
    data = bytes(range(256)) * 2000  # 512 KB: more than one chunk, arbitrary bytes
    m = await env.queue.enqueue(envelope("a@one.example", "b@two.example"), data)
    chunks: list[bytes] = []
    result = await request(env.socket, "queue-dump", {"id": m.id},
                           lambda p: chunks.append(base64.b64decode(p["data"])))
    assert result == {"id": m.id, "size": len(data)} and b"".join(chunks) == data
    assert len(chunks) > 1
    with pytest.raises(ControlClientError, match="no queued message with id 999"):
        await env.call("queue-dump", id=999)
    with pytest.raises(ControlClientError, match="say which messages to drop"):
        await env.call("queue-drop")
    result = await env.call("queue-drop", to_domain="two.example")
    assert result == {"count": 1, "messages": 1, "dropped": [
        {"message_id": m.id, "from": "alice@example.org", "recipients": ["b@two.example"]}]}
    assert m.path.exists()
    result = await env.call("queue-drop", id=m.id)
    assert result["count"] == 1
    assert [[d.message.id for d in items] for items in env.dropped] == [[m.id], [m.id]]
    assert not m.path.exists()  # removed after on_dropped ran
    assert (await env.listing())["queued"] == []


async def test_long_list_is_streamed_in_chunks(env: Env) -> None:
    rcpts = [f"user{i:04d}-{'x' * 200}@example.net" for i in range(3000)]  # > 1 MiB of rows
    await env.queue.enqueue(envelope(*rcpts), b"x")
    result = await env.listing()
    assert [r["to"] for r in result["queued"]] == rcpts


async def test_holdrules(env: Env) -> None:
    assert await env.call("queue-holdrules-list") == []
    rule = await env.call("queue-holdrules-add", to_domain="Slow.Example")
    assert rule == {"id": 1, "account": "", "from_domain": "", "to_domain": "slow.example"}
    with pytest.raises(ControlClientError, match="already"):
        await env.call("queue-holdrules-add", to_domain="slow.example")
    m = await env.queue.enqueue(envelope("x@slow.example"), b"x")
    assert [r.held for r in await env.queue.recipients(m.id)] == [True]
    assert await env.call("queue-holdrules-remove", id=1) == rule
    assert await env.call("queue-holdrules-list") == []
    with pytest.raises(ControlClientError, match="no hold rule with id 1"):
        await env.call("queue-holdrules-remove", id=1)
    assert [r.held for r in await env.queue.recipients(m.id)] == [True]
