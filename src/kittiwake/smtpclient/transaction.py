"""The SMTP client's mail transactions, sans-I/O (RFC 5321 §3.3, RFC 2920, RFC 3030).

:func:`plan_delivery` takes the server's :class:`Capabilities` and a message
and decides, before anything is sent, what can be sent at all (SMTPUTF8,
8BITMIME, REQUIRETLS, SIZE, BINARYMIME), with which MAIL parameters, and how
the recipients are split into transactions (LIMITS RCPTMAX, RFC 9422 §4.1).

A :class:`Transaction` then runs one MAIL transaction: the driver writes what
:meth:`Transaction.to_send` returns, feeds every reply to
:meth:`Transaction.receive`, and reads :meth:`Transaction.results`. With
PIPELINING (RFC 2920 §3.1) MAIL, all RCPTs and DATA go in one group and the
replies are matched to the commands in order; without it one command at a
time. A rejected MAIL decides every recipient (later replies are optional, so
a server that closes after ``550`` to MAIL is not an error); DATA is only
followed by the message when some RCPT was accepted (RFC 2920 §3.1: else
only the ``.`` is sent). BDAT (RFC 3030) sends the message as one ``LAST``
chunk, after the RCPT replies.

The message is a :class:`MessageSource` (a prefix in memory and a file
range); the transaction never reads it. A message that is all in memory is
returned dot-stuffed in :attr:`Send.data`; one with a file part comes back
as :attr:`Send.stream`, which the driver reads in chunks and writes
(dot-stuffed with :class:`DotStuffer` when :attr:`Send.stuff`), so no copy
of the whole message is ever made.

On a session that already carried a transaction, ``reset`` puts RSET
(RFC 5321 §4.1.1.5) in front of MAIL: in the same pipelined group (RFC 2920
§3.1 allows RSET anywhere in a group), so reusing a connection costs no
extra round trip. A refused RSET makes every recipient temporary.
"""

from __future__ import annotations

import enum
import functools
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from kittiwake.smtp import (
    DATA_TERMINATOR,
    MAX_LOCALPART,
    Address,
    AddressError,
    Body,
    MailParams,
    RcptParams,
    Reply,
    Ret,
    format_path,
    parse_address,
)
from kittiwake.smtpclient.capabilities import Capabilities
from kittiwake.smtpclient.results import CommandReply, Outcome, RecipientResult, Stage
from kittiwake.smtpclient.stream import DotStuffer, MessageSource

__all__ = ["DeliveryPlan", "Recipient", "Send", "Transaction", "outcome_of", "plan_delivery"]


@dataclass(frozen=True)
class Recipient:
    """A recipient with its DSN parameters (RFC 3461 §4.1 NOTIFY, §4.2 ORCPT)."""

    address: str | Address
    params: RcptParams = field(default_factory=RcptParams)


@dataclass(frozen=True)
class Send:
    """Bytes for the wire and what they are, for logging and reply matching.

    ``commands`` are the command lines in ``data`` (no CRLF); ``body`` is the
    message data that follows them (already dot-stuffed or BDAT-framed), for
    the transcript's data logging; ``expects`` are the commands whose replies
    become due, in order. ``stream``: message data the driver sends after
    ``data``, reading it chunk by chunk, dot-stuffed (and ended with the
    ``.`` line) when ``stuff``, else as it is (a BDAT chunk).
    """

    data: bytes
    commands: tuple[str, ...] = ()
    body: bytes = b""
    expects: tuple[tuple[Stage, str], ...] = ()
    stream: MessageSource | None = None
    stuff: bool = False


def outcome_of(reply: Reply, stage: Stage) -> Outcome:
    """Outcome a negative (or final) reply gives its recipients."""
    if reply.code < 300:
        return Outcome.DELIVERED
    # RFC 5321 §4.5.3.1.10: 552 to RCPT for "too many recipients" is to be
    # treated as temporary (452); old servers still send it.
    if stage is Stage.RCPT and reply.code == 552:
        return Outcome.TEMPORARY
    if reply.code >= 500:
        return Outcome.PERMANENT
    return Outcome.TEMPORARY


class _Mode(enum.Enum):
    DATA = "DATA"
    BDAT = "BDAT"


