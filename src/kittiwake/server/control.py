"""The control socket: how CLI commands talk to the running server.

A Unix stream socket ``ctl`` in the data directory, mode 0600 (owner only).
The protocol is JSON lines: the client sends one request object
``{"command": NAME, "args": {...}}``; the server answers with zero or more
progress objects ``{"progress": {...}}`` and then one final object,
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "one line"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

SOCKET_NAME = "ctl"
MAX_REQUEST = 1 << 20

Progress = Callable[[dict[str, Any]], Awaitable[None]]
Handler = Callable[[dict[str, Any], Progress], Awaitable[Any]]


class ControlError(Exception):
    """A request failed; the message goes back to the client as one line."""


class ControlServer:
    """Serves control requests on a Unix socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handlers: dict[str, Handler] = {}
        self._server: asyncio.AbstractServer | None = None

    def register(self, command: str, handler: Handler) -> None:
        self.handlers[command] = handler

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self.path.is_socket():
                _refuse_if_running(self.path)
            self.path.unlink()
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path),
                                                           limit=MAX_REQUEST)
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server:
            self._server.close()
            await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def send(obj: dict[str, Any]) -> None:
            writer.write(json.dumps(obj, default=str).encode() + b"\n")
            await writer.drain()

        try:
            line = await reader.readline()
            try:
                request = json.loads(line)
                command = request["command"]
                args = request.get("args") or {}
                if not isinstance(args, dict):
                    raise TypeError("args must be an object")
            except (ValueError, KeyError, TypeError) as exc:
                await send({"ok": False, "error": f"bad control request: {exc}"})
                return
            handler = self.handlers.get(command)
            if handler is None:
                known = ", ".join(sorted(self.handlers))
                await send({"ok": False, "error": f"unknown command {command!r} (known: {known})"})
                return

            async def progress(data: dict[str, Any]) -> None:
                await send({"progress": data})

            try:
                result = await handler(args, progress)
            except ControlError as exc:
                await send({"ok": False, "error": str(exc)})
            except Exception as exc:
                from kittiwake.metrics import panic

                panic("control", exc)
                await send({"ok": False, "error": f"internal error: {exc}"})
            else:
                await send({"ok": True, "result": result})
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # The server is shutting down (or restarting) while a client waits: end
            # this connection quietly; the client sees the socket close and retries.
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def _refuse_if_running(path: Path) -> None:
    """Fail when another server answers on the socket (a stale one is removed)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        return
    finally:
        probe.close()
    raise ControlError(f"another kittiwake server is running (control socket {path})")


class ControlClientError(Exception):
    """The server could not be reached or answered with an error."""


class ServerNotRunning(ControlClientError):
    """Nothing listens on the control socket: the server is stopped."""


async def request(socket_path: Path, command: str, args: dict[str, Any] | None = None,
                  on_progress: Callable[[dict[str, Any]], None] | None = None) -> Any:
    """Send one request to the running server and return its result."""
    async for kind, data in stream(socket_path, command, args):
        if kind == "progress" and on_progress:
            on_progress(data)
        elif kind == "result":
            return data
    raise ControlClientError("the server closed the control connection without an answer")


async def stream(socket_path: Path, command: str,
                 args: dict[str, Any] | None = None) -> AsyncIterator[tuple[str, Any]]:
    try:
        reader, writer = await asyncio.open_unix_connection(str(socket_path), limit=MAX_REQUEST)
    except (FileNotFoundError, ConnectionRefusedError):
        raise ServerNotRunning(
            f"cannot reach the running server at {socket_path} (is `kittiwake serve` running?)"
        ) from None
    except PermissionError:
        raise ControlClientError(f"no permission to use {socket_path} (run as the server's user)"
                                 ) from None
    try:
        try:
            writer.write(json.dumps({"command": command, "args": args or {}}).encode() + b"\n")
            await writer.drain()
        except OSError as exc:  # the server went away meanwhile (stopping, restarting)
            raise ControlClientError(f"the control connection was lost ({exc})") from None
        while True:
            try:
                line = await reader.readline()
            except (OSError, ValueError) as exc:
                raise ControlClientError(f"the control connection was lost ({exc})") from None
            if not line:
                return
            try:
                obj = json.loads(line)
            except ValueError:
                raise ControlClientError("the server sent an unreadable answer") from None
            if "progress" in obj:
                yield "progress", obj["progress"]
            elif obj.get("ok"):
                yield "result", obj.get("result")
                return
            else:
                raise ControlClientError(obj.get("error", "unknown error"))
    finally:
        writer.close()
