"""SMTP AUTH (RFC 4954): one SASL exchange with the failed-login limiter, as a service.

The connection driver (:mod:`.connection`) does the protocol: the 334
challenges, the base64, the final empty line after SCRAM's server-final
data, the replies, the log and the metrics. What needs the account's
stored credentials and the process-wide :class:`~kittiwake.limits.
LoginLimiter` (shared with IMAP and every SMTP listener) is here, in an
:class:`Exchange`: the SASL mechanism (RFC 4422) and the limiter's verdict
on the outcome. Its answers, :class:`AuthStep`, are plain values.

In the server process the driver runs a :class:`LocalExchange` itself. An
SMTP worker process (:mod:`kittiwake.server.smtpworker`) holds no
credentials: it sends the client's SASL data to the server process, which
runs the same :class:`LocalExchange` (:mod:`kittiwake.server.smtpworkers`).
So every attempt, on whatever worker, is counted in the one limiter, and
an attacker spreading guesses over processes gets no more of them.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from kittiwake.sasl import (
    Challenge,
    ChannelBinding,
    Credentials,
    Failure,
    FailureReason,
    ServerOptions,
    Success,
    new_server,
)

if TYPE_CHECKING:
    from kittiwake.smtpserver.context import ServerContext

Kind = Literal["challenge", "malformed", "unsupported", "ok", "failed", "refused",
               "unavailable"]


@dataclass(frozen=True)
class AuthStep:
    """What the driver answers next (picklable: it crosses the worker channel).

    - ``challenge``: send ``data`` (334);
    - ``malformed``: 501, the exchange is over;
    - ``unsupported``: 504 (no such mechanism);
    - ``ok``: authenticated as ``account`` (login name ``username``); ``data``
      is SCRAM's server-final message to send before the 235, if any;
    - ``failed``: wrong credentials (535), ``reason`` the SASL failure reason;
    - ``refused``: the limiter refused the attempt (535 all the same),
      ``reason`` its limit;
    - ``unavailable``: the exchange could not be run (an SMTP worker whose server
      process is going away): 454, a temporary failure (RFC 4954 §6).

    ``delay`` is the limiter's wait before this answer (for the metrics).
    """

    kind: Kind
    data: bytes = b""
    username: str = ""
    account: str | None = None
    mechanism: str = ""
    reason: str = ""
    delay: float = 0.0

    @property
    def final(self) -> bool:
        return self.kind != "challenge"


class Exchange(Protocol):
    """One AUTH exchange; :meth:`start` once, then :meth:`step` per client response
    while the last answer was a challenge; :meth:`close` when the session drops it."""

    async def start(self, initial: bytes | None) -> AuthStep: ...

    async def step(self, data: bytes) -> AuthStep: ...

    def close(self) -> None: ...


class Authenticator(Protocol):
    """Makes exchanges (:attr:`ServerContext.authenticator`; an SMTP worker's goes to
    the server process)."""

    def exchange(self, ip: str, mechanism: str,
                 channel_bindings: tuple[ChannelBinding, ...]) -> Exchange: ...


class LocalExchange:
    """An exchange run in this process, with the store's credentials and the context's
    login limiter (none in localserve)."""

    def __init__(self, ctx: ServerContext, ip: str, mechanism: str,
                 channel_bindings: tuple[ChannelBinding, ...]) -> None:
        self.ctx = ctx
        self.ip = ip
        self.mechanism = mechanism
        options = ServerOptions(get_credentials=self._credentials, hostname=ctx.hostname,
                                channel_bindings=channel_bindings)
        try:
            self.sasl = new_server(mechanism, options)
        except Exception:
            self.sasl = None

    def _credentials(self, username: str) -> Credentials | None:
        """The stored credentials of the login's account (the store's API; blocking)."""
        account = self.ctx.account_for_login(username)
        if account is None:
            return None
        stored = self.ctx.store.credentials(account)
        return Credentials.from_dict(json.loads(stored)) if stored else None

    async def start(self, initial: bytes | None) -> AuthStep:
        if self.sasl is None:
            return AuthStep("unsupported")
        # Credentials lookup and key derivation (PBKDF2) block: in a worker thread.
        return await self._answer(await asyncio.to_thread(self.sasl.start, initial))

    async def step(self, data: bytes) -> AuthStep:
        if self.sasl is None:
            return AuthStep("malformed")
        return await self._answer(await asyncio.to_thread(self.sasl.step, data))

    def close(self) -> None:
        self.sasl = None

    async def _answer(self, step: Challenge | Success | Failure) -> AuthStep:
        match step:
            case Challenge(data=data):
                return AuthStep("challenge", data)
            case Failure(reason=FailureReason.MALFORMED):
                self.sasl = None
                return AuthStep("malformed")
        assert isinstance(step, Success | Failure)
        self.sasl = None
        return await self._outcome(step)

    async def _outcome(self, step: Success | Failure) -> AuthStep:
        """Let the login limiter (:mod:`kittiwake.limits.login`) see the outcome before
        the client does.

        The limiter may delay the answer or refuse the attempt; a refusal gets the
        same 535 as a wrong password (RFC 4954 §6), even when the password was
        right, so neither guessers nor account probes learn anything from it. For
        SCRAM the server-final message would prove the password right, so it waits
        too.
        """
        username = step.username or ""
        delay = 0.0
        if not self.ctx.localserve:
            account = None if not username else \
                self.ctx.account_for_login(username) or username
            limiter = self.ctx.login_limiter
            attempt = await limiter.before_attempt(self.ip, account)
            delay = attempt.delay
            if attempt.refused:
                return AuthStep("refused", username=username, reason=attempt.reason,
                                delay=delay)
            limiter.record(attempt, ok=isinstance(step, Success))
        if isinstance(step, Failure):
            return AuthStep("failed", username=username, reason=str(step.reason),
                            delay=delay)
        return AuthStep("ok", step.server_final or b"", username=username,
                        account=self.ctx.account_for_login(step.username),
                        mechanism=step.mechanism, delay=delay)
