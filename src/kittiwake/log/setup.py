"""Configuring where and how much kittiwake logs, also while it runs.

:func:`setup` installs one handler (logfmt or JSON, to a stream) on the root
logger and sets levels: a default for all of kittiwake plus per-package
overrides, e.g. ``{"": "info", "smtpserver": "trace", "dns": "debug"}``.
:func:`set_levels` changes them at run time (``kittiwake loglevels``) and
:func:`current_levels` reports them in the same shape.
Loggers of other libraries (asyncio, aiohttp) log at ``other_level`` and up.
"""

from __future__ import annotations

import enum
import logging
import sys
import threading
from collections.abc import Mapping
from typing import IO

from kittiwake.log.formatting import JSONFormatter, LogfmtFormatter
from kittiwake.log.levels import INFO, WARN, Level, parse_level
from kittiwake.log.logger import logger_name

# asyncio says this when a client closes just after a TLS handshake begun with start_tls
# (implicit TLS in kittiwake.listener, STARTTLS): the connection is closed either way.
_BENIGN_ASYNCIO = "returning true from eof_received() has no effect when using ssl"


def _not_benign(record: logging.LogRecord) -> bool:
    return not (record.name == "asyncio" and record.msg == _BENIGN_ASYNCIO)


class Format(enum.StrEnum):
    """Output format of log lines."""

    LOGFMT = "logfmt"
    JSON = "json"


_lock = threading.RLock()
_handler: logging.Handler | None = None
_default: Level = INFO
_overrides: dict[str, Level] = {}  # short package name -> level


def _short(pkg: str) -> str:
    name = logger_name(pkg)
    return "" if name == "kittiwake" else name[len("kittiwake."):]


def setup(
    level: str | int = "info",
    packages: Mapping[str, str | int] | None = None,
    *,
    format: Format | str = Format.LOGFMT,
    stream: IO[str] | None = None,
    other_level: str | int = "warn",
) -> logging.Handler:
    """Send log lines to ``stream`` (default stderr) and set the levels.

    ``level`` is the default for kittiwake, ``packages`` per-package overrides
    (``{"smtpserver": "trace"}``). Calling again replaces the earlier setup.
    Raises ValueError for an unknown level or format. Returns the handler.
    """
    global _handler
    fmt = Format(format.lower() if isinstance(format, str) else format)
    formatter: logging.Formatter = (
        JSONFormatter() if fmt is Format.JSON else LogfmtFormatter()
    )
    levels: dict[str, str | int] = {"": level, **(packages or {})}
    other = parse_level(other_level)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(_not_benign)
    with _lock:
        set_levels(levels)  # validates before anything is changed
        root = logging.getLogger()
        if _handler is not None:
            root.removeHandler(_handler)
        root.addHandler(handler)
        root.setLevel(int(other))
        _handler = handler
    return handler


def set_levels(levels: Mapping[str, str | int], *, replace: bool = True) -> None:
    """Set the default (key ``""``) and per-package levels.

    With ``replace`` (the default) packages not named lose their override and
    follow the default again; without it only the named ones change. A
    ValueError for an unknown level changes nothing.
    """
    parsed = {_short(pkg): parse_level(value) for pkg, value in levels.items()}
    global _default
    with _lock:
        if replace:
            for pkg in list(_overrides):
                if pkg not in parsed:
                    logging.getLogger(logger_name(pkg)).setLevel(logging.NOTSET)
                    del _overrides[pkg]
        for pkg, lvl in parsed.items():
            if pkg == "":
                _default = lvl
                logging.getLogger("kittiwake").setLevel(int(lvl))
            else:
                _overrides[pkg] = lvl
                logging.getLogger(logger_name(pkg)).setLevel(int(lvl))
        if "" not in parsed and replace:
            logging.getLogger("kittiwake").setLevel(int(_default))


def parse_levels(spec: str) -> dict[str, Level]:
    """Levels from text as typed on a command line: ``"info,smtpserver=trace dns=debug"``.

    An entry without ``=`` is the default. Raises ValueError for unknown levels
    or an empty package name.
    """
    out: dict[str, Level] = {}
    for item in spec.replace(",", " ").split():
        pkg, sep, value = item.rpartition("=")
        if sep and not pkg:
            raise ValueError(f"missing package name in {item!r}")
        out[_short(pkg)] = parse_level(value)
    return out


def current_levels() -> dict[str, str]:
    """The levels in effect: ``{"": default, package: level, ...}``, names as in config."""
    with _lock:
        out = {"": _default.label}
        out.update({pkg: lvl.label for pkg, lvl in sorted(_overrides.items())})
        return out


def reset() -> None:
    """Remove the handler and overrides :func:`setup` installed (for tests)."""
    global _handler
    with _lock:
        set_levels({"": INFO})
        logging.getLogger("kittiwake").setLevel(logging.NOTSET)
        if _handler is not None:
            logging.getLogger().removeHandler(_handler)
            _handler = None
        logging.getLogger().setLevel(int(WARN))
