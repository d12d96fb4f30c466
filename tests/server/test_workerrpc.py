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
