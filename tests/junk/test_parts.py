"""The junk filter's parts, each rule in a few lines (no server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kittiwake.junk import bayes, reputation
from kittiwake.junk.database import JunkDatabase, Tally
from kittiwake.junk.history import Class, MailboxKind, MailboxNames, MessageState
from kittiwake.junk.model import Action, JunkVerdict, Reason, SenderIdentities
from kittiwake.junk.tokens import message_words

SEEN, ANSWERED = 1, 2


def test_words_are_decoded_subject_and_text() -> None:
    data = (b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_Berlin?=\r\n"
            b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + __import__("base64").b64encode(b"<p>Hallo <b>Welt</b>, 12345 ok</p>")
            + b"\r\n")
    words = message_words(data)
    assert words == ["subject:grüsse", "subject:aus", "subject:berlin", "hallo", "welt"]


def test_unknown_words_say_nothing_and_junk_words_decide() -> None:
    assert bayes.score(["never", "seen"], {}, 10, 10).probability == 0.5
    counts = {"casino": bayes.WordCounts(ham=0, junk=9), "prize": bayes.WordCounts(0, 8),
              "agenda": bayes.WordCounts(9, 0)}
    assert bayes.score(["casino", "prize"], counts, 10, 10).probability > 0.98
    assert bayes.score(["agenda"], counts, 10, 10).probability < 0.1
    # Robinson: a word seen once in junk only is 0.75, not 1 (s=1, x=0.5).
    assert bayes.word_probability(bayes.WordCounts(0, 1), 10, 10) == pytest.approx(0.75)


@pytest.mark.parametrize(("state", "expected"), [
    (MessageState(MailboxKind.ORDINARY), Class.UNKNOWN),  # unread in the Inbox
    (MessageState(MailboxKind.ORDINARY, SEEN), Class.HAM),
    (MessageState(MailboxKind.ORDINARY, ANSWERED), Class.HAM),
    (MessageState(MailboxKind.ORDINARY, replied=True), Class.HAM),
    (MessageState(MailboxKind.ORDINARY, rescued=True), Class.HAM),
    (MessageState(MailboxKind.ORDINARY, SEEN, ("$Junk",)), Class.JUNK),
    (MessageState(MailboxKind.JUNK, SEEN), Class.JUNK),
    (MessageState(MailboxKind.JUNK, 0, ("$NotJunk",)), Class.HAM),
    (MessageState(MailboxKind.REJECTS), Class.UNKNOWN),
    (MessageState(MailboxKind.TRASH, SEEN), Class.UNKNOWN),
])
def test_what_the_user_said(state: MessageState, expected: Class) -> None:
    assert state.user_class() is expected


def signal(reason: Reason, ham: int, junk: int, total: int = 0) -> reputation.Signal:
    return reputation.Signal(reason, "k", "v", Tally(total or ham + junk, ham, junk))


def test_reputation_takes_the_first_clear_signal() -> None:
    mixed = signal(Reason.ADDRESS, 1, 1)
    clear = signal(Reason.IP, 0, 3)
    decision = reputation.decide("", [mixed, clear])
    assert decision is not None and decision.cls is Class.JUNK and decision.signal is clear
    assert reputation.decide("", [signal(Reason.ADDRESS, 0, 0, total=4)]) is None
    # One rescued message of a shared domain vouches for nobody; two do.
    assert reputation.decide("", [signal(Reason.DMARC_DOMAIN, 1, 0)]) is None
    assert reputation.decide("", [signal(Reason.DMARC_DOMAIN, 2, 0)]).cls is Class.HAM  # type: ignore[union-attr]
    written = reputation.decide("bob@x.example", [clear])
    assert written is not None and written.signal.reason is Reason.SENT_TO_ADDRESS
    assert reputation.first_time([signal(Reason.IP, 0, 0)])
    assert not reputation.first_time([signal(Reason.IP, 0, 0, total=1)])


def test_networks_and_header() -> None:
    assert SenderIdentities("192.0.2.77").network == "192.0.2.0/24"
    assert SenderIdentities("2001:db8:1:2::5").network == "2001:db8:1::/48"
    verdict = JunkVerdict(Action.ACCEPT, Reason.DMARC_DOMAIN, evidence=(("domain", "example.org"),))
    assert verdict.header() == \
        b"X-Kittiwake-Junk: ham; reason=dmarc-domain-reputation; domain=example.org\r\n"
    assert JunkVerdict(Action.ACCEPT, Reason.DISABLED).header() == b""


def test_moves_retrain_and_copies_keep_the_history(tmp_path: Path) -> None:
    db = JunkDatabase(tmp_path / "junk.db", MailboxNames())
    who = SenderIdentities("192.0.2.1", address="carol@sender.example")
    db.record_delivery(1, "Junk", 1, "<m1@x>", who)
    retrain = db.located(1, "Junk", 1, 0, (), "<m1@x>", 0)
    assert retrain is not None and (retrain.old, retrain.new) == (Class.UNKNOWN, Class.JUNK)
    db.train(["casino"], retrain.new, message_id=1)
    assert db.totals() == (0, 1)
    # The user moves it to the Inbox: rescued, ham; the counts move with it.
    retrain = db.located(1, "Inbox", 7, 0, (), "<m1@x>", 0)
    assert retrain is not None and (retrain.old, retrain.new) == (Class.JUNK, Class.HAM)
    db.train(["casino"], retrain.new, message_id=1)
    assert db.totals() == (1, 0) and db.counts(["casino"])["casino"] == bayes.WordCounts(1, 0)
    assert db.tally("address", "Carol@sender.example", 0) == Tally(1, 1, 0)
    # A client without MOVE copies into Junk and expunges the original: the copy
    # inherits the sender, and the original no longer counts.
    copy = db.located(2, "Junk", 1, 0, (), "<m1@x>", 0)
    assert copy is not None and copy.new is Class.JUNK
    db.train(["casino"], copy.new, message_id=2)
    [detached] = db.expunged("Inbox", [7])
    assert detached.detached and detached.message_id == 2 and detached.old is Class.HAM
    db.train(["casino"], Class.UNKNOWN, untrain=detached.old)
    assert db.totals() == (0, 1) and db.counts(["casino"])["casino"] == bayes.WordCounts(0, 1)
    assert db.tally("address", "carol@sender.example", 0) == Tally(2, 0, 1)
    db.close()


def test_a_reply_makes_the_sender_good(tmp_path: Path) -> None:
    db = JunkDatabase(tmp_path / "junk.db")
    db.record_delivery(1, "Inbox", 1, "<q@x>", SenderIdentities("192.0.2.1", address="a@x.example"))
    db.located(1, "Inbox", 1, 0, (), "<q@x>", 0)
    assert db.message_class(1) == (Class.UNKNOWN, Class.UNKNOWN)
    [retrain] = db.record_sent(["someone@else.example"], ["<q@x>"])
    assert retrain.new is Class.HAM and db.message_class(1) == (Class.HAM, Class.UNKNOWN)
    assert db.sent_to("Someone@else.example") == 1
    db.close()
