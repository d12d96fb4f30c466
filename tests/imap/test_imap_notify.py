"""NOTIFY plans (RFC 5465): the rules of NOTIFY SET and which mailbox gets which events."""

from __future__ import annotations

import pytest

from kittiwake.imap import commands as c
from kittiwake.imap.codes import Code
from kittiwake.imap.notify import EVENTS, NotifyError, NotifyPlan, plan
from kittiwake.imap.parser import parse_command

SUPPORTED = [e for e in EVENTS if e != "AnnotationChange"]


def store_name(name: str) -> str:
    return "Inbox" if name.upper() == "INBOX" else name


def notify(line: bytes) -> NotifyPlan | None:
    _, cmd = parse_command(b"t NOTIFY " + line)
    assert isinstance(cmd, c.Notify)
    return plan(cmd, SUPPORTED, store_name)


def refused(line: bytes) -> NotifyError:
    with pytest.raises(NotifyError) as e:
        notify(line)
    return e.value


def test_none_is_no_plan() -> None:
    assert notify(b"NONE") is None


@pytest.mark.parametrize(("line", "match"), [
    (b"SET (selected (MessageNew))", "go together"),
    (b"SET (personal (MessageExpunge))", "go together"),
    (b"SET (selected (FlagChange))", "need MessageNew"),
    (b"SET (selected (MessageNew MessageExpunge)) (selected-delayed (MessageNew "
     b"MessageExpunge))", "given once"),
    (b"SET (inboxes (MessageNew (UID) MessageExpunge))", "only for the selected"),
])
def test_rules_are_bad(line: bytes, match: str) -> None:
    e = refused(line)
    assert e.status == "BAD" and match in e.text


def test_unsupported_event_is_no_badevent() -> None:
    e = refused(b"SET (selected (MessageNew MessageExpunge AnnotationChange)) (personal (Bogus))")
    assert (e.status, e.code) == ("NO", Code.BADEVENT)
    assert e.code_args == ("(MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange "
                      "MailboxMetadataChange ServerMetadataChange)")
    assert "AnnotationChange BOGUS" in e.text


def test_selected_and_specifiers() -> None:
    p = notify(b"SET STATUS (selected-delayed (MessageNew (UID FLAGS) MessageExpunge)) "
               b"(subtree Lists (MessageNew MessageExpunge)) (mailboxes INBOX (FlagChange "
               b"MessageNew MessageExpunge)) (subscribed (MailboxName)) "
               b"(inboxes (SubscriptionChange))")
    assert p is not None and p.status and p.delayed
    assert p.selected == {"MessageNew", "MessageExpunge"}
    assert p.fetch == (c.FetchAttr("UID"), c.FetchAttr("FLAGS"))
    subscribed = {"Lists/a", "Sent"}.__contains__
    inboxes = {"Inbox", "Lists/a"}.__contains__
    assert p.events_for("Lists", subscribed, inboxes) == {"MessageNew", "MessageExpunge"}
    assert p.events_for("Lists/a", subscribed, inboxes) == {
        "MessageNew", "MessageExpunge", "MailboxName", "SubscriptionChange"}
    assert p.events_for("Listsx", subscribed, inboxes) == set()
    assert p.events_for("Inbox", subscribed, inboxes) == {
        "MessageNew", "MessageExpunge", "FlagChange", "SubscriptionChange"}
    assert p.events_for("Sent", subscribed, inboxes) == {"MailboxName"}
    assert p.wants("FlagChange") and not p.wants("ServerMetadataChange")


def test_no_selected_group_and_none_events() -> None:
    p = notify(b"SET (personal (MessageNew MessageExpunge)) (mailboxes Trash NONE)")
    assert p is not None and p.selected is None and not p.delayed and not p.status
    assert p.events_for("Trash", lambda _: False, lambda _: False) == {
        "MessageNew", "MessageExpunge"}  # joined with personal's
    q = notify(b"SET (selected NONE)")
    assert q is not None and q.selected == frozenset()
