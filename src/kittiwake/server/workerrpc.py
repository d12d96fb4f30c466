"""The channel between the server process and one of its SMTP worker processes.

A stream socket (a ``socketpair`` whose one end the worker inherits) carries
frames: a 4-byte big-endian length, then a pickle of one tuple. Both
processes are this program, started by the same user, so pickle is safe
here (it never sees bytes from the network). Frames:

- ``("call", id, name, args)``: a request; the other side answers with
  ``("reply", id, True, value)`` or ``("reply", id, False, message)``;
- ``("note", 0, name, args)``: a one-way message (no answer).

Handlers are looked up by name. A plain function is run at once in the read
loop (cheap answers: a connection slot, a rate limit), a coroutine function
in a task of its own (a delivery that waits for the store's commit), so one
slow request never holds up the others. When the stream ends (the other
process exited or was killed), every call still waiting raises
:class:`ChannelClosed` and :meth:`Channel.run` returns.

Frames sent in one turn of the event loop go out in one write at the end of
that turn: a server answering several sessions' requests of one worker at
once, or a worker's DMARC note and the ``write`` call that follows it, cost
one system call (a write on a socket is a good part of a frame's cost)
instead of one each. Nothing waits longer than the turn it was sent in.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import pickle
import struct
from collections.abc import Callable
from typing import Any

from kittiwake import metrics
from kittiwake.log import get_logger

logger = get_logger("server")

HEADER = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024  # a frame is a request, never a message body
READ_SIZE = 256 * 1024  # read at most this much at a time (several frames, usually)


class ChannelClosed(ConnectionError):
    """The other process is gone (or the channel was closed) before it answered."""


class RemoteError(Exception):
    """The handler on the other side raised; the message says what."""


Handler = Callable[..., Any]


class Channel:
    """Calls and notes over one stream, in both directions."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 handlers: dict[str, Handler], name: str = "") -> None:
        self.reader = reader
        self.writer = writer
        self.handlers = handlers
        self._coroutines: dict[str, bool] = {}  # handler name -> async def? (asked once)
        self.name = name
        self._next = 0
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._out: list[bytes] = []  # frames of this turn of the loop, not yet written
        self.closed = False

    def _send(self, frame: tuple[Any, ...]) -> None:
        if self.closed:
            raise ChannelClosed(f"channel {self.name} closed")
        data = pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL)
        if not self._out:
            asyncio.get_running_loop().call_soon(self._write)
        self._out += (HEADER.pack(len(data)), data)

    def _write(self) -> None:
        """Write the frames sent since the last write, in one call."""
        out, self._out = self._out, []
        if out and not self.writer.is_closing():
            self.writer.write(b"".join(out))

    async def call(self, name: str, *args: Any) -> Any:
        """Ask the other side; its handler's return value (RemoteError if it raised)."""
        self._next += 1
        ident = self._next
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        try:
            self._send(("call", ident, name, args))
            return await future
        finally:
            self._pending.pop(ident, None)

    def note(self, name: str, *args: Any) -> None:
        """Tell the other side; no answer. Raises ChannelClosed once closed."""
        self._send(("note", 0, name, args))

    async def drain(self) -> None:
        """Write what is waiting and wait until the stream took it."""
        self._write()
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    async def run(self) -> None:
        """Read and dispatch frames until the stream ends.

        Whatever the stream holds is read at once and every whole frame in it
        dispatched, in order: one read (and one wake-up of this task) for the
        frames that came together, not two awaited exact reads per frame."""
        buffer = bytearray()
        try:
            while True:
                try:
                    chunk = await self.reader.read(READ_SIZE)
                except (ConnectionError, OSError):
                    return
                if not chunk:
                    return  # the stream ended (a partial frame with it is dropped)
                buffer += chunk
                start, have = 0, len(buffer)
                while have - start >= HEADER.size:
                    (size,) = HEADER.unpack_from(buffer, start)
                    if size > MAX_FRAME:
                        logger.error("worker channel: frame too large", channel=self.name,
                                     size=size)
                        return
                    end = start + HEADER.size + size
                    if end > have:
                        break
                    frame = pickle.loads(buffer[start + HEADER.size:end])
                    start = end
                    self._dispatch(*frame)
                del buffer[:start]
        finally:
            self._close()

    def _dispatch(self, kind: str, ident: int, name: Any, args: Any) -> None:
        if kind == "reply":
            future = self._pending.get(ident)
            if future is not None and not future.done():
                if name:
                    future.set_result(args)
                else:
                    future.set_exception(RemoteError(str(args)))
            return
        handler = self.handlers.get(name)
        if handler is None:
            logger.error("worker channel: unknown request", channel=self.name, request=name)
            if kind == "call":
                self._reply(ident, False, f"unknown request {name!r}")
            return
        is_async = self._coroutines.get(name)
        if is_async is None:
            is_async = self._coroutines[name] = inspect.iscoroutinefunction(handler)
        if is_async:
            task = asyncio.get_running_loop().create_task(self._run(kind, ident, name, handler,
                                                                    args))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        try:
            value = handler(*args)
        except Exception as exc:
            self._failed(kind, ident, name, exc)
            return
        if kind == "call":
            self._reply(ident, True, value)

    async def _run(self, kind: str, ident: int, name: str, handler: Handler,
                   args: Any) -> None:
        try:
            value = await handler(*args)
        except Exception as exc:
            self._failed(kind, ident, name, exc)
            return
        if kind == "call":
            self._reply(ident, True, value)

    def _failed(self, kind: str, ident: int, name: str, exc: Exception) -> None:
        metrics.panic("serve", exc, msg="worker channel request failed", request=name)
        if kind == "call":
            self._reply(ident, False, f"{type(exc).__name__}: {exc}")

    def _reply(self, ident: int, ok: bool, value: Any) -> None:
        with contextlib.suppress(ChannelClosed, ConnectionError, RuntimeError):
            self._send(("reply", ident, ok, value))

    def _close(self) -> None:
        self.closed = True
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ChannelClosed(f"channel {self.name} closed"))
        self._pending.clear()
        with contextlib.suppress(Exception):
            self._write()
            self.writer.close()

    async def wait_handlers(self, timeout: float) -> None:
        """Wait for the requests being handled here (after the stream ended)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
