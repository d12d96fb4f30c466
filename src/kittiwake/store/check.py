"""Consistency check of one account: counts, files versus rows, modseq order.

``kittiwake account check NAME [--repair]``. Every problem is one line a
person can act on. With repair, counts are recomputed, orphan files (written
by an interrupted delivery, never acknowledged) are removed, and missing
full-text entries are queued again and rebuilt; rows whose file is gone are reported only, as
their content cannot be recovered.
"""

from __future__ import annotations

import os
from pathlib import Path

from kittiwake import durable
from kittiwake.store.account import AccountStore
from kittiwake.store.schema import DELETED, INDEX_DONE, INDEX_PENDING, SEEN


def check(store: AccountStore, repair: bool = False) -> list[str]:
    """Problems found (and, with ``repair``, fixed where possible)."""
    problems: list[str] = []
    missing: set[int] = set()
    with store.lock:
        db = store.db
        modseq = db.execute("SELECT value FROM meta WHERE key = 'modseq'").fetchone()[0]
        mailboxes = db.execute("SELECT id, name, uidnext, messages, unseen, deleted, size,"
                               " highestmodseq FROM mailbox").fetchall()
        for mid, name, uidnext, messages, unseen, deleted, size, highest in mailboxes:
            rows = db.execute("SELECT uid, flags, size, modseq FROM message WHERE mailbox_id = ?",
                              (mid,)).fetchall()
            actual = (len(rows), sum(1 for r in rows if not r[1] & SEEN),
                      sum(1 for r in rows if r[1] & DELETED), sum(r[2] for r in rows))
            if actual != (messages, unseen, deleted, size):
                problems.append(
                    f"mailbox {name}: counts messages/unseen/deleted/size are "
                    f"{messages}/{unseen}/{deleted}/{size}, rows say "
                    f"{actual[0]}/{actual[1]}/{actual[2]}/{actual[3]}")
                if repair:
                    db.execute("UPDATE mailbox SET messages = ?, unseen = ?, deleted = ?, size = ?"
                               " WHERE id = ?", (*actual, mid))
            max_uid = max((r[0] for r in rows), default=0)
            if uidnext <= max_uid:
                problems.append(f"mailbox {name}: uidnext {uidnext} is not above the highest"
                                f" uid {max_uid}")
                if repair:
                    db.execute("UPDATE mailbox SET uidnext = ? WHERE id = ?", (max_uid + 1, mid))
            tomb = db.execute("SELECT COALESCE(MAX(modseq), 0) FROM expunged WHERE mailbox_id = ?",
                              (mid,)).fetchone()[0]
            max_modseq = max([tomb, *(r[3] for r in rows)])
            if highest < max_modseq:
                problems.append(f"mailbox {name}: highestmodseq {highest} is below a message"
                                f" modseq {max_modseq}")
                if repair:
                    db.execute("UPDATE mailbox SET highestmodseq = ? WHERE id = ?",
                               (max_modseq, mid))
            if max_modseq > modseq:
                problems.append(f"mailbox {name}: modseq {max_modseq} is above the account's"
                                f" counter {modseq}")
        ids: dict[int, tuple[int, int, int]] = {}  # id -> size, prefix length, index state
        for message_id, size, prefix_len, state in db.execute(
                "SELECT id, size, length(prefix), indexed FROM message"):
            ids[message_id] = (size, prefix_len, state)
        for message_id, (size, prefix_len, _state) in ids.items():
            path = durable.message_path(store.root, message_id)
            try:
                on_disk = os.stat(path).st_size
            except FileNotFoundError:
                problems.append(f"message {message_id}: file {path} is missing")
                continue
            if on_disk + prefix_len != size:
                problems.append(f"message {message_id}: file has {on_disk} bytes"
                                f" (+{prefix_len} of prefix), row says {size}")
        # With the account open elsewhere (the server running), a file above every
        # row may be a delivery or an IMAP APPEND in progress (its spool is written
        # at its final name), and an empty one a file made ahead for a delivery
        # (store.readyfiles): not reported, never removed.
        newest = max(ids, default=0) if not store.opened_alone else None
        for path in _message_files(store.root):
            try:
                message_id = int(path.name)
            except ValueError:
                problems.append(f"unexpected file {path}")
                continue
            if newest is not None and message_id > newest:
                continue
            if message_id not in ids:
                if message_id in store.ready or (newest is not None and _empty(path)):
                    continue  # made ahead for a delivery, by this store or another's
                problems.append(f"file {path} has no message row (interrupted delivery)")
                if repair:
                    path.unlink(missing_ok=True)
        # Messages still pending (indexed = 0) are the background indexer's; those
        # marked done must be in the search index.
        done = {i for i, (_s, _p, state) in ids.items() if state == INDEX_DONE}
        text_ids = {r[0] for r in db.execute("SELECT id FROM textindex_docsize")}
        missing = done - text_ids
        extra = text_ids - set(ids)
        if missing:
            problems.append(f"{len(missing)} messages are missing from the search index")
            if repair:  # queued again for the indexer, which runs here
                db.executemany("UPDATE message SET indexed = ? WHERE id = ?",
                               [(INDEX_PENDING, i) for i in missing])
        if extra:
            problems.append(f"{len(extra)} search index entries belong to no message")
            if repair:
                db.executemany("DELETE FROM textindex WHERE rowid = ?", [(i,) for i in extra])
    if repair and missing:
        store.find_unindexed()
        store.index_all_pending()
    return problems


def _message_files(root: Path) -> list[Path]:
    msg_dir = root / "msg"
    if not msg_dir.is_dir():
        return []
    return [p for shard in msg_dir.iterdir() if shard.is_dir() for p in shard.iterdir()]


def _empty(path: Path) -> bool:
    try:
        return os.stat(path).st_size == 0
    except FileNotFoundError:
        return True
