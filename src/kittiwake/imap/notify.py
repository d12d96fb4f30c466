"""NOTIFY (RFC 5465), sans-I/O: which events a client asked for, for which mailboxes.

:func:`plan` checks a parsed ``NOTIFY SET`` against the rules of RFC 5465
and the events a server supports, and returns a :class:`NotifyPlan`; the
driver asks the plan, for each change, whether and how to tell the client.

Rules checked here (RFC 5465 §5, §6, and as Dovecot answers them):

- MessageNew and MessageExpunge go together; FlagChange and AnnotationChange
  need both (BAD otherwise): a client must never see numbers shift without
  being told why;
- at most one of ``selected`` and ``selected-delayed``; fetch attributes on
  MessageNew only for those (BAD);
- an event the server does not support gets NO [BADEVENT (supported...)]
  (§3.1, §8 ``unsupported-events-code``).

Mailbox specifiers (§6): ``selected`` / ``selected-delayed`` (the selected
mailbox; ``-delayed`` keeps EXPUNGE to the times RFC 9051 §7.5.1 allows),
``inboxes`` (where mail is delivered), ``personal`` (all of the account),
``subscribed``, ``subtree`` (the named mailboxes and all below them) and
``mailboxes`` (exactly the named ones). The specifiers are evaluated when an
event happens, so a new mailbox under a ``subtree`` is covered. Where a
mailbox matches several groups, their events are joined.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kittiwake.imap import commands as c
from kittiwake.imap.codes import Code

__all__ = ["EVENTS", "MESSAGE_EVENTS", "NotifyError", "NotifyGroup", "NotifyPlan", "plan"]

# RFC 5465 §5, names as the RFC spells them (clients send any case).
EVENTS = ("MessageNew", "MessageExpunge", "FlagChange", "AnnotationChange", "MailboxName",
          "SubscriptionChange", "MailboxMetadataChange", "ServerMetadataChange")
_CANONICAL = {e.upper(): e for e in EVENTS}
# The events about messages of a mailbox (a STATUS for a non-selected one, §5.1-§5.3).
MESSAGE_EVENTS = frozenset(("MessageNew", "MessageExpunge", "FlagChange", "AnnotationChange"))
_SELECTED = ("SELECTED", "SELECTED-DELAYED")


class NotifyError(Exception):
    """A NOTIFY SET refused: ``status`` BAD (the rules) or NO (BADEVENT)."""

    def __init__(self, text: str, status: str = "BAD", code: Code | None = None,
                 code_args: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.status = status
        self.code = code
        self.code_args = code_args


@dataclass(frozen=True, slots=True)
class NotifyGroup:
    """One event group: a mailbox specifier and its events (canonical names)."""

    filter: str  # upper case, as in the command
    mailboxes: tuple[str, ...]  # store names, for SUBTREE and MAILBOXES
    events: frozenset[str]

    def covers(self, mailbox: str, subscribed: Callable[[str], bool],
               inboxes: Callable[[str], bool]) -> bool:
        """Whether this (non-selected) specifier names ``mailbox`` now (§6)."""
        f = self.filter
        if f == "PERSONAL":
            return True
        if f == "INBOXES":
            return inboxes(mailbox)
        if f == "SUBSCRIBED":
            return subscribed(mailbox)
        if f == "MAILBOXES":
            return mailbox in self.mailboxes
        if f == "SUBTREE":
            return any(mailbox == m or mailbox.startswith(m + "/") for m in self.mailboxes)
        return False


@dataclass(frozen=True, slots=True)
class NotifyPlan:
    """What one NOTIFY SET asked for."""

    selected: frozenset[str] | None  # events of the selected mailbox; None: not named
    delayed: bool  # selected-delayed: EXPUNGE only when RFC 9051 §7.5.1 allows
    fetch: tuple[c.FetchItem, ...]  # MessageNew attributes for the selected mailbox
    others: tuple[NotifyGroup, ...]
    status: bool  # the STATUS indicator: initial STATUS of the mailboxes watched

    def events_for(self, mailbox: str, subscribed: Callable[[str], bool],
                   inboxes: Callable[[str], bool]) -> frozenset[str]:
        """The events wanted for a mailbox that is not the selected one."""
        out: frozenset[str] = frozenset()
        for g in self.others:
            if g.events - out and g.covers(mailbox, subscribed, inboxes):
                out |= g.events
        return out

    def wants(self, event: str) -> bool:
        """Whether any group asks for ``event`` (to skip work nobody wants)."""
        return (self.selected is not None and event in self.selected) or \
            any(event in g.events for g in self.others)


def plan(cmd: c.Notify, supported: Iterable[str], store_name: Callable[[str], str]
         ) -> NotifyPlan | None:
    """The plan of a NOTIFY command (None for NOTIFY NONE), or :class:`NotifyError`.

    ``store_name`` maps the IMAP mailbox names of SUBTREE/MAILBOXES to the
    names the driver compares with (INBOX to the store's spelling).
    """
    if cmd.groups is None:
        return None
    supported_set = set(supported)
    unsupported: list[str] = []
    selected: frozenset[str] | None = None
    delayed = False
    fetch: tuple[c.FetchItem, ...] = ()
    others: list[NotifyGroup] = []
    for group in cmd.groups:
        names: set[str] = set()
        for ev in group.events:
            name = _CANONICAL.get(ev.name.upper(), ev.name)
            if name not in supported_set:
                if name not in unsupported:
                    unsupported.append(name)
                continue
            names.add(name)
            if ev.fetch:
                if group.filter not in _SELECTED:
                    raise NotifyError("MessageNew fetch attributes are only for the selected "
                                      "mailbox (RFC 5465 §5.2)")
                fetch = ev.fetch
        _check_pairs(group.events)
        if group.filter in _SELECTED:
            if selected is not None:
                raise NotifyError("selected and selected-delayed may be given once")
            selected = frozenset(names)
            delayed = group.filter == "SELECTED-DELAYED"
        else:
            others.append(NotifyGroup(group.filter,
                                      tuple(store_name(m) for m in group.mailboxes),
                                      frozenset(names)))
    if unsupported:
        # RFC 5465 §3.1: NO [BADEVENT (the events this server does support)].
        offered = [e for e in EVENTS if e in supported_set]
        raise NotifyError(f"unsupported NOTIFY events: {' '.join(unsupported)}", "NO",
                          Code.BADEVENT, "(" + " ".join(offered) + ")")
    return NotifyPlan(selected, delayed, fetch, tuple(others), cmd.status)


def _check_pairs(events: Iterable[c.NotifyEvent]) -> None:
    """RFC 5465 §5: MessageNew with MessageExpunge; FlagChange and
    AnnotationChange only with both."""
    names = {e.name.upper() for e in events}
    new, gone = "MESSAGENEW" in names, "MESSAGEEXPUNGE" in names
    if new != gone:
        raise NotifyError("MessageNew and MessageExpunge go together (RFC 5465 §5)")
    if names & {"FLAGCHANGE", "ANNOTATIONCHANGE"} and not new:
        raise NotifyError("FlagChange and AnnotationChange need MessageNew and "
                          "MessageExpunge (RFC 5465 §5)")
