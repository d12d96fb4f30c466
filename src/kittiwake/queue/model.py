"""Record types of the outgoing queue: what is queued, what is due, what happened.

A queued message carries its SMTP envelope (RFC 5321 §3.3) with the extension
parameters that must survive until delivery: SMTPUTF8 (RFC 6531), 8BITMIME
(RFC 6152), REQUIRETLS (RFC 8689 §4), DSN parameters (RFC 3461 §4) and a
FUTURERELEASE hold-until time (RFC 4865 §3). Each recipient has its own row
with retry state. Times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from kittiwake.smtp.params import Notify, ORcpt, Ret


class QueueError(Exception):
    """A queue operation failed (bad address, unknown message, ...)."""


class MessageNotFound(QueueError):
    """No queued message has this id."""


class Status(StrEnum):
    """State of one recipient of a queued message."""

    QUEUED = "queued"
    DELIVERED = "delivered"
    FAILED = "failed"


class Outcome(StrEnum):
    """Result of one delivery attempt for a recipient (RFC 5321 §4.2.1 reply classes)."""

    OK = "ok"  # 2yz: accepted by the next hop
    TEMPORARY = "temporary"  # 4yz, connection failure, DNS temporary failure: retry
    PERMANENT = "permanent"  # 5yz: give up now


@dataclass(frozen=True, slots=True)
class DeliveryError:
    """The last error of a recipient: reply code, enhanced code (RFC 3463), text, host.

    Two kinds, and a DSN must not mix them up (RFC 3464 §2.3.5, §2.3.6):

    - a remote server's reply: ``code`` is its reply code, ``host`` the server
      (the DSN's Remote-MTA), ``text`` its words;
    - kittiwake's own finding or decision (no MX, null MX, a TLS or DANE
      failure, a local refusal such as 8-bit data for a server without
      8BITMIME): ``code`` is 0, ``enhanced`` the fitting RFC 3463 code,
      ``text`` says what was found and ``host`` is the host it concerns, if
      any (shown by ``queue list``; a DSN names it as no Remote-MTA, since
      that host reported nothing). Build it with :meth:`ours`.
    """

    code: int = 0
    enhanced: str = ""
    text: str = ""
    host: str = ""

    @classmethod
    def ours(cls, enhanced: str, text: str, host: str = "") -> DeliveryError:
        """A failure kittiwake found or decided itself (no remote reply), about ``host``."""
        return cls(0, enhanced, text, host)

    @property
    def is_reply(self) -> bool:
        """Whether a remote server said this (else kittiwake did)."""
        return self.code != 0

    def short(self, width: int = 40) -> str:
        words = " ".join(x for x in (str(self.code) if self.code else "", self.enhanced,
                                     self.text) if x)
        return words if len(words) <= width else words[: width - 1] + "…"


@dataclass(frozen=True, slots=True)
class NewRecipient:
    """A recipient to enqueue, with its RFC 3461 §4.1/§4.2 NOTIFY and ORCPT."""

    address: str
    notify: frozenset[Notify] | None = None
    orcpt: ORcpt | None = None


@dataclass(frozen=True, slots=True)
class Envelope:
    """What :meth:`QueueStore.enqueue` needs besides the message bytes.

    ``account`` is the submitting account, None for forwarded mail.
    ``mail_from`` is empty for the null reverse-path (DSNs, RFC 5321 §4.5.5).
    ``requiretls``: True when MAIL FROM had REQUIRETLS (RFC 8689 §4.1), False
    when the message had ``TLS-Required: No`` (RFC 8689 §5), None when unset.
    """

    mail_from: str
    recipients: tuple[NewRecipient, ...]
    account: str | None = None
    smtputf8: bool = False
    eightbit: bool = False
    requiretls: bool | None = None
    tls_required_no: bool = False
    ret: Ret | None = None
    envid: str | None = None
    release_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """A message in the queue (shared by all its recipients)."""

    id: int
    account: str | None
    mail_from: str
    smtputf8: bool
    eightbit: bool
    requiretls: bool | None
    tls_required_no: bool
    ret: Ret | None
    envid: str | None
    size: int
    created: datetime
    release_at: datetime | None
    path: Path
    prefix: bytes = b""  # header lines sent before the file (QueueStore.add_file)

    @property
    def from_domain(self) -> str:
        return domain_of(self.mail_from)

    @property
    def file_size(self) -> int:
        """Bytes of the message file (``size`` counts the prefix too)."""
        return self.size - len(self.prefix)


@dataclass(frozen=True, slots=True)
class Recipient:
    """One recipient row: retry state and last error."""

    id: int
    message_id: int
    address: str
    domain: str  # A-label form, lower case
    notify: frozenset[Notify] | None
    orcpt: ORcpt | None
    attempts: int
    next_attempt: datetime
    last_attempt: datetime | None
    last_error: DeliveryError | None
    status: Status
    held: bool
    dsn_delayed_sent: bool


@dataclass(frozen=True, slots=True)
class Batch:
    """Due recipients of one message at one destination domain: one SMTP transaction."""

    message: QueuedMessage
    domain: str
    recipients: tuple[Recipient, ...]

    @property
    def message_id(self) -> int:
        return self.message.id

    @property
    def path(self) -> Path:
        return self.message.path


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What a deliver callback reports for one recipient of a batch."""

    recipient_id: int
    outcome: Outcome
    error: DeliveryError | None = None
    # True when the destination itself failed (DNS, no MX host or relay reachable,
    # TLS, greeting or EHLO refused): no server took part of the transaction, so
    # the other messages for the destination are paused with it (Scheduler).
    destination: bool = False