class Transaction:
    """One MAIL transaction on an open session (sans-I/O).

    ``recipients`` are (index, label, RCPT command line); results carry the
    index so the driver can put them back in the caller's order.
    """

    def __init__(self, mail_command: str, recipients: Sequence[tuple[int, str, str]],
                 data: bytes | MessageSource, *, pipelining: bool, bdat: bool,
                 reset: bool = False) -> None:
        self.mail_command = mail_command
        self.recipients = list(recipients)
        self.message = MessageSource.of(data)
        self.pipelining = pipelining
        self.mode = _Mode.BDAT if bdat else _Mode.DATA
        self.replies: list[CommandReply] = []
        self._unsent: deque[tuple[Stage, str]] = deque(
            [(Stage.MAIL, mail_command)] + [(Stage.RCPT, cmd) for _, _, cmd in self.recipients])
        self.reset = reset
        if reset:
            self._unsent.appendleft((Stage.RSET, "RSET"))
        self._reset_failed = False
        if self.mode is _Mode.DATA:
            self._unsent.append((Stage.DATA, "DATA"))
        self._pending: deque[tuple[Stage, str]] = deque()
        self._rcpt_next = 0  # index into recipients of the next RCPT reply
        self._accepted: list[int] = []  # positions in self.recipients
        self._results: dict[int, RecipientResult] = {}
        self._mail_ok: bool | None = None
        self._rcpts_done = False
        self._body_due = False  # 354 received: send the message next
        self._end_only = False  # 354 without accepted recipients: send "." only
        self._bdat_sent = False
        self.completed = False  # the end-of-data reply was received

    # --- state ---------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Replies due for commands already sent."""
        return len(self._pending)

    @property
    def decided(self) -> bool:
        """Every recipient has its outcome; any replies still due are optional."""
        return len(self._results) == len(self.recipients)

    @property
    def done(self) -> bool:
        """Nothing more to send and no reply due."""
        return not self._pending and not self._next_available()

    @property
    def needs_reset(self) -> bool:
        """The server may hold transaction state: send RSET before the next MAIL."""
        return not self.completed

    def waiting_for(self) -> tuple[Stage, str]:
        """The command whose reply is due next (only while :attr:`pending`)."""
        return self._pending[0]

    def results(self) -> list[tuple[int, RecipientResult]]:
        """(caller's index, result) for the recipients decided so far."""
        return [(self.recipients[pos][0], r) for pos, r in sorted(self._results.items())]

    # --- output --------------------------------------------------------------

    def _next_available(self) -> bool:
        if self._body_due or self._end_only:
            return True
        if self._unsent:
            # Without pipelining (or after a failure) nothing more is sent once
            # the MAIL reply said no, or before the previous reply arrived.
            if self._mail_ok is False or (self._reset_failed and not self.pipelining):
                return False
            stage = self._unsent[0][0]
            return not (stage is Stage.DATA and not self.pipelining and not self._accepted
                        and self._rcpts_done)
        return bool(self.mode is _Mode.BDAT and not self._bdat_sent and self._rcpts_done
                    and self._accepted and self._mail_ok)

    def to_send(self) -> Send | None:
        """The next bytes to write, or None while waiting for replies (or when done)."""
        if self._body_due:
            self._body_due = False
            self._pending.append((Stage.DATA_END, "."))
            expects = ((Stage.DATA_END, "."),)
            if self.message.file is not None:
                return Send(b"", (), b"", expects, self.message, stuff=True)
            stuffed = DotStuffer.stuff(self.message.prefix)
            return Send(stuffed, (), stuffed[:-len(DATA_TERMINATOR)], expects)
        if self._end_only:
            self._end_only = False
            self._pending.append((Stage.DATA_END, "."))
            return Send(DATA_TERMINATOR, (".",), b"", ((Stage.DATA_END, "."),))
        if self._unsent and self._next_available():
            if self.pipelining:
                # RFC 2920 §3.1: MAIL, the RCPTs and DATA (last) as one group.
                group = list(self._unsent)
                self._unsent.clear()
            else:
                if self._pending:
                    return None
                if self._unsent[0][0] is Stage.DATA and not self._accepted:
                    return None
                group = [self._unsent.popleft()]
            self._pending.extend(group)
            cmds = tuple(cmd for _, cmd in group)
            return Send("".join(c + "\r\n" for c in cmds).encode("utf-8"), cmds, b"",
                        tuple(group))
        if self._next_available() and self.mode is _Mode.BDAT and not self._pending:
            self._bdat_sent = True
            # RFC 3030 §2: "BDAT" SP chunk-size SP "LAST"; the octets follow as they are.
            cmd = f"BDAT {self.message.size} LAST"
            self._pending.append((Stage.BDAT, cmd))
            if self.message.file is not None:
                return Send(cmd.encode() + b"\r\n", (cmd,), b"", ((Stage.BDAT, cmd),),
                            self.message)
            data = self.message.prefix
            return Send(cmd.encode() + b"\r\n" + data, (cmd,), data, ((Stage.BDAT, cmd),))
        return None

    # --- input ---------------------------------------------------------------

    def _decide(self, pos: int, reply: Reply, stage: Stage, command: str,
                outcome: Outcome | None = None) -> None:
        if pos in self._results:
            return
        outcome = outcome or outcome_of(reply, stage)
        label = self.recipients[pos][1]
        self._results[pos] = RecipientResult(label, outcome, f"{command}: {reply}", reply,
                                             command, stage)

    def _decide_accepted(self, reply: Reply, stage: Stage, command: str,
                         outcome: Outcome | None = None) -> None:
        for pos in self._accepted:
            self._decide(pos, reply, stage, command, outcome)

    def receive(self, reply: Reply) -> None:
        """The next reply from the server, for the oldest command still waiting."""
        if not self._pending:
            return  # unsolicited: ignored (the driver logs it)
        stage, command = self._pending.popleft()
        self.replies.append(CommandReply(stage, command, reply))
        if stage is Stage.RSET:
            if reply.code // 100 != 2:
                # The session is in an unknown state: nothing goes in this transaction.
                self._reset_failed = True
                for pos in range(len(self.recipients)):
                    self._decide(pos, reply, stage, command, Outcome.TEMPORARY)
                if not self.pipelining:
                    self._unsent.clear()
        elif stage is Stage.MAIL:
            self._mail_ok = reply.code // 100 == 2 and not self._reset_failed
            if not self._mail_ok:
                # Every recipient shares the MAIL failure; RCPT/DATA replies that
                # may follow in a pipelined group are optional.
                for pos in range(len(self.recipients)):
                    self._decide(pos, reply, stage, command)
                if not self.pipelining:
                    self._unsent.clear()
        elif stage is Stage.RCPT:
            pos = self._rcpt_next
            self._rcpt_next += 1
            if pos >= len(self.recipients):
                return
            if reply.code // 100 == 2 and self._mail_ok:
                self._accepted.append(pos)
            else:
                self._decide(pos, reply, stage, command)
            if self._rcpt_next == len(self.recipients):
                self._rcpts_done = True
                if not self._accepted and not self.pipelining:
                    self._unsent.clear()
        elif stage is Stage.DATA:
            if reply.code == 354:
                if self._accepted and self._mail_ok:
                    self._body_due = True
                else:
                    # RFC 2920 §3.1: no recipient accepted, yet DATA got 354: end the
                    # (empty) message with "." and ignore its reply.
                    self._end_only = True
            else:
                outcome = Outcome.TEMPORARY if reply.code < 400 else None
                self._decide_accepted(reply, stage, command, outcome)
        elif stage in (Stage.DATA_END, Stage.BDAT):
            self.completed = True
            outcome = Outcome.TEMPORARY if 300 <= reply.code < 400 else None
            self._decide_accepted(reply, stage, command, outcome)

    def abort(self, reason: str, stage: Stage, outcome: Outcome = Outcome.TEMPORARY,
              status: str = "4.4.2") -> None:
        """The connection failed (closed, timeout, garbage): undecided recipients get
        ``outcome`` with ``reason`` and the RFC 3463 ``status`` (default 4.4.2, "bad
        connection"). A message whose end-of-data reply never came may have been
        delivered: it is retried (RFC 5321 §6.1 allows duplicates)."""
        for pos in range(len(self.recipients)):
            if pos not in self._results:
                self._results[pos] = RecipientResult(self.recipients[pos][1], outcome, reason,
                                                     None, None, stage, status)
        self._pending.clear()
        self._unsent.clear()
        self._body_due = self._end_only = False


