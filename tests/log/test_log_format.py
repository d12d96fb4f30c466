"""logfmt and JSON output: every line parses back to the fields that were logged."""

from __future__ import annotations

import datetime
import json
import logging
import re

import pytest

from kittiwake import log

TRICKY = [
    "plain",
    "",
    "two words",
    'a "quoted" word',
    "back\\slash",
    "k=v",
    "line\nbreak\r\n",
    "tab\there",
    "nul\x00bell\x07esc\x1b",
    "unicode line sep\u2028para\u2029",
    "zero\u200bwidth",
    "ünïcödé ✉ 📧",
    ' forged=1 level=error msg="x"',
]


@pytest.mark.parametrize("value", TRICKY)
def test_logfmt_round_trip(logs, value: str) -> None:
    logs.setup("info")
    log.get_logger("smtpserver").info(value, field=value)
    lines = logs.text.splitlines()
    assert len(lines) == 1  # nothing breaks the line
    rec = logs.records()[0]
    assert rec["msg"] == value
    assert rec["field"] == value
    assert set(rec) == {"t", "level", "pkg", "msg", "field"}  # nothing forged


@pytest.mark.parametrize("value", TRICKY)
def test_json_round_trip(logs, value: str) -> None:
    logs.setup("info", format="json")
    log.get_logger("smtpserver").info(value, field=value, n=3, ok=True, none=None)
    lines = logs.text.splitlines()
    assert len(lines) == 1
    rec = json.loads(lines[0])
    assert rec["msg"] == value and rec["field"] == value
    assert rec["n"] == 3 and rec["ok"] is True and rec["none"] is None
    assert rec["level"] == "info" and rec["pkg"] == "smtpserver"


def test_logfmt_layout(logs) -> None:
    logs.setup("info")
    with log.bind(cid="1a2b"):
        log.get_logger("smtpserver").info("delivered", account="alice", size=123,
                                          tls=True, dur=datetime.timedelta(seconds=1.5))
    line = logs.text.rstrip("\n")
    assert re.fullmatch(
        r"t=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=info pkg=smtpserver msg=delivered "
        r"cid=1a2b account=alice size=123 tls=true dur=1.5s", line), line


def test_values_of_other_types(logs) -> None:
    logs.setup("info")

    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no")

    log.get_logger("queue").info("x", raw=b"\xffok", err=OSError("refused"), empty=ValueError(),
                                 broken=Broken(), level="spoof", msg="spoof2")
    rec = logs.records()[0]
    assert rec["raw"] == "\\xffok"
    assert rec["err"] == "refused" and rec["empty"] == "ValueError"
    assert rec["broken"].startswith("<unprintable Broken")
    assert rec["level"] == "info" and rec["level_"] == "spoof"
    assert rec["msg"] == "x" and rec["msg_"] == "spoof2"


def test_bad_keys_are_cleaned(logs) -> None:
    logs.setup("info")
    log.get_logger("queue").info("x", **{"a b": 1, 'c="d': 2})
    rec = logs.records()[0]
    assert rec["a_b"] == "1" and rec["c__d"] == "2"


@pytest.mark.parametrize("fmt", ["logfmt", "json"])
def test_traceback_stays_on_one_line(logs, fmt: str) -> None:
    logs.setup("info", format=fmt)
    try:
        raise KeyError("boom")
    except KeyError:
        log.get_logger("imapserver").exception("failed", op="select")
    recs = logs.records()
    assert len(recs) == 1 and len(logs.text.splitlines()) == 1
    assert recs[0]["level"] == "error" and recs[0]["op"] == "select"
    assert "Traceback (most recent call last)" in recs[0]["exc"]
    assert "KeyError: 'boom'" in recs[0]["exc"]


def test_stdlib_logger_lines(logs) -> None:
    logs.setup("debug")
    logging_logger = logging.getLogger("kittiwake.store")
    logging_logger.debug("opened %s in %d ms", "alice", 3)
    recs = logs.records()
    assert recs[0]["pkg"] == "store" and recs[0]["msg"] == "opened alice in 3 ms"


def test_bad_format_arguments_keep_the_line() -> None:
    """A library's bad %-arguments must not lose the line (or raise in the handler)."""
    record = logging.LogRecord("aiohttp.web", logging.ERROR, __file__, 1, "bad %d", ("x",), None)
    line = log.LogfmtFormatter().format(record)
    assert "level=error" in line and "bad %d" in line
    assert json.loads(log.JSONFormatter().format(record))["pkg"] == "aiohttp.web"
