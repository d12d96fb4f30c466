"""record_deliveries writes the junk database as the code it replaced did.

The reference below is the recording of a delivery as it was (its row upserted,
each verified domain, a look-up of its Message-ID among the replies and a
separate update, then its row read back to find its class: 4-5 statements a
message). The same sequence of deliveries (new messages, and messages the
learner met first), moves, flag changes, replies and expunges, through both,
leaves equal databases (every row of every table, the word counts and totals)
and asks for equal retrains at every step.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kittiwake.junk import SenderIdentities, database
from kittiwake.junk.database import JunkDatabase, Retrain
from kittiwake.junk.history import Class

MAILBOXES = ("Inbox", "Junk", "Rejects", "Trash", "Archive", "Sent")
MSGIDS = ("", "<a@x.example>", "<b@x.example>", "<c@x.example>")
SENDERS = (
    SenderIdentities("192.0.2.1", dmarc_domain="Sender.example",
                     verified_domains=frozenset({"Sender.example", "mail.sender.example"}),
                     address="Carol@Sender.example"),
    SenderIdentities("203.0.113.7", address="lucky@promo.example"),
    SenderIdentities("2001:db8::1", verified_domains=frozenset({"promo.example"})),
    SenderIdentities(""),
)
TABLES = {"message": "id", "verified": "domain, message", "sent": "address",
          "sent_ref": "msgid", "word": "word", "meta": "key"}


# --- the reference: record_deliveries as it was -------------------------------------

def old_record_deliveries(db: JunkDatabase,
                          items: list[tuple[int, str, int, str, SenderIdentities]]
                          ) -> list[Retrain]:
    retrains: list[Retrain] = []
    with db._write() as conn:
        for message_id, mailbox, uid, msgid, who in items:
            conn.execute(
                "INSERT INTO message (id, mailbox, uid, received, msgid, ip, net, dmarc_domain,"
                " address) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " received = excluded.received, msgid = excluded.msgid, ip = excluded.ip,"
                " net = excluded.net, dmarc_domain = excluded.dmarc_domain,"
                " address = excluded.address",
                (message_id, mailbox, uid, database._now_ms(), msgid, who.ip, who.network,
                 who.dmarc_domain.lower(), who.address.lower()))
            conn.executemany("INSERT OR IGNORE INTO verified (domain, message) VALUES (?, ?)",
                             [(d.lower(), message_id) for d in who.verified_domains])
            if msgid and conn.execute("SELECT 1 FROM sent_ref WHERE msgid = ?",
                                      (msgid,)).fetchone():
                conn.execute("UPDATE message SET replied = 1 WHERE id = ?", (message_id,))
            retrain = db._reclassify(conn, message_id)
            if retrain is not None:
                retrains.append(retrain)
    return retrains


# --- the operations ----------------------------------------------------------------

ids = st.integers(1, 8)
deliveries = st.lists(st.tuples(ids, st.sampled_from(MAILBOXES), st.integers(1, 20),
                                st.sampled_from(MSGIDS), st.sampled_from(SENDERS)),
                      min_size=1, max_size=6)
flags = st.sampled_from((0, 1, 2, 3, 4))
keywords = st.sampled_from(((), ("$Junk",), ("$NotJunk",), ("$label1",)))
operations = st.lists(st.one_of(
    st.tuples(st.just("deliver"), deliveries),
    st.tuples(st.just("located"), ids, st.sampled_from(MAILBOXES), st.integers(1, 20), flags,
              keywords, st.sampled_from(MSGIDS)),
    st.tuples(st.just("flags"), st.sampled_from(MAILBOXES), st.integers(1, 20), flags,
              keywords),
    st.tuples(st.just("sent"), st.lists(st.sampled_from(MSGIDS[1:]), max_size=2)),
    st.tuples(st.just("expunged"), st.sampled_from(MAILBOXES), st.integers(1, 20)),
), max_size=25)


def run(db: JunkDatabase, ops: list[tuple[object, ...]], new: bool) -> list[object]:
    """The operations on ``db``; each step's retrains, applied (a message's words are
    its own: one word named after it)."""
    out: list[object] = []
    for op in ops:
        kind, *args = op
        if kind == "deliver":
            items = list(args[0])  # type: ignore[call-overload]
            retrains = db.record_deliveries(items) if new else old_record_deliveries(db, items)
        elif kind == "located":
            message_id, mailbox, uid, bits, words, msgid = args
            retrain = db.located(message_id, mailbox, uid, bits, words, msgid,  # type: ignore[arg-type]
                                 1000)
            retrains = [retrain] if retrain is not None else []
        elif kind == "flags":
            mailbox, uid, bits, words = args
            retrains, _unknown = db.flags_changed(mailbox, [(uid, bits, words)])  # type: ignore[arg-type,list-item]
        elif kind == "sent":
            retrains = db.record_sent(["someone@x.example"], args[0])  # type: ignore[arg-type]
        else:
            mailbox, uid = args
            retrains = db.expunged(mailbox, [uid])  # type: ignore[arg-type,list-item]
        db.retrain_many([([f"w{r.message_id}", "shared"], r) for r in retrains])
        out.append(retrains)
    return out


def dump(db: JunkDatabase) -> dict[str, list[tuple[object, ...]]]:
    return {table: db.db.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
            for table, order in TABLES.items()}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_record_deliveries_writes_what_it_did(ops: list[tuple[object, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp, \
            mock.patch.object(database, "_now_ms", lambda: 5000):
        old = JunkDatabase(Path(tmp) / "old.db")
        new = JunkDatabase(Path(tmp) / "new.db")
        try:
            assert run(new, ops, True) == run(old, ops, False)
            assert dump(new) == dump(old)
            assert new.totals() == old.totals()
        finally:
            old.close()
            new.close()


def test_a_delivery_the_learner_met_first_keeps_its_row() -> None:
    """A row the learner wrote (flags read, a reply) is updated, not replaced."""
    with tempfile.TemporaryDirectory() as tmp:
        db = JunkDatabase(Path(tmp) / "junk.db")
        try:
            db.record_sent([], ["<a@x.example>"])
            assert db.located(1, "Inbox", 3, 1, (), "<a@x.example>", 1000) == Retrain(
                1, Class.UNKNOWN, Class.HAM)
            db.retrain_many([(["w"], Retrain(1, Class.UNKNOWN,
                                             Class.HAM))])
            assert db.record_deliveries([(1, "Inbox", 3, "<a@x.example>", SENDERS[0])]) == []
            assert db.db.execute("SELECT mailbox, uid, flags, replied, class, trained, ip,"
                                 " address FROM message").fetchall() == [
                ("Inbox", 3, 1, 1, "ham", "ham", "192.0.2.1", "carol@sender.example")]
            assert db.record_deliveries([(2, "Junk", 1, "", SENDERS[1])]) == [
                Retrain(2, Class.UNKNOWN, Class.JUNK)]
            # Met first without its Message-ID: the delivery's makes it a reply (ham).
            assert db.located(3, "Archive", 1, 0, (), "", 1000) is None
            assert db.record_deliveries([(3, "Archive", 1, "<a@x.example>", SENDERS[3])]) == [
                Retrain(3, Class.UNKNOWN, Class.HAM)]
            assert db.message_class(3) == (Class.HAM, Class.UNKNOWN)
        finally:
            db.close()
