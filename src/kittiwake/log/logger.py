"""The logger kittiwake code calls: structured fields and the extra levels.

``get_logger("smtpserver").info("delivered", account="alice", size=123)``
writes ``... level=info pkg=smtpserver msg=delivered cid=... account=alice
size=123``. Leaf packages take a :class:`Logger` as an argument; servers make
one per package and add fields with :meth:`Logger.with_fields`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from kittiwake.log.context import context_fields
from kittiwake.log.levels import DEBUG, ERROR, INFO, TRACE, TRACEAUTH, TRACEDATA, WARN, parse_level

ExcInfo = bool | BaseException | None


def logger_name(pkg: str) -> str:
    """The stdlib logger name for a package: ``smtpserver`` -> ``kittiwake.smtpserver``."""
    pkg = pkg.strip()
    if pkg in ("", "kittiwake"):
        return "kittiwake"
    if pkg.startswith("kittiwake."):
        return pkg
    return "kittiwake." + pkg


class Logger:
    """A stdlib logger plus fields bound to it; every method takes ``**fields``."""

    __slots__ = ("_fields", "logger")

    def __init__(self, logger: logging.Logger, fields: Mapping[str, Any] | None = None) -> None:
        self.logger = logger
        self._fields: Mapping[str, Any] = MappingProxyType(dict(fields or {}))

    @property
    def name(self) -> str:
        return self.logger.name

    def with_fields(self, **fields: Any) -> Logger:
        """A logger that adds these fields to each line (after the bound context)."""
        return Logger(self.logger, {**self._fields, **fields})

    def is_enabled(self, level: int | str) -> bool:
        """Whether a line at this level would be written: check before costly formatting."""
        return self.logger.isEnabledFor(int(parse_level(level)))

    def log(self, level: int | str, msg: str, /, *, exc_info: ExcInfo = None,
            **fields: Any) -> None:
        """Write ``msg`` at ``level`` with the bound context and these fields."""
        levelno = int(parse_level(level))
        if not self.logger.isEnabledFor(levelno):
            return
        call = {**self._fields, **fields} if self._fields else fields
        extra = {"kw_fields": call, "kw_context": context_fields()}
        self.logger.log(levelno, msg, exc_info=exc_info, extra=extra, stacklevel=3)

    # The level methods test the level first (a plain int): a line that is not
    # written costs one cached lookup, nothing more.

    def error(self, msg: str, /, *, exc_info: ExcInfo = None, **fields: Any) -> None:
        if self.logger.isEnabledFor(_ERROR):
            self.log(ERROR, msg, exc_info=exc_info, **fields)

    def exception(self, msg: str, /, **fields: Any) -> None:
        """error with the traceback of the exception being handled."""
        if self.logger.isEnabledFor(_ERROR):
            self.log(ERROR, msg, exc_info=True, **fields)

    def warn(self, msg: str, /, *, exc_info: ExcInfo = None, **fields: Any) -> None:
        if self.logger.isEnabledFor(_WARN):
            self.log(WARN, msg, exc_info=exc_info, **fields)

    warning = warn

    def info(self, msg: str, /, **fields: Any) -> None:
        if self.logger.isEnabledFor(_INFO):
            self.log(INFO, msg, **fields)

    def debug(self, msg: str, /, **fields: Any) -> None:
        if self.logger.isEnabledFor(_DEBUG):
            self.log(DEBUG, msg, **fields)

    def trace(self, msg: str, /, **fields: Any) -> None:
        if self.logger.isEnabledFor(_TRACE):
            self.log(TRACE, msg, **fields)

    def traceauth(self, msg: str, /, **fields: Any) -> None:
        if self.logger.isEnabledFor(_TRACEAUTH):
            self.log(TRACEAUTH, msg, **fields)

    def tracedata(self, msg: str, /, **fields: Any) -> None:
        if self.logger.isEnabledFor(_TRACEDATA):
            self.log(TRACEDATA, msg, **fields)


_ERROR, _WARN, _INFO, _DEBUG = int(ERROR), int(WARN), int(INFO), int(DEBUG)
_TRACE, _TRACEAUTH, _TRACEDATA = int(TRACE), int(TRACEAUTH), int(TRACEDATA)


def get_logger(pkg: str, **fields: Any) -> Logger:
    """The logger of a package (``"smtpserver"``, ``"dns"``, or a module's ``__name__``)."""
    return Logger(logging.getLogger(logger_name(pkg)), fields)
