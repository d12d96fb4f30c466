"""Levels, per-package overrides and changing them at run time."""

from __future__ import annotations

import logging

import pytest

from kittiwake import log


def emit_all(pkg: str) -> None:
    logger = log.get_logger(pkg)
    for level in ("error", "warn", "info", "debug", "trace", "traceauth", "tracedata"):
        logger.log(level, f"{level} line")


def levels_written(logs, pkg: str) -> list[str]:
    return [r["level"] for r in logs.records() if r["pkg"] == pkg]


ALL = ["error", "warn", "info", "debug", "trace", "traceauth", "tracedata"]


@pytest.mark.parametrize("level", ALL)
def test_default_level_filters(logs, level: str) -> None:
    logs.setup(level)
    emit_all("queue")
    assert levels_written(logs, "queue") == ALL[: ALL.index(level) + 1]


def test_level_names_and_order() -> None:
    assert [lv.label for lv in log.Level] == ALL
    assert log.parse_level("WARNING") is log.WARN
    assert log.parse_level("TraceAuth") is log.TRACEAUTH
    assert logging.getLevelName(int(log.TRACEDATA)) == "TRACEDATA"
    with pytest.raises(ValueError, match="tracedata"):
        log.parse_level("verbose")


def test_per_package_overrides(logs) -> None:
    logs.setup("info", {"smtpserver": "trace", "kittiwake.dns": "debug", "queue": "error"})
    for pkg in ("smtpserver", "dns", "queue", "imapserver", "smtpserver.sub"):
        emit_all(pkg)
    assert levels_written(logs, "smtpserver") == ALL[:5]
    assert levels_written(logs, "smtpserver.sub") == ALL[:5]  # children inherit
    assert levels_written(logs, "dns") == ALL[:4]
    assert levels_written(logs, "queue") == ["error"]
    assert levels_written(logs, "imapserver") == ALL[:3]
    assert log.current_levels() == {
        "": "info", "dns": "debug", "queue": "error", "smtpserver": "trace"}


def test_set_levels_at_run_time(logs) -> None:
    logs.setup("info", {"smtpserver": "trace"})
    logger = log.get_logger("smtpserver")
    assert logger.is_enabled("trace") and not logger.is_enabled(log.TRACEAUTH)
    log.set_levels({"": "warn", "imapserver": "debug"})  # replaces: smtpserver override gone
    assert log.current_levels() == {"": "warn", "imapserver": "debug"}
    assert not logger.is_enabled("info")
    emit_all("smtpserver")
    emit_all("imapserver")
    log.set_levels({"smtpserver": "tracedata"}, replace=False)
    assert log.current_levels() == {"": "warn", "imapserver": "debug", "smtpserver": "tracedata"}
    emit_all("smtpserver")
    assert levels_written(logs, "smtpserver") == ALL[:2] + ALL
    assert levels_written(logs, "imapserver") == ALL[:4]


def test_bad_level_changes_nothing(logs) -> None:
    logs.setup("info", {"dns": "debug"})
    with pytest.raises(ValueError):
        log.set_levels({"": "trace", "smtpserver": "loud"})
    assert log.current_levels() == {"": "info", "dns": "debug"}
    with pytest.raises(ValueError):
        log.setup("info", format="xml")


def test_setup_again_replaces_handler(logs) -> None:
    first = logs.setup("info").stream
    second = logs.setup("info").stream
    log.get_logger("queue").info("once")
    assert first.getvalue() == ""
    assert second.getvalue().count("msg=once") == 1


def test_other_libraries_at_warn(logs) -> None:
    logs.setup("trace")
    logging.getLogger("aiohttp.access").info("noise")
    logging.getLogger("asyncio").warning("loop trouble %d", 7)
    assert [(r["pkg"], r["msg"]) for r in logs.records()] == [("asyncio", "loop trouble 7")]


def test_is_enabled_skips_formatting(logs) -> None:
    logs.setup("debug")
    logger = log.get_logger("smtpserver")

    class Costly:
        def __str__(self) -> str:
            raise AssertionError("formatted although the level is off")

    logger.trace("skipped", value=Costly())
    assert not logger.is_enabled("trace")
    assert logs.text == ""


def test_parse_levels_from_command_line(logs) -> None:
    levels = log.parse_levels("debug,smtpserver=trace kittiwake.dns=TraceAuth")
    assert levels == {"": log.DEBUG, "smtpserver": log.TRACE, "dns": log.TRACEAUTH}
    logs.setup("info")
    log.set_levels(levels)
    assert log.current_levels() == {"": "debug", "dns": "traceauth", "smtpserver": "trace"}
    with pytest.raises(ValueError, match="unknown log level"):
        log.parse_levels("smtpserver=chatty")
    with pytest.raises(ValueError, match="package"):
        log.parse_levels("=trace")
