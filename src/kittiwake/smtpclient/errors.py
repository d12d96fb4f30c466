"""Errors of an SMTP client session (connection level, not per recipient).

Each carries the :class:`Stage` it happened in, whether it is temporary
(RFC 5321 §4.2.1: retry later) and, when a server reply caused it, that reply
and the command it answered, so the queue can write a DSN with the remote
evidence (RFC 3464 §2.3.6).
"""

from __future__ import annotations

from kittiwake.smtp import Reply
from kittiwake.smtpclient.results import Stage

__all__ = [
    "AuthError",
    "ConnectError",
    "ConnectionLost",
    "ProtocolError",
    "ReplyError",
    "SMTPClientError",
    "SMTPTimeout",
    "TLSError",
]


class SMTPClientError(Exception):
    """Base class. ``str(err)`` is a one-line explanation naming the server."""

    def __init__(self, message: str, *, stage: Stage, temporary: bool = True,
                 reply: Reply | None = None, command: str | None = None) -> None:
        super().__init__(message)
        self.stage = stage
        self.temporary = temporary
        self.reply = reply
        self.command = command

    @property
    def permanent(self) -> bool:
        return not self.temporary


class ConnectError(SMTPClientError):
    """The TCP connection could not be made (refused, unreachable, connect timeout)."""


class SMTPTimeout(SMTPClientError):
    """No (complete) reply within the stage's timeout (RFC 5321 §4.5.3.2)."""


class ConnectionLost(SMTPClientError):
    """The server closed the connection or it broke while a reply was due."""


class ProtocolError(SMTPClientError):
    """The server sent something that is not an SMTP reply (RFC 5321 §4.2)."""


class ReplyError(SMTPClientError):
    """An unexpected reply outside a mail transaction: greeting (554 means this host
    refuses us, RFC 5321 §3.1), EHLO/HELO, RSET. ``temporary`` follows the code."""


class TLSError(SMTPClientError):
    """TLS could not be set up: STARTTLS not offered or refused, handshake failed,
    or the certificate check (PKIX, DANE, MTA-STS callback) rejected the server.

    The connection is closed. With opportunistic TLS the caller may reconnect
    without TLS (RFC 3207 §4: falling back is the sender's policy decision);
    with DANE, MTA-STS enforce or REQUIRETLS it must not (RFC 7672 §2.2,
    RFC 8461 §5, RFC 8689 §4.2.1). ``handshake`` is True when the TLS handshake
    itself (or certificate verification) failed, False when STARTTLS was not
    offered or was refused.
    """

    def __init__(self, message: str, *, stage: Stage = Stage.TLS, handshake: bool = True,
                 reply: Reply | None = None, command: str | None = None) -> None:
        super().__init__(message, stage=stage, temporary=True, reply=reply, command=command)
        self.handshake = handshake


class AuthError(SMTPClientError):
    """AUTH failed (RFC 4954 §6: 535 5.7.8 and friends), no common mechanism, or the
    server did not prove knowledge of the password (SCRAM, RFC 5802 §5)."""
