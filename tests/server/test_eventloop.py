"""Which event loop ``kittiwake serve`` runs on (uvloop by default, asyncio on request)."""

from __future__ import annotations

import asyncio
import builtins
import io

import pytest

from kittiwake import log
from kittiwake.server import eventloop


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def test_uvloop_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(eventloop.ENV_VAR, raising=False)
    assert eventloop.loop_factory()[0] == "uvloop"
    assert eventloop.run(_loop_module()) == "uvloop"


def test_asyncio_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(eventloop.ENV_VAR, " Asyncio ")
    assert eventloop.loop_factory() == ("asyncio", None)
    assert eventloop.run(_loop_module()) == "asyncio"
    assert eventloop.check_choice() is None


def test_a_misspelt_choice_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(eventloop.ENV_VAR, "uvlop")
    problem = eventloop.check_choice()
    assert problem == "KITTIWAKE_EVENT_LOOP='uvlop': expected one of uvloop, asyncio (or unset)"


def test_without_uvloop_asyncio_runs_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(eventloop.ENV_VAR, raising=False)
    real_import = builtins.__import__

    def no_uvloop(name: str, *args: object, **kwargs: object) -> object:
        if name == "uvloop":
            raise ImportError("No module named 'uvloop'")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_uvloop)
    stream = io.StringIO()
    log.setup("info", stream=stream)
    try:
        assert eventloop.run(_loop_module()) == "asyncio"
    finally:
        log.reset()
    assert "uvloop is not installed" in stream.getvalue()
