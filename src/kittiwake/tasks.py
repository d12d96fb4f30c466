"""Stopping background tasks: one way, used by every part that runs one."""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["cancel_and_wait"]


async def cancel_and_wait(task: asyncio.Task[object] | asyncio.Future[object] | None) -> None:
    """Cancel ``task`` (if any) and wait until it has ended; its cancellation and any
    error it ended with are not raised here (the task logs its own failures)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