@dataclass
class DeliveryPlan:
    """What :func:`plan_delivery` decided: local results and the transactions to run.

    ``refused`` holds results decided without sending (by the caller's index);
    ``batches`` the recipients of each transaction as (index, label, RCPT line).
    """

    mail_command: str = ""
    refused: dict[int, RecipientResult] = field(default_factory=dict)
    batches: list[list[tuple[int, str, str]]] = field(default_factory=list)
    bdat: bool = False
    dsn_relayed: bool = False

    def transactions(self, data: bytes | MessageSource, pipelining: bool,
                     reset: bool = False) -> list[Transaction]:
        """One transaction per batch; ``reset``: the session carried one before."""
        return [Transaction(self.mail_command, batch, data, pipelining=pipelining,
                            bdat=self.bdat, reset=reset or n > 0)
                for n, batch in enumerate(self.batches)]


def _label(addr: str | Address) -> str:
    return addr if isinstance(addr, str) else str(addr)


def _parse(addr: str | Address | None) -> Address | None:
    if addr is None or isinstance(addr, Address):
        return addr
    if addr in ("", "<>"):
        return None
    text = addr[1:-1] if addr.startswith("<") and addr.endswith(">") else addr
    return _parse_text(text)


# RFC 5321 §4.1.2 Mailbox = Local-part "@" Domain, in its plainest form: a Dot-string
# of ASCII atext (RFC 5322 §3.2.3) and a lower-case LDH domain without "--" (so no
# A-label, nothing IDNA 2008 maps or refuses) whose last label is not all digits.
# Most recipients look like this.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_MAILBOX = re.compile(
    rf"({_ATOM}(?:\.{_ATOM})*)@((?:[a-z0-9]+(?:-[a-z0-9]+)*\.)*"
    r"(?![0-9]+\Z)[a-z0-9]+(?:-[a-z0-9]+)*)")  # RFC 3696 §2: no all-numeric last label


