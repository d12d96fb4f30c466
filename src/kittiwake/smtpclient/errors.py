"""Errors of an SMTP client session (connection level, not per recipient).

Each carries the :class:`Stage` it happened in, whether it is temporary
(RFC 5321 §4.2.1: retry later) and, when a server reply caused it, that reply
and the command it answered, so the queue can write a DSN with the remote
evidence (RFC 3464 §2.3.6).
"""

from __future__ import annotations

from dataclasses import dataclass

from kittiwake.smtp import Reply
from kittiwake.smtpclient.results import Stage

# RFC 8460 §4.3.1 negotiation failure result types (the TLSRPT "result-type").
TLSRPT_STARTTLS_NOT_SUPPORTED = "starttls-not-supported"
TLSRPT_HOST_MISMATCH = "certificate-host-mismatch"
TLSRPT_CERTIFICATE_EXPIRED = "certificate-expired"
TLSRPT_NOT_TRUSTED = "certificate-not-trusted"
TLSRPT_VALIDATION_FAILURE = "validation-failure"

__all__ = [
    "TLSRPT_CERTIFICATE_EXPIRED",
    "TLSRPT_HOST_MISMATCH",
    "TLSRPT_NOT_TRUSTED",
    "TLSRPT_STARTTLS_NOT_SUPPORTED",
    "TLSRPT_VALIDATION_FAILURE",
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

    ``tlsrpt_result_type`` is the RFC 8460 §4.3 result type for a TLS report:
    ``starttls-not-supported`` without a handshake, else what the certificate
    check found (OpenSSL's verify code, or the ``tls_verify`` callback's
    :class:`TLSRejection`), ``validation-failure`` when nothing more is known.
    """

    def __init__(self, message: str, *, stage: Stage = Stage.TLS, handshake: bool = True,
                 reply: Reply | None = None, command: str | None = None,
                 tlsrpt_result_type: str | None = None) -> None:
        super().__init__(message, stage=stage, temporary=True, reply=reply, command=command)
        self.handshake = handshake
        self.tlsrpt_result_type = tlsrpt_result_type or (
            TLSRPT_VALIDATION_FAILURE if handshake else TLSRPT_STARTTLS_NOT_SUPPORTED)


@dataclass(frozen=True)
class TLSRejection:
    """Why a ``tls_verify`` callback rejected the server, with the RFC 8460 §4.3
    result type to report (DANE: :attr:`kittiwake.dane.Verification.tlsrpt_result_type`)."""

    reason: str
    tlsrpt_result_type: str = TLSRPT_VALIDATION_FAILURE

    def __str__(self) -> str:
        return self.reason


# OpenSSL X509_V_ERR_* verify codes (x509_vfy.h) and their RFC 8460 §4.3.1 result types.
_VERIFY_CODES = {
    10: TLSRPT_CERTIFICATE_EXPIRED,  # CERT_HAS_EXPIRED
    62: TLSRPT_HOST_MISMATCH,  # HOSTNAME_MISMATCH
    64: TLSRPT_HOST_MISMATCH,  # IP_ADDRESS_MISMATCH
    2: TLSRPT_NOT_TRUSTED,  # UNABLE_TO_GET_ISSUER_CERT
    18: TLSRPT_NOT_TRUSTED,  # DEPTH_ZERO_SELF_SIGNED_CERT
    19: TLSRPT_NOT_TRUSTED,  # SELF_SIGNED_CERT_IN_CHAIN
    20: TLSRPT_NOT_TRUSTED,  # UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    21: TLSRPT_NOT_TRUSTED,  # UNABLE_TO_VERIFY_LEAF_SIGNATURE
    27: TLSRPT_NOT_TRUSTED,  # CERT_UNTRUSTED
    28: TLSRPT_NOT_TRUSTED,  # CERT_REJECTED
}


def tlsrpt_result_of_verify_code(code: int | None) -> str:
    """The RFC 8460 §4.3.1 result type of an OpenSSL certificate verify error."""
    return _VERIFY_CODES.get(code or 0, TLSRPT_VALIDATION_FAILURE)


class AuthError(SMTPClientError):
    """AUTH failed (RFC 4954 §6: 535 5.7.8 and friends), no common mechanism, or the
    server did not prove knowledge of the password (SCRAM, RFC 5802 §5)."""
