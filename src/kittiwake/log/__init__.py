"""Logging for kittiwake: levels, logfmt/JSON lines, connection ids, transcripts.

See DESIGN.md "Logging". In short::

    from kittiwake import log

    log.setup("info", {"smtpserver": "trace"})          # once, at start
    logger = log.get_logger("smtpserver")
    with log.bind(cid=log.new_connection_id()):          # per connection task
        logger.info("connection", remote="192.0.2.1")    # ... cid=... remote=...
        t = log.SMTPTranscript(logger)
        t.client(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==")     # C: AUTH PLAIN *** (at trace)

Levels, most to least severe: error, warn, info, debug, trace, traceauth,
tracedata.
"""

from kittiwake.log.context import bind, bind_fields, context_fields, new_connection_id
from kittiwake.log.formatting import JSONFormatter, LogfmtFormatter
from kittiwake.log.imaptranscript import IMAPTranscript
from kittiwake.log.levels import (
    DEBUG,
    ERROR,
    INFO,
    TRACE,
    TRACEAUTH,
    TRACEDATA,
    WARN,
    Level,
    level_name,
    parse_level,
)
from kittiwake.log.logger import Logger, get_logger
from kittiwake.log.setup import (
    Format,
    current_levels,
    parse_levels,
    reset,
    set_levels,
    setup,
)
from kittiwake.log.smtptranscript import SMTPTranscript
from kittiwake.log.transcript import (
    AUTH_PLACEHOLDER,
    Direction,
    Kind,
    Transcript,
    data_placeholder,
    http_header_kind,
)

__all__ = [
    "AUTH_PLACEHOLDER", "DEBUG", "ERROR", "INFO", "TRACE", "TRACEAUTH", "TRACEDATA", "WARN",
    "Direction", "Format", "IMAPTranscript", "JSONFormatter", "Kind", "Level", "LogfmtFormatter",
    "Logger", "SMTPTranscript", "Transcript", "bind", "bind_fields", "context_fields",
    "current_levels", "data_placeholder", "get_logger", "http_header_kind", "level_name",
    "new_connection_id", "parse_level", "parse_levels", "reset", "set_levels", "setup",
]