def _parse_text(text: str) -> Address:
    """``parse_address(text)``, without the general parser for a plain mailbox
    (a local-part of at most 64 octets, RFC 5321 §4.5.3.1.1, and a domain short
    enough that no label can pass 63 octets): parsing it gives back its own parts."""
    plain = _PLAIN_MAILBOX.fullmatch(text)
    if plain is not None and len(plain[1]) <= MAX_LOCALPART and len(plain[2]) <= 63:
        return Address(plain[1], plain[2], plain[2])
    return _parse_general(text)


@functools.lru_cache(maxsize=4096)
def _parse_general(text: str) -> Address:
    """Parsed addresses are immutable: a queue run sends from the same few senders."""
    return parse_address(text, smtputf8=True)


_NO_RCPT_PARAMS = RcptParams()  # frozen: one for every recipient without DSN parameters


def plan_delivery(
    caps: Capabilities,
    *,
    remote: str,
    tls: bool,
    mailfrom: str | Address | None,
    recipients: Sequence[str | Address | Recipient],
    data: bytes | MessageSource,
    smtputf8: bool = False,
    eightbit: bool = False,
    binarymime: bool = False,
    requiretls: bool = False,
    strict: bool = False,
    chunking: bool = False,
    ret: Ret | None = None,
    envid: str | None = None,
    auth: str | None = None,
) -> DeliveryPlan:
    """Decide what to send to a server with ``caps`` (``remote`` names it in reasons).

    Local permanent failures (not sent): SMTPUTF8 needed but not offered
    (RFC 6531 §3.4), REQUIRETLS without TLS or not offered (RFC 8689 §4.2.1),
    BINARYMIME not offered (RFC 3030 §3), message above the announced SIZE
    (RFC 1870 §6), 8-bit data without 8BITMIME when ``strict`` (RFC 6152 §3),
    bad addresses. Without ``strict`` 8-bit data goes to a server without
    8BITMIME unlabelled, as most MTAs do.
    """
    plan = DeliveryPlan()
    size = MessageSource.of(data).size
    items = [r if isinstance(r, Recipient) else Recipient(r) for r in recipients]
    labels = [_label(r.address) for r in items]

    def refuse_all(reason: str, status: str) -> DeliveryPlan:
        for i, label in enumerate(labels):
            plan.refused[i] = RecipientResult(label, Outcome.PERMANENT, reason, None, None,
                                              Stage.LOCAL, status)
        return plan

    try:
        sender = _parse(mailfrom)
    except AddressError as exc:
        # RFC 3463 X.1.7: bad sender's mailbox address syntax.
        return refuse_all(f"invalid sender address {mailfrom!r}: {exc}", "5.1.7")
    parsed: list[tuple[int, Address]] = []
    for i, r in enumerate(items):
        try:
            addr = _parse(r.address)
        except AddressError as exc:
            # RFC 3463 X.1.3: bad destination mailbox address syntax.
            plan.refused[i] = RecipientResult(labels[i], Outcome.PERMANENT,
                                              f"invalid recipient address: {exc}", None, None,
                                              Stage.LOCAL, "5.1.3")
            continue
        if addr is None:
            plan.refused[i] = RecipientResult(labels[i], Outcome.PERMANENT,
                                              "empty recipient address", None, None,
                                              Stage.LOCAL, "5.1.3")
            continue
        parsed.append((i, addr))
    # RFC 6531 §3.2: a non-ASCII local-part can only be sent with SMTPUTF8.
    utf8_addresses = any(not a.is_ascii for _, a in parsed) or \
        (sender is not None and not sender.is_ascii)
    needs_utf8 = smtputf8 or utf8_addresses
    # The RFC 3463 / RFC 5248 registry codes of each local refusal:
    if needs_utf8 and not caps.smtputf8:
        # RFC 6531 §3.5: X.6.7 "Non-ASCII addresses not permitted for that
        # sender/recipient"; X.6.9 for a UTF-8 header that cannot be transmitted.
        return refuse_all(f"SMTPUTF8 required but not supported by {remote}",
                          "5.6.7" if utf8_addresses else "5.6.9")
    if requiretls and not tls:
        # RFC 8689 §7: X.7.30 "REQUIRETLS support required".
        return refuse_all(f"REQUIRETLS requested but the connection to {remote} is not TLS",
                          "5.7.30")
    if requiretls and not caps.requiretls:
        return refuse_all(f"REQUIRETLS requested but not supported by {remote}", "5.7.30")
    if binarymime and not caps.binarymime:
        # RFC 3463 X.6.3: conversion required but not supported.
        return refuse_all(f"BINARYMIME content but {remote} does not support BINARYMIME",
                          "5.6.3")
    if caps.size and size > caps.size:
        # RFC 1870 §6 with RFC 3463 X.3.4: message too big for system.
        return refuse_all(f"message of {size} bytes is larger than the maximum "
                          f"{caps.size} of {remote}", "5.3.4")
    body: Body | None = None
    if binarymime:
        body = Body.BINARYMIME
    elif eightbit:
        if caps.eightbitmime:
            body = Body.EIGHT_BIT_MIME
        elif strict:
            # RFC 6152 §3 with RFC 3463 X.6.3: conversion required but not supported.
            return refuse_all(f"8-bit message but {remote} does not support 8BITMIME",
                              "5.6.3")
    dsn_wanted = ret is not None or envid is not None or any(
        r.params != _NO_RCPT_PARAMS for r in items)
    plan.dsn_relayed = dsn_wanted and not caps.dsn
    params = MailParams(
        size=size if caps.size is not None or "SIZE" in caps.keywords else None,
        body=body,
        smtputf8=needs_utf8,
        requiretls=requiretls,
        auth=auth if "AUTH" in caps.keywords else None,
        ret=ret if caps.dsn else None,
        envid=envid if caps.dsn else None,
    )
    plan.mail_command = f"MAIL FROM:{format_path(sender, utf8=needs_utf8)}{params.format()}"
    plan.bdat = binarymime or (chunking and caps.chunking)
    rcpt_lines = []
    for i, addr in parsed:
        rparams = items[i].params if caps.dsn else _NO_RCPT_PARAMS
        rcpt_lines.append((i, labels[i], f"RCPT TO:{format_path(addr, utf8=needs_utf8)}"
                                         f"{rparams.format()}"))
    # RFC 9422 §4.1: at most RCPTMAX recipients per transaction; the rest in
    # further transactions on the same session.
    per = caps.rcptmax or len(rcpt_lines) or 1
    plan.batches = [rcpt_lines[k:k + per] for k in range(0, len(rcpt_lines), per)]
    return plan
