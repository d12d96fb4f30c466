"""The MX checks run together under one deadline, as a timeout per check did."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kittiwake.smtpserver import incoming


async def _value(x: Any, delay: float = 0.0) -> Any:
    if delay:
        await asyncio.sleep(delay)
    return x


async def _raises(exc: BaseException) -> Any:
    await asyncio.sleep(0)
    raise exc


async def _swallows_cancel() -> str:
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        return "kept"
    return "late"


def test_results_in_order() -> None:
    out = asyncio.run(incoming._concurrently(_value(1), _value(2, 0.01), _value(3)))
    assert out == [1, 2, 3]


def test_slow_check_is_none_others_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(incoming, "CHECK_TIMEOUT", 0.05)

    async def run() -> tuple[list[Any], float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        out = await incoming._concurrently(_value("a"), _value("slow", 5), _value("c", 0.01))
        return out, loop.time() - start

    out, took = asyncio.run(run())
    assert out == ["a", None, "c"]
    assert took < 1


def test_own_timeout_error_is_none_without_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    async def run() -> list[Any]:
        return await incoming._concurrently(_raises(TimeoutError()), _value(2, 0.01), _value(3))

    assert asyncio.run(run()) == [None, 2, 3]


def test_other_exceptions_propagate() -> None:
    with pytest.raises(ValueError):
        asyncio.run(incoming._concurrently(_raises(ValueError("x")), _value(2)))


def test_check_that_swallows_cancel_keeps_its_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(incoming, "CHECK_TIMEOUT", 0.05)
    assert asyncio.run(incoming._concurrently(_swallows_cancel(), _value(1))) == ["kept", 1]

    async def guarded() -> Any:  # what a timeout scope per check gave
        return await incoming._guard(_swallows_cancel())

    assert asyncio.run(guarded()) == "kept"


def test_outer_cancel_cancels_the_checks() -> None:
    async def run() -> bool:
        task = asyncio.ensure_future(incoming._concurrently(_value(1, 5), _value(2, 5)))
        await asyncio.sleep(0.01)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return True
        return False

    assert asyncio.run(run())
