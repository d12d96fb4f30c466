"""The machine-readable part of a DSN: ``message/delivery-status`` (RFC 3464 §2).

:func:`delivery_status` writes the per-message fields (§2.2) and one group
of per-recipient fields (§2.3) for each recipient, groups separated by an
empty line (§2.1). With ``utf8`` it writes the body of RFC 6533
``message/global-delivery-status``: UTF-8 text is allowed in field values
and non-ASCII addresses use the ``utf-8`` address type as unitext (RFC 6533
§3); without it every non-ASCII address is written as
``utf-8-addr-xtext`` (``\\x{HEX}`` escapes) and other text is made ASCII.

Values that came from the network (the remote reply, host names, the
ENVID, addresses) are cleaned so they cannot end a field or add one.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from kittiwake.message.headers import fold_header
from kittiwake.smtp.params import Notify, ORcpt, xtext_encode


class DeliveryError(Protocol):
    """What a DSN says of a recipient's last error (the queue's ``DeliveryError`` has it).

    ``code`` is a remote server's reply code, 0 for kittiwake's own finding;
    ``host`` the remote server (the DSN's Remote-MTA) when there was a reply.
    """

    @property
    def code(self) -> int: ...
    @property
    def enhanced(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def host(self) -> str: ...


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_STATUS = re.compile(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}")  # RFC 3463 §2, ASCII digits


class Action(StrEnum):
    """RFC 3464 §2.3.3 action-value."""

    FAILED = "failed"
    DELAYED = "delayed"
    DELIVERED = "delivered"
    RELAYED = "relayed"
    EXPANDED = "expanded"


@dataclass(frozen=True, slots=True)
class RecipientReport:
    """What a DSN says about one recipient.

    ``address`` is the recipient as given in RCPT TO (the Final-Recipient,
    RFC 3464 §2.3.2); ``notify``/``orcpt`` are its RFC 3461 §4.1/§4.2
    parameters; ``error`` the last reply (code, enhanced code, text, host);
    ``status`` an explicit RFC 3463 code (else derived from ``error`` and
    ``action``); ``note`` a sentence for the human-readable part (e.g. why
    it was removed); ``will_retry_until`` for ``delayed`` (§2.3.9).
    """

    address: str
    action: Action
    error: DeliveryError | None = None
    status: str = ""
    notify: frozenset[Notify] | None = None
    orcpt: ORcpt | None = None
    attempts: int = 0
    last_attempt: datetime | None = None
    will_retry_until: datetime | None = None
    note: str = ""

    def status_code(self) -> str:
        """RFC 3464 §2.3.4 status: the reply's enhanced code when it fits the action."""
        if self.status and _STATUS.fullmatch(self.status):
            return self.status
        enhanced = self.error.enhanced if self.error else ""
        wanted = {Action.FAILED: "45", Action.DELAYED: "4"}.get(self.action, "2")
        if enhanced and _STATUS.fullmatch(enhanced) and enhanced[0] in wanted:
            return enhanced
        code = self.error.code if self.error else 0
        if self.action is Action.FAILED:
            if 400 <= code < 500:
                return "4.0.0"
            if self.error is not None and not code and self.attempts > 1:
                return "4.4.7"  # RFC 3463: delivery time expired (gave up retrying)
            return "5.0.0"
        if self.action is Action.DELAYED:
            return "4.0.0"
        return "2.0.0"


def wants_notice(rcpt: RecipientReport) -> bool:
    """Whether the sender asked for (or did not refuse) a DSN of this kind.

    RFC 3461 §4.1: NEVER asks for none; otherwise FAILURE, DELAY and
    SUCCESS each ask for their kind. Without NOTIFY the MTA decides: we
    report failures and delays, not successes ("NOTIFY=FAILURE" or
    "NOTIFY=FAILURE,DELAY" is the behaviour §4.1 describes as default).
    """
    notify = rcpt.notify
    if notify is None:
        return rcpt.action in (Action.FAILED, Action.DELAYED)
    if Notify.NEVER in notify:
        return False
    if rcpt.action is Action.FAILED:
        return Notify.FAILURE in notify
    if rcpt.action is Action.DELAYED:
        return Notify.DELAY in notify
    return Notify.SUCCESS in notify


def clean(text: str, *, utf8: bool = True, limit: int = 900) -> str:
    """One line of field text: control characters become spaces, runs collapse.

    Without ``utf8`` non-ASCII characters become ``?`` (RFC 3464 fields are
    US-ASCII). Cut at ``limit`` characters.
    """
    text = " ".join(_CONTROL.sub(" ", text).split())
    if not utf8:
        text = text.encode("ascii", "replace").decode("ascii")
    return text[:limit]


def _split_address(address: str) -> tuple[str, str]:
    local, at, domain = address.rpartition("@")
    return (local, domain) if at else (address, "")


def ascii_domain(domain: str) -> str:
    """A domain in A-label form when it can be converted, else as it is."""
    if domain.isascii():
        return domain
    from kittiwake.dns.names import InvalidName, mail_domain

    try:
        return mail_domain(domain).ascii
    except InvalidName:
        return domain


def utf8_addr_xtext(address: str) -> str:
    """RFC 6533 §3 utf-8-addr-xtext: non-ASCII as ``\\x{HEX}``, then xtext."""
    escaped = "".join(c if c.isascii() and c != "\\" else f"\\x{{{ord(c):X}}}"
                      for c in address)
    return xtext_encode(escaped)


def typed_address(address: str, *, utf8: bool) -> str:
    """``rfc822; addr`` or, for non-ASCII addresses, ``utf-8; addr`` (RFC 6533 §3).

    An address whose only non-ASCII part is the domain is written as rfc822
    with the domain in A-labels.
    """
    address = clean(address, limit=500)
    if address.isascii():
        return f"rfc822; {address}"
    local, domain = _split_address(address)
    if local.isascii():
        alabel = ascii_domain(domain)
        if alabel.isascii():
            return f"rfc822; {local}@{alabel}"
    if utf8:
        return f"utf-8; {address}"
    return f"utf-8; {utf8_addr_xtext(address)}"


def _original_recipient(orcpt: ORcpt, *, utf8: bool) -> str:
    """RFC 3464 §2.3.1: the ORCPT address type and address as the client gave them."""
    addr_type = clean(orcpt.addr_type, utf8=False, limit=40) or "rfc822"
    address = clean(orcpt.address, limit=500)
    if not address.isascii():
        if utf8:
            return f"utf-8; {address}"
        return f"utf-8; {utf8_addr_xtext(address)}"
    return f"{addr_type}; {address}"


def date(value: datetime) -> str:
    """An RFC 5322 §3.3 date-time (RFC 3464 §2.1.3), UTC for naive values."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return email.utils.format_datetime(value)


def diagnostic(error: DeliveryError, *, utf8: bool) -> str:
    """RFC 3464 §2.3.6 Diagnostic-Code: ``smtp; 550 5.1.1 text`` for SMTP replies.

    An error without a reply code (connection failure, DNS) gets the
    ``X-Kittiwake`` diagnostic type (§2.3.6: "X-" types for others).
    """
    text = clean(error.text, utf8=utf8)
    if error.code:
        words = [str(error.code)]
        if error.enhanced and _STATUS.fullmatch(error.enhanced) and \
                not text.startswith(error.enhanced):
            words.append(error.enhanced)
        if text:
            words.append(text)
        return "smtp; " + " ".join(words)
    return "X-Kittiwake; " + (text or "delivery failed")


def _fields(pairs: Sequence[tuple[str, str]]) -> str:
    return "".join(fold_header(name, value) for name, value in pairs)


def delivery_status(*, reporting_mta: str, recipients: Sequence[RecipientReport],
                    arrival: datetime | None = None, envid: str | None = None,
                    utf8: bool = False) -> str:
    """The body of message/delivery-status (or global-delivery-status with ``utf8``)."""
    message: list[tuple[str, str]] = []
    if envid:
        # RFC 3464 §2.2.1: the ENVID as the client gave it (decoded from xtext).
        message.append(("Original-Envelope-Id", clean(envid, utf8=utf8, limit=100)))
    message.append(("Reporting-MTA", f"dns; {clean(reporting_mta, utf8=False)}"))  # §2.2.2
    if arrival is not None:
        message.append(("Arrival-Date", date(arrival)))  # §2.2.5
    groups = [_fields(message)]
    for rcpt in recipients:
        fields: list[tuple[str, str]] = []
        if rcpt.orcpt is not None:
            fields.append(("Original-Recipient", _original_recipient(rcpt.orcpt, utf8=utf8)))
        fields.append(("Final-Recipient", typed_address(rcpt.address, utf8=utf8)))  # §2.3.2
        fields.append(("Action", str(rcpt.action)))  # §2.3.3
        fields.append(("Status", rcpt.status_code()))  # §2.3.4
        if rcpt.error is not None and rcpt.error.host and rcpt.error.code:
            # §2.3.5: the MTA that reported the status; a host that only failed to
            # meet kittiwake's checks (no reply, code 0) reported nothing.
            host = clean(rcpt.error.host, utf8=False, limit=255)
            fields.append(("Remote-MTA", f"dns; {host}"))  # §2.3.5
        if rcpt.error is not None and (rcpt.error.code or rcpt.error.text):
            fields.append(("Diagnostic-Code", diagnostic(rcpt.error, utf8=utf8)))  # §2.3.6
        if rcpt.last_attempt is not None:
            fields.append(("Last-Attempt-Date", date(rcpt.last_attempt)))  # §2.3.7
        if rcpt.action is Action.DELAYED and rcpt.will_retry_until is not None:
            fields.append(("Will-Retry-Until", date(rcpt.will_retry_until)))  # §2.3.9
        groups.append(_fields(fields))
    # RFC 3464 §2.1: per-message fields, then per-recipient groups, each after a blank line.
    return "\r\n".join(groups)
