"""The flag changes of a mailbox heard since a known mod-sequence, for CHANGEDSINCE.

A client that resynchronises asks ``UID FETCH 1:* (FLAGS) (CHANGEDSINCE m)``
(RFC 7162 §3.1.4) again and again. The store answers it from its modseq index,
in a worker thread; here the answer comes from memory instead: each mailbox
selected by a CONDSTORE session has one :class:`ChangeLog`, shared by every
session that selected it, which hears every committed change of the mailbox
from the store's change hub (``kittiwake.store.changes``) and keeps, for each
message changed since its *floor*, its latest modseq and flags.

Invariants (break one and a client misses a change):

1. The floor is a HIGHESTMODSEQ read from the database *after* the log's
   subscription started: every commit with a higher modseq is published after
   that (the store publishes after commit, before it tells anyone), so every
   change with a modseq above the floor is in the log. Entries are dropped
   only by raising the floor above them.
2. A question with ``m`` below the floor, a message added by COPY/MOVE (its
   change carries no flags), or a log that lost its subscription (too many
   changes unread) is answered by the store: :meth:`ChangeLog.changed` says None.
3. Only this process publishes. Another process writing the account (``kittiwake
   import`` adds messages) is not heard; every SELECT compares the mailbox's
   HIGHESTMODSEQ read from the database with the highest modseq heard, and
   starts the log afresh (floor raised to it) when the database is ahead. A
   session only knows the messages of its view, which learns of others' only
   from the same hub or from its SELECT, so what it may ask about is covered.

Memory: one log per selected mailbox (not per session), at most
:data:`MAX_ENTRIES` messages; more, and the floor rises past the older half.
"""

from __future__ import annotations

import weakref
from bisect import bisect_right, insort
from collections.abc import Callable, Sequence

from kittiwake.store.changes import ChangeHub, Subscription
from kittiwake.store.model import Change, FetchRow, Flags

__all__ = ["MAX_ENTRIES", "ChangeLog", "attach"]

MAX_ENTRIES = 5_000  # messages a log remembers (about 150 octets each)
MAX_UNREAD = 10_000  # changes of the account waiting for the log: more, and it ends

# An entry: (modseq, flag bits, keywords); flag bits UNKNOWN: added without its flags.
UNKNOWN = -1
GONE = -2  # expunged
Entry = tuple[int, int, str]


