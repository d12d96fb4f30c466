"""The SMTP workers' channel (:mod:`kittiwake.server.workerrpc`) over a real socket pair."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from kittiwake.server.workerrpc import Channel, ChannelClosed


class CountingWriter:
    """The real stream writer, with its writes counted."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.inner = writer
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.inner.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def pair(handlers: dict[str, Any]) -> tuple[Channel, Channel, CountingWriter]:
    a, b = socket.socketpair()
    ra, wa = await asyncio.open_unix_connection(sock=a)
    rb, wb = await asyncio.open_unix_connection(sock=b)
    counting = CountingWriter(wa)
    left = Channel(ra, counting, {}, name="left")  # type: ignore[arg-type]
    right = Channel(rb, wb, handlers, name="right")
    return left, right, counting


async def test_frames_of_one_turn_go_out_in_one_write_and_calls_are_answered() -> None:
    seen: list[tuple[str, int]] = []

    async def slow(n: int) -> int:
        await asyncio.sleep(0.01)
        return n * 2

    left, right, counting = await pair({"note": lambda n: seen.append(("note", n)),
                                        "double": slow, "add": lambda a, b: a + b})
    serving = asyncio.get_running_loop().create_task(right.run())
    reading = asyncio.get_running_loop().create_task(left.run())
    for n in range(5):
        left.note("note", n)
    answers = await asyncio.gather(left.call("double", 21), left.call("add", 2, 3),
                                   *(left.call("double", n) for n in range(10)))
    assert answers == [42, 5, *(n * 2 for n in range(10))]
    assert seen == [("note", n) for n in range(5)]  # in the order sent
    # The 5 notes of this turn in one write, the 12 calls (gather starts their tasks
    # together, in the next turn) in another: 2 writes for 17 frames.
    assert counting.writes == 2
    right._close()
    await asyncio.wait_for(reading, 5)
    await asyncio.wait_for(serving, 5)
    try:
        left.note("note", 99)
    except ChannelClosed:
        pass
    else:
        raise AssertionError("a closed channel took a note")


async def test_a_call_waiting_when_the_other_side_goes_raises_channel_closed() -> None:
    never = asyncio.Event()

    async def hang() -> None:
        await never.wait()

    left, right, _counting = await pair({"hang": hang})
    serving = asyncio.get_running_loop().create_task(right.run())
    reading = asyncio.get_running_loop().create_task(left.run())
    call = asyncio.get_running_loop().create_task(left.call("hang"))
    await asyncio.sleep(0.05)
    right._close()
    try:
        await asyncio.wait_for(call, 5)
    except ChannelClosed:
        pass
    else:
        raise AssertionError("the call returned without an answer")
    await asyncio.wait_for(reading, 5)
    serving.cancel()


async def test_frames_split_and_joined_anyhow_are_dispatched_whole_and_in_order() -> None:
    """The reader takes what the stream holds: frames cut at any octet, and many in one
    read, each dispatched once, whole, in order; a frame over the limit ends the channel."""
    import pickle

    from kittiwake.server import workerrpc

    seen: list[Any] = []
    a, b = socket.socketpair()
    reader, writer = await asyncio.open_unix_connection(sock=b)
    channel = Channel(reader, writer, {"note": seen.append}, name="cut")
    serving = asyncio.get_running_loop().create_task(channel.run())
    frames = b"".join(
        workerrpc.HEADER.pack(len(p)) + p
        for p in (pickle.dumps(("note", 0, "note", (n if n % 3 else b"x" * 70_000,)))
                  for n in range(30)))
    cuts = [1, 2, 3, 5, 4000, 4001, 150_000, 150_003, len(frames)]
    last = 0
    for cut in cuts:  # (from a thread: a full socket buffer must not block the loop)
        await asyncio.to_thread(a.sendall, frames[last:cut])
        last = cut
        await asyncio.sleep(0.005)
    await asyncio_until(lambda: len(seen) == 30)
    assert seen == [n if n % 3 else b"x" * 70_000 for n in range(30)]
    a.sendall(workerrpc.HEADER.pack(workerrpc.MAX_FRAME + 1))
    await asyncio.wait_for(serving, 5)  # too large: the channel ends
    assert channel.closed
    a.close()
    writer.close()


async def asyncio_until(condition: Any, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")
