"""kittiwake's log levels (see DESIGN.md "Logging").

Most to least severe: error, warn, info, debug, trace, traceauth, tracedata.
The first four are the stdlib's ERROR, WARNING, INFO and DEBUG; the three
below DEBUG are registered with :mod:`logging` by name:

- ``trace``: protocol transcripts, credentials shown as ``***`` and message
  data as ``...``;
- ``traceauth``: transcripts with credentials;
- ``tracedata``: transcripts with credentials and message data.
"""

from __future__ import annotations

import enum
import logging


class Level(enum.IntEnum):
    """A log level; the value is the stdlib level number."""

    ERROR = logging.ERROR
    WARN = logging.WARNING
    INFO = logging.INFO
    DEBUG = logging.DEBUG
    TRACE = 7
    TRACEAUTH = 6
    TRACEDATA = 5

    @property
    def label(self) -> str:
        """The name written in log lines and configuration: ``warn``, ``trace``, ..."""
        return self.name.lower()


ERROR = Level.ERROR
WARN = Level.WARN
INFO = Level.INFO
DEBUG = Level.DEBUG
TRACE = Level.TRACE
TRACEAUTH = Level.TRACEAUTH
TRACEDATA = Level.TRACEDATA

for _level in (TRACE, TRACEAUTH, TRACEDATA):
    logging.addLevelName(int(_level), _level.name)

_ALIASES = {"warning": WARN, "critical": ERROR, "fatal": ERROR}


def parse_level(value: str | int) -> Level:
    """A level from its name (case-insensitive, ``warning`` accepted) or number.

    Raises ValueError naming the known levels.
    """
    if isinstance(value, Level):
        return value
    if isinstance(value, int):
        return level_of(value)
    name = value.strip().lower()
    if name in _ALIASES:
        return _ALIASES[name]
    try:
        return Level[name.upper()]
    except KeyError:
        known = ", ".join(level.label for level in Level)
        raise ValueError(f"unknown log level {value!r} (known: {known})") from None


def level_of(levelno: int) -> Level:
    """The kittiwake level a stdlib level number falls in (CRITICAL is error)."""
    for level in Level:  # most severe first
        if levelno >= level:
            return level
    return TRACEDATA


def level_name(levelno: int) -> str:
    """The name written in log lines for a stdlib level number."""
    return level_of(levelno).label