class ChangeLog:
    """The latest (modseq, flags) of each message of one mailbox changed since ``floor``."""

    def __init__(self, sub: Subscription, mailbox_id: int, floor: int) -> None:
        self.sub = sub
        self.mailbox_id = mailbox_id
        self.floor = floor
        self.known = floor  # the highest modseq heard (or read)
        self.valid = True
        self.entries: dict[int, Entry] = {}
        self._order: list[tuple[int, int]] = []  # (modseq, uid), ascending; stale ones too

    # --- hearing -------------------------------------------------------------------

    def _take(self) -> None:
        if not self.valid:
            return
        if self.sub.overflowed:
            self._lost()
            return
        for change in self.sub.pending():
            self._apply(change)

    def _lost(self) -> None:
        self.valid = False
        self.entries.clear()
        self._order.clear()
        self.sub.close()

    def _apply(self, change: Change) -> None:
        if change.mailbox_id != self.mailbox_id:
            return
        if change.kind == "mailbox-removed":
            self._lost()
            return
        if change.kind not in ("added", "flags", "expunged"):
            return
        modseq = change.modseq
        if modseq > self.known:
            self.known = modseq
        if modseq <= self.floor:
            return  # older than the floor: no question the log answers needs it
        flags = change.flags
        entries = self.entries
        order = self._order
        # A change's UIDs ascend and its modseq is usually the highest heard: its
        # entries go at the end of the order in one step, else each in its place.
        tail = not order or order[-1] < (modseq, change.uids[0] if change.uids else 0)
        added: list[tuple[int, int]] = []
        expunged = change.kind == "expunged"
        texts: dict[Flags, Entry] = {}  # a STORE's messages share a few flag values
        n_flags = len(flags)
        for i, uid in enumerate(change.uids):
            old = entries.get(uid)
            if old is not None and old[0] >= modseq:
                continue  # heard a later change first (publish order is not modseq order)
            if expunged:
                entry: Entry = (modseq, GONE, "")
            elif i < n_flags:
                f = flags[i]
                known = texts.get(f)
                if known is None:
                    known = texts[f] = (modseq, f.system, f.keyword_text())
                entry = known
            else:
                entry = (modseq, UNKNOWN, "")
            entries[uid] = entry
            if tail and (not added or added[-1][1] < uid):
                added.append((modseq, uid))
            else:
                tail = False
                insort(order, (modseq, uid))
        if added:
            if tail:
                order.extend(added)
            else:
                for pair in added:
                    insort(order, pair)
        if len(self._order) > 2 * MAX_ENTRIES or len(self.entries) > MAX_ENTRIES:
            self._compact()

    def _compact(self) -> None:
        """Drop stale order entries; above MAX_ENTRIES messages, raise the floor."""
        self._order = [(q, u) for q, u in self._order if self.entries[u][0] == q]
        if len(self._order) > MAX_ENTRIES:
            self.floor = max(self.floor, self._order[-(MAX_ENTRIES // 2) - 1][0])
            self.entries = {u: e for u, e in self.entries.items() if e[0] > self.floor}
            self._order = [(q, u) for q, u in self._order if q > self.floor]

    def observe(self, highestmodseq: int) -> None:
        """A SELECT read the mailbox's HIGHESTMODSEQ from the database after this log
        subscribed: if it is ahead of all heard, someone not heard wrote (invariant
        3); start afresh from it."""
        self._take()
        if self.valid and highestmodseq > self.known:
            self.entries.clear()
            self._order.clear()
            self.floor = self.known = highestmodseq

    # --- answering -----------------------------------------------------------------

    def changed(self, since: int, seq_of: Callable[[int], int | None]
                ) -> list[tuple[int, FetchRow]] | None:
        """(sequence number, row) of the messages ``seq_of`` names whose modseq is above
        ``since``, in UID order; None when the store must answer (invariant 2). The
        rows carry UID, MODSEQ and FLAGS only (what a flags-only FETCH writes)."""
        self._take()
        if not self.valid or since < self.floor:
            return None
        out: list[tuple[int, FetchRow]] = []
        seen: set[int] = set()
        order = self._order
        for i in range(bisect_right(order, (since, 1 << 62)), len(order)):
            modseq, uid = order[i]
            entry = self.entries.get(uid)
            if entry is None or entry[0] != modseq or uid in seen:
                continue  # a stale order entry: the message changed again later
            seen.add(uid)
            seq = seq_of(uid)
            if seq is None or entry[1] == GONE:
                continue
            if entry[1] == UNKNOWN:
                return None
            out.append((seq, FetchRow(0, uid, modseq, entry[1], entry[2], 0, 0, 0, 0, b"")))
        out.sort(key=lambda pair: pair[1].uid)
        return out


# One log per (account directory, mailbox id), alive while a session holds it.
_LOGS: weakref.WeakValueDictionary[tuple[str, int], ChangeLog] = weakref.WeakValueDictionary()


def _on_overflow(ref: weakref.ref[ChangeLog]) -> Callable[[], None]:
    def lost() -> None:
        log = ref()
        if log is not None:
            log.valid = False
    return lost


class Pending:
    """A subscription taken before a SELECT reads the mailbox (invariant 1)."""

    def __init__(self, hub: ChangeHub, account: str) -> None:
        self.hub = hub
        self.account = account
        self.sub: Subscription | None = hub.subscribe(account, limit=MAX_UNREAD,
                                                      stale_after=0.0)

    def attach(self, root: str, mailbox_id: int, highestmodseq: int) -> ChangeLog:
        """The mailbox's log, after the SELECT read ``highestmodseq`` from the database."""
        assert self.sub is not None
        key = (root, mailbox_id)
        log = _LOGS.get(key)
        if log is not None and log.valid:
            log.observe(highestmodseq)
            if log.valid:
                self.close()  # the shared log hears for this session too
                return log
            # it lost its subscription while observing: a new log, on this subscription
        sub, self.sub = self.sub, None
        log = ChangeLog(sub, mailbox_id, highestmodseq)
        sub.on_overflow = _on_overflow(weakref.ref(log))
        weakref.finalize(log, sub.close)
        _LOGS[key] = log
        return log

    def close(self) -> None:
        if self.sub is not None:
            self.sub.close()
            self.sub = None


def attach(hub: ChangeHub, account: str) -> Pending:
    """Subscribe now, before the SELECT's read; :meth:`Pending.attach` after it."""
    return Pending(hub, account)


def flags_only(names: Sequence[str]) -> bool:
    """Whether a FETCH plan's items are all answered by a log (UID, FLAGS, MODSEQ)."""
    return all(n in ("UID", "FLAGS", "MODSEQ") for n in names)
