"""Submitting a prepared message (RFC 6409) with AUTH (RFC 4954), and keeping failures.

:func:`submit` connects to the configured server (STARTTLS, RFC 3207, or
implicit TLS, RFC 8314 §3.3; the certificate is verified for the configured
host name), authenticates with the most secure SASL mechanism both sides
offer, and sends the message. It never raises for connection or server
trouble: it returns a :class:`Failure` with the exit status a sendmail caller
expects (sysexits.h: ``EX_TEMPFAIL`` for a 4yz reply or a connection problem,
RFC 5321 §4.2.1; ``EX_NOUSER`` when the server refused recipients as unknown,
RFC 3463 X.1.x; ``EX_UNAVAILABLE`` for other permanent refusals).

:func:`keep_failure` writes the message to the failures directory, one file
per message, with ``X-Kittiwake-Sendmail-*`` fields on top that say why, when
and for whom; the rest of the file is the message as it would have been sent.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import secrets
import socket
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kittiwake.sendmail.prepare import Prepared
from kittiwake.sendmail.settings import SubmitSettings
from kittiwake.smtpclient import Client, Outcome, SMTPClientError, TLSMode

__all__ = ["EX_CONFIG", "EX_NOUSER", "EX_OK", "EX_SOFTWARE", "EX_TEMPFAIL", "EX_UNAVAILABLE",
           "EX_USAGE", "Failure", "keep_failure", "submit"]

# sysexits.h, as sendmail callers interpret them.
EX_OK = 0
EX_USAGE = 64
EX_NOUSER = 67
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70
EX_TEMPFAIL = 75
EX_CONFIG = 78


@dataclass(frozen=True)
class Failure:
    """Why (some) recipients did not get the message, and the exit status for it."""

    reason: str
    exit_code: int
    recipients: list[str]  # the recipients not delivered to


def _tls_context(settings: SubmitSettings) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.ca_file is not None:
        ctx.load_verify_locations(cafile=str(settings.ca_file))
    return ctx


async def submit(settings: SubmitSettings, prepared: Prepared, *,
                 local_hostname: str | None = None) -> Failure | None:
    """Submit ``prepared``; None when every recipient was accepted."""
    rcpts = prepared.recipients
    mode = {"starttls": TLSMode.STARTTLS, "tls": TLSMode.IMPLICIT,
            "none": TLSMode.NONE}[settings.tls]
    try:
        ctx = _tls_context(settings) if mode is not TLSMode.NONE else None
    except (OSError, ssl.SSLError) as exc:
        return Failure(f"{settings.path}: ca_file: {settings.ca_file}: "
                       f"{getattr(exc, 'strerror', None) or exc}", EX_CONFIG, list(rcpts))
    try:
        client = await Client.connect(
            settings.host, settings.port, local_hostname=local_hostname or socket.getfqdn(),
            timeouts=settings.timeout, tls=mode, tls_context=ctx,
            tls_server_name=settings.host.strip("[]") if ctx else None)
    except SMTPClientError as exc:
        return Failure(str(exc), EX_TEMPFAIL if exc.temporary else EX_UNAVAILABLE, list(rcpts))
    async with client:
        try:
            if settings.username is not None and settings.password is not None:
                await client.auth(settings.username, settings.password)
        except SMTPClientError as exc:
            await client.quit()
            return Failure(str(exc), EX_TEMPFAIL if exc.temporary else EX_UNAVAILABLE,
                           list(rcpts))
        eightbit = any(b >= 0x80 for b in prepared.data)
        smtputf8 = not all(a.isascii() for a in (prepared.mailfrom, *rcpts))
        result = await client.deliver(prepared.mailfrom, rcpts, prepared.data,
                                      eightbit=eightbit, smtputf8=smtputf8)
    failed = [r for r in result.recipients if r.outcome is not Outcome.DELIVERED]
    if not failed:
        return None
    reasons = "; ".join(dict.fromkeys(_why(r.recipient, r.reason, r.reply) for r in failed))
    if any(r.outcome is Outcome.TEMPORARY for r in failed):
        code = EX_TEMPFAIL
    elif all((r.enhanced or "").startswith("5.1.") for r in failed):
        code = EX_NOUSER  # RFC 3463 §3.2: X.1.x are addressing problems
    else:
        code = EX_UNAVAILABLE
    return Failure(reasons, code, [r.recipient for r in failed])


def _why(recipient: str, reason: str, reply: object) -> str:
    return f"{recipient}: {reply}" if reply is not None else f"{recipient}: {reason}"


def _header_value(text: str) -> str:
    """One line: no CR/LF may end up in a header field of the saved file."""
    return " ".join(text.split())


def keep_failure(directory: Path, data: bytes, *, reason: str, mailfrom: str,
                 recipients: Sequence[str], now: datetime.datetime | None = None) -> Path:
    """Write the message to ``directory`` (created 0700), one new file, fsynced.

    If that directory cannot be written, the system temporary directory is
    tried, so the message is never lost. Returns the file's path; raises
    OSError only when no place could be written.
    """
    when = now or datetime.datetime.now(datetime.UTC).astimezone()
    fields = [
        ("X-Kittiwake-Sendmail-Failed", when.isoformat(timespec="seconds")),
        ("X-Kittiwake-Sendmail-Reason", _header_value(reason)),
        ("X-Kittiwake-Sendmail-Envelope-From", f"<{mailfrom}>"),
        ("X-Kittiwake-Sendmail-Recipients", ", ".join(recipients)),
    ]
    head = "".join(f"{name}: {value}\r\n" for name, value in fields).encode("utf-8")
    name = f"{when.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{secrets.token_hex(4)}.eml"
    last: OSError | None = None
    for place in (directory, Path(tempfile.gettempdir()) / f"kittiwake-sendmail-{os.getuid()}"):
        try:
            place.mkdir(mode=0o700, parents=True, exist_ok=True)
            path = place / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(head + data)
                f.flush()
                os.fsync(f.fileno())
            with contextlib.suppress(OSError):
                dfd = os.open(place, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
            return path
        except OSError as exc:
            last = exc
    assert last is not None
    raise last
