"""Log line formats: logfmt (key=value, the default) and JSON, one line per record.

logfmt: ``t=2026-11-24T19:00:00.123Z level=info pkg=smtpserver msg="..." cid=...
key=value``. A value is written bare when it is non-empty and holds only
printable characters other than space, ``"``, ``=`` and ``\\``; otherwise it is
quoted with ``\\"``, ``\\\\``, ``\\n``, ``\\r``, ``\\t`` and ``\\uXXXX`` escapes,
so a value never breaks the line and never forges another key. JSON: one
object per line with the same keys.
"""

from __future__ import annotations

import datetime
import enum
import json
import logging
import re
import time
import traceback
from collections.abc import Iterator, Mapping
from typing import Any

from kittiwake.log.context import context_fields
from kittiwake.log.levels import level_name

RESERVED = ("t", "level", "pkg", "msg")
_KEY_BAD = re.compile(r"[^A-Za-z0-9_.\-]")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _timestamp(record: logging.LogRecord) -> str:
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{base}.{int(record.msecs):03d}Z"


def package(name: str) -> str:
    """The ``pkg`` of a logger name: ``kittiwake.smtpserver`` is ``smtpserver``."""
    if name.startswith("kittiwake."):
        return name[len("kittiwake."):]
    return name


def clean_key(key: str) -> str:
    """A key usable in logfmt: characters other than letters, digits, ``_.-`` become ``_``."""
    key = _KEY_BAD.sub("_", key)
    return key or "_"


def to_text(value: Any) -> str:
    """A field value as text, never raising."""
    try:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, enum.Enum):
            return str(value.value)
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value).decode("utf-8", "backslashreplace")
        if isinstance(value, BaseException):
            text = str(value)
            return text if text else type(value).__name__
        if isinstance(value, datetime.datetime):
            return value.isoformat()
        if isinstance(value, datetime.timedelta):
            return f"{value.total_seconds():g}s"
        return str(value)
    except Exception as exc:  # a broken __str__ must not lose the line
        return f"<unprintable {type(value).__name__}: {type(exc).__name__}>"


def _escape_char(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    code = ord(ch)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def logfmt_value(text: str) -> str:
    """A value quoted and escaped when needed (see the module docstring)."""
    if text and text.isprintable() and not any(c in text for c in ' "=\\'):
        return text
    out = []
    for ch in text:
        if ch in _ESCAPES or not ch.isprintable():
            out.append(_escape_char(ch))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        if isinstance(value, float) and value != value:  # NaN is not JSON
            return "NaN"
        return value
    return to_text(value)


def record_fields(record: logging.LogRecord) -> Iterator[tuple[str, Any]]:
    """The extra fields of a record: bound context first, then the call's fields."""
    ctx = getattr(record, "kw_context", None)
    if ctx is None:
        ctx = context_fields()  # plain stdlib loggers: formatted in the caller's context
    call: Mapping[str, Any] = getattr(record, "kw_fields", None) or {}
    for source in (ctx, call):
        for key, value in source.items():
            if key in RESERVED:
                key = key + "_"
            yield key, value
    if record.exc_info and record.exc_info[0] is not None:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        yield "exc", text
    elif record.exc_text:
        yield "exc", record.exc_text
    if record.stack_info:
        yield "stack", record.stack_info


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # bad %-arguments from a library logger
        return f"{record.msg!r} {record.args!r}"


class LogfmtFormatter(logging.Formatter):
    """Formats a record as one logfmt line."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [
            f"t={_timestamp(record)}",
            f"level={level_name(record.levelno)}",
            f"pkg={logfmt_value(package(record.name))}",
            f"msg={logfmt_value(_message(record))}",
        ]
        for key, value in record_fields(record):
            parts.append(f"{clean_key(key)}={logfmt_value(to_text(value))}")
        return " ".join(parts)


class JSONFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, Any] = {
            "t": _timestamp(record),
            "level": level_name(record.levelno),
            "pkg": package(record.name),
            "msg": _message(record),
        }
        for key, value in record_fields(record):
            obj[key] = _json_value(value)
        # ensure_ascii keeps U+2028 and friends escaped: one object is one line.
        return json.dumps(obj, ensure_ascii=True, allow_nan=False)
