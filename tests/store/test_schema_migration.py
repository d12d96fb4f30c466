"""An account database of an older schema opens, and keeps its mail."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from kittiwake.store.account import AccountStore
from kittiwake.store.model import Flags
from kittiwake.store.schema import DELETED, SCHEMA_VERSION


def test_a_schema_5_store_gains_the_tombstone_index_and_keeps_its_mail(tmp_path: Path) -> None:
    root = tmp_path / "old"
    core = AccountStore("old", root)
    core.ensure_mailboxes(["Inbox"])
    kept, _ = core.deliver("Inbox", b"Subject: kept\r\n\r\nstays\r\n")
    gone, _ = core.deliver("Inbox", b"Subject: gone\r\n\r\nexpunged\r\n", flags=Flags(DELETED))
    before = core.mailbox("Inbox").highestmodseq
    core.expunge("Inbox")
    core.close()
    db = sqlite3.connect(root / "index.db")  # as kittiwake with schema 5 left it
    db.execute("DROP INDEX expunged_mailbox_modseq")
    db.execute("PRAGMA user_version = 5")
    db.commit()
    db.close()

    core = AccountStore("old", root)
    try:
        assert core.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 7
        plan = core.db.execute("EXPLAIN QUERY PLAN SELECT uid FROM expunged"
                               " WHERE mailbox_id = 1 AND modseq > 1").fetchall()
        assert "expunged_mailbox_modseq" in str(plan)
        assert core.vanished("Inbox", before) == [gone.uid]
        assert core.vanished("Inbox", before + 1) == []
        assert core.read(kept.message_id) == b"Subject: kept\r\n\r\nstays\r\n"
        assert [m.subject for m in core.messages("Inbox")] == ["kept"]
    finally:
        core.close()
