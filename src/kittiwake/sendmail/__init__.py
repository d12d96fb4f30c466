"""A ``/usr/sbin/sendmail`` replacement that submits to a mail server (RFC 6409, RFC 4954).

Programs (cron, web applications, scripts) hand a message to ``sendmail`` on
standard input. This package does what such a program expects: it reads the
message, takes recipients from the arguments or the header (``-t``), adds
the header fields a submission needs, and submits it with authentication to
the configured server. A message that cannot be submitted is kept in a
failures directory, never lost.

- ``args``: the traditional sendmail command line, parsed (:func:`parse_args`).
- ``settings``: the submission configuration file (:func:`load_settings`).
- ``prepare``: reading and completing the message (:func:`read_message`,
  :func:`prepare_message`).
- ``submit``: submitting and keeping failures (:func:`submit`, :func:`keep_failure`).
"""

from kittiwake.sendmail.args import ArgsError, Options, parse_args
from kittiwake.sendmail.prepare import (
    NoRecipients,
    Prepared,
    normalize_line_ends,
    prepare_message,
    read_message,
)
from kittiwake.sendmail.settings import DEFAULT_CONF, SettingsError, SubmitSettings, load_settings
from kittiwake.sendmail.submit import (
    EX_CONFIG,
    EX_NOUSER,
    EX_OK,
    EX_SOFTWARE,
    EX_TEMPFAIL,
    EX_UNAVAILABLE,
    EX_USAGE,
    Failure,
    keep_failure,
    submit,
)

__all__ = [
    "DEFAULT_CONF", "EX_CONFIG", "EX_NOUSER", "EX_OK", "EX_SOFTWARE", "EX_TEMPFAIL",
    "EX_UNAVAILABLE", "EX_USAGE", "ArgsError", "Failure", "NoRecipients", "Options",
    "Prepared", "SettingsError", "SubmitSettings", "keep_failure", "load_settings",
    "normalize_line_ends", "parse_args", "prepare_message", "read_message", "submit",
]
