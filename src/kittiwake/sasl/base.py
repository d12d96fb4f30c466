"""The sans-I/O SASL framework (RFC 4422): step results, server and client mechanism bases.

A server mechanism is fed the client's decoded responses and answers with a
:data:`Step`: a :class:`Challenge` to send, :class:`Success` or
:class:`Failure`. The driver (SMTP AUTH, RFC 4954; IMAP AUTHENTICATE, RFC
9051 §6.2.2) does the base64 framing, the "*" cancellation and the I/O.

A client mechanism produces the initial response and one response per server
challenge, and raises :class:`ClientError` when the server misbehaves.
"""

from __future__ import annotations

import base64
import enum
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from kittiwake.sasl.credentials import Credentials

__all__ = [
    "Challenge",
    "ChannelBinding",
    "ClientError",
    "ClientMechanism",
    "Failure",
    "FailureReason",
    "Malformed",
    "ServerMechanism",
    "ServerOptions",
    "Step",
    "Success",
    "random_nonce",
]


class FailureReason(enum.StrEnum):
    """Why a server exchange failed; the driver maps it to its protocol's reply."""

    # The client's data does not follow the mechanism's syntax (bad UTF-8, missing
    # NUL, bad SCRAM attributes, initial response where none is allowed, ...).
    # SMTP: 501 5.5.2; IMAP: BAD (or NO).
    MALFORMED = "malformed"
    # Unknown user, wrong password/proof, no stored keys for this mechanism.
    # SMTP: 535 5.7.8; IMAP: NO [AUTHENTICATIONFAILED].
    INVALID_CREDENTIALS = "invalid-credentials"
    # Credentials were right but the requested authzid is not allowed.
    # SMTP: 535 5.7.8; IMAP: NO [AUTHORIZATIONFAILED].
    AUTHORIZATION_FAILED = "authorization-failed"
    # SCRAM channel binding (RFC 5802 §6): data mismatch, unsupported type,
    # "y" while the server offers -PLUS (downgrade), "p" without -PLUS.
    # SMTP: 535 5.7.8; IMAP: NO [AUTHENTICATIONFAILED].
    CHANNEL_BINDING = "channel-binding"


@dataclass(frozen=True)
class Challenge:
    """Send ``data`` to the client (SMTP ``334 base64``, IMAP ``+ base64``)."""

    data: bytes


@dataclass(frozen=True)
class Success:
    """Authentication succeeded.

    ``username`` is the authentication identity as the client sent it (after
    SASL decoding); ``authzid`` the requested authorization identity or None.
    ``server_final`` is data the client must see with the success (SCRAM's
    server-final-message): SMTP sends it as a last ``334`` challenge, waits for
    an empty line, then replies 235; IMAP may send it the same way or, with
    SASL-IR semantics of RFC 9051, as ``+`` then OK.
    """

    mechanism: str
    username: str
    authzid: str | None = None
    server_final: bytes | None = None
    channel_binding: str | None = None  # the binding type used, for -PLUS

    @property
    def identity(self) -> str:
        """The identity to act as: authzid when given, else the username."""
        return self.authzid or self.username


@dataclass(frozen=True)
class Failure:
    """Authentication failed. ``detail`` is for logs, not for the client."""

    reason: FailureReason
    detail: str
    username: str | None = None  # when known, for logging and rate limiting


Step = Challenge | Success | Failure


class Malformed(Exception):
    """Internal: the client's data is syntactically wrong (becomes Failure MALFORMED)."""


class _Failed(Exception):
    """Internal: a non-syntax failure to turn into :class:`Failure`."""

    def __init__(self, reason: FailureReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ChannelBinding:
    """Channel binding data of the connection (RFC 5056), e.g. ``tls-exporter``."""

    type: str  # "tls-exporter" (RFC 9266), "tls-unique", "tls-server-end-point" (RFC 5929)
    data: bytes


def random_nonce() -> str:
    """A fresh nonce of printable ASCII without "," (RFC 5802 §7 ``printable``)."""
    return base64.b64encode(os.urandom(18)).decode("ascii")


def _deny_other_authzid(username: str, authzid: str) -> bool:
    return False


@dataclass(frozen=True)
class ServerOptions:
    """What server mechanisms need from the driver.

    ``get_credentials(username)`` returns the stored credentials or None for
    an unknown user; it gets the username as sent (the driver normalises, e.g.
    case-folds, inside it). ``authorize(username, authzid)`` decides whether an
    authenticated user may act as a different ``authzid`` (default: never).
    ``channel_bindings`` are the bindings available on this connection; -PLUS
    is only possible when non-empty. ``nonce`` is the randomness seam (SCRAM
    server nonce part, CRAM-MD5 challenge ``<nonce@hostname>``).
    """

    get_credentials: Callable[[str], Credentials | None]
    hostname: str = "localhost"
    channel_bindings: tuple[ChannelBinding, ...] = ()
    authorize: Callable[[str, str], bool] = _deny_other_authzid
    nonce: Callable[[], str] = random_nonce

    def binding(self, cb_type: str) -> ChannelBinding | None:
        for cb in self.channel_bindings:
            if cb.type == cb_type:
                return cb
        return None


class ServerMechanism(ABC):
    """One server-side authentication exchange. Create a new one per attempt.

    Call :meth:`start` once with the initial response (None if the client sent
    none; ``b""`` for an empty one, SMTP's "="), then :meth:`step` with each
    client response while the last result was a :class:`Challenge`. Never raises
    on client data; calling it after a final result gives Failure MALFORMED.
    """

    name: str = ""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self._started = False
        self._done = False
        self.username: str | None = None

    @property
    def done(self) -> bool:
        return self._done

    def start(self, initial_response: bytes | None) -> Step:
        if self._started:
            return self._finish(Failure(FailureReason.MALFORMED, "start() called twice"))
        self._started = True
        return self._guard(lambda: self._start(initial_response))

    def step(self, client_data: bytes) -> Step:
        if not self._started or self._done:
            return self._finish(Failure(FailureReason.MALFORMED, "no exchange in progress"))
        return self._guard(lambda: self._step(client_data))

    def _guard(self, fn: Callable[[], Step]) -> Step:
        try:
            result = fn()
        except Malformed as exc:
            result = Failure(FailureReason.MALFORMED, str(exc), self.username)
        except _Failed as exc:
            result = Failure(exc.reason, exc.detail, self.username)
        return self._finish(result)

    def _finish(self, result: Step) -> Step:
        if not isinstance(result, Challenge):
            self._done = True
        return result

    def _fail(self, reason: FailureReason, detail: str) -> _Failed:
        return _Failed(reason, detail)

    @abstractmethod
    def _start(self, initial_response: bytes | None) -> Step: ...

    @abstractmethod
    def _step(self, client_data: bytes) -> Step: ...


class ClientError(Exception):
    """The server's SASL data is malformed or fails verification (e.g. SCRAM signature)."""


class ClientMechanism(ABC):
    """One client-side authentication exchange.

    ``initial_response()`` gives the data for ``AUTH MECH <ir>`` (None when the
    mechanism has none or the server speaks first). ``respond(challenge)`` turns
    each server challenge into the next response. When the server reports
    success, call ``finish(additional_data)``: it raises :class:`ClientError`
    if the mechanism did not authenticate the server (SCRAM without a verified
    server signature).
    """

    name: str = ""

    @abstractmethod
    def initial_response(self) -> bytes | None: ...

    @abstractmethod
    def respond(self, challenge: bytes) -> bytes: ...

    def finish(self, additional_data: bytes | None = None) -> None:
        if additional_data:
            raise ClientError(f"{self.name}: unexpected data with success")
