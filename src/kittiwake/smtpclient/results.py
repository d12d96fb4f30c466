"""What an SMTP delivery attempt produced: per-recipient outcomes with the remote evidence.

Each recipient ends :class:`Outcome` ``delivered``, ``temporary`` or
``permanent`` (RFC 5321 §4.2.1: 2yz, 4yz, 5yz), with the remote :class:`Reply`
that decided it and the command it answered, as a DSN needs them (RFC 3464
§2.3.6 Diagnostic-Code, §2.3.4 Status); or with a local reason when the
client decided itself (no SMTPUTF8, no REQUIRETLS, message too big, ...).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from kittiwake.smtp import Reply

__all__ = ["CommandReply", "DeliveryResult", "Outcome", "RecipientResult", "Stage"]


class Stage(enum.StrEnum):
    """The step of the session a reply or an error belongs to (RFC 5321 §4.5.3.2 timeouts)."""

    CONNECT = "connect"
    TLS = "tls"
    GREETING = "greeting"
    EHLO = "ehlo"
    HELO = "helo"
    STARTTLS = "starttls"
    AUTH = "auth"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"  # the DATA command, expecting 354
    DATA_END = "data-end"  # the "." ending the message data
    BDAT = "bdat"
    RSET = "rset"
    QUIT = "quit"
    LOCAL = "local"  # decided by the client before sending


class Outcome(enum.StrEnum):
    """Fate of one recipient in one attempt."""

    DELIVERED = "delivered"
    TEMPORARY = "temporary"  # try again later (4yz, connection trouble)
    PERMANENT = "permanent"  # do not retry (5yz or a local permanent reason)


@dataclass(frozen=True)
class CommandReply:
    """One remote reply and the command it answered (``command`` has no credentials)."""

    stage: Stage
    command: str
    reply: Reply


@dataclass(frozen=True)
class RecipientResult:
    """Outcome for one recipient.

    ``reply``/``command``/``stage`` are the remote reply that decided the
    outcome and what it answered; ``reply`` is None when the client decided
    (``stage`` is then ``local`` or where the connection failed) and
    ``reason`` says why, with ``status`` the RFC 3463 code that fits it
    (``5.6.3`` for 8-bit data refused locally, ``4.4.2`` for a lost
    connection, ...).
    """

    recipient: str
    outcome: Outcome
    reason: str
    reply: Reply | None = None
    command: str | None = None
    stage: Stage | None = None
    status: str = ""

    @property
    def enhanced(self) -> str | None:
        """The RFC 3463 status for a DSN: the reply's own, the local decision's, else
        one from the outcome."""
        if self.reply is not None and self.reply.enhanced:
            return self.reply.enhanced
        if self.reply is None and self.status:
            return self.status
        return {Outcome.DELIVERED: "2.0.0", Outcome.TEMPORARY: "4.0.0",
                Outcome.PERMANENT: "5.0.0"}[self.outcome]


@dataclass
class DeliveryResult:
    """All recipients of one :meth:`Client.deliver` call, in the order given.

    ``replies`` is every remote reply of the transactions, in order.
    ``transactions`` counts MAIL transactions started (RCPTMAX splits).
    ``dsn_relayed`` is True when DSN parameters were requested but the server
    does not support DSN (RFC 3461 §4.1: the client owes the "relayed" notices).
    """

    recipients: list[RecipientResult] = field(default_factory=list)
    replies: list[CommandReply] = field(default_factory=list)
    transactions: int = 0
    dsn_relayed: bool = False

    def by_outcome(self, outcome: Outcome) -> list[RecipientResult]:
        return [r for r in self.recipients if r.outcome is outcome]

    @property
    def delivered(self) -> list[RecipientResult]:
        return self.by_outcome(Outcome.DELIVERED)

    @property
    def temporary(self) -> list[RecipientResult]:
        return self.by_outcome(Outcome.TEMPORARY)

    @property
    def permanent(self) -> list[RecipientResult]:
        return self.by_outcome(Outcome.PERMANENT)