@dataclass(frozen=True, slots=True)
class RecordRequest:
    """One :meth:`QueueStore.record_result` call, for recording several at once."""

    ids: list[int]
    outcome: Outcome
    error: DeliveryError | None = None
    host: str = ""
    now: datetime | None = None
    keep_files: bool = False
    not_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class Recorded:
    """What :meth:`QueueStore.record_result` changed.

    ``finished`` are recipients that reached DELIVERED or FAILED (moved to the
    history); ``needs_delay_dsn`` are still-queued recipients that just became
    due for a "delayed" DSN (RFC 3464 action=delayed); ``removed_messages``
    are messages with no queued recipient left (their files are gone unless
    ``keep_files`` was given).
    """

    finished: tuple[Recipient, ...] = ()
    needs_delay_dsn: tuple[Recipient, ...] = ()
    removed_messages: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class HoldRule:
    """Hold new messages matching all non-empty fields (empty = any)."""

    id: int
    account: str = ""
    from_domain: str = ""
    to_domain: str = ""

    def matches(self, account: str | None, from_domain: str, to_domain: str) -> bool:
        return ((not self.account or self.account == (account or ""))
                and (not self.from_domain or self.from_domain == from_domain)
                and (not self.to_domain or self.to_domain == to_domain))


@dataclass(frozen=True, slots=True)
class Filter:
    """Selects queued recipients for list/hold/release/kick/drop; empty = any."""

    ids: tuple[int, ...] = ()
    account: str = ""
    from_domain: str = ""
    to_domain: str = ""
    held: bool | None = None

    def is_empty(self) -> bool:
        return not (self.ids or self.account or self.from_domain or self.to_domain
                    or self.held is not None)


@dataclass(frozen=True, slots=True)
class Retired:
    """A recipient that left the queue (kept a while for ``queue list --all``)."""

    recipient_id: int
    message_id: int
    account: str | None
    mail_from: str
    address: str
    status: Status
    attempts: int
    last_attempt: datetime | None
    last_error: DeliveryError | None
    created: datetime
    retired: datetime


@dataclass(slots=True)
class Dropped:
    """A message (part) removed by ``drop``, for the caller's DSNs."""

    message: QueuedMessage
    recipients: list[Recipient] = field(default_factory=list)


def domain_of(address: str) -> str:
    """The domain of ``local@domain`` in A-label form ('' for the null path)."""
    from kittiwake.dns.names import domain_key

    if "@" not in address:
        return ""
    # An RFC 5321 §4.1.3 address literal is only lower-cased.
    return domain_key(address.rsplit("@", 1)[1])


def to_json(value: Any) -> Any:
    """Record types as JSON-ready dicts (datetimes as ISO 8601, sets as sorted lists)."""
    from dataclasses import fields, is_dataclass

    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, frozenset | set):
        return sorted(str(v) for v in value)
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
