"""The selected mailbox as one session sees it: sequence numbers and pending changes.

A session's view of its selected mailbox is the UID list at SELECT plus the
changes it has been *told* about. Changes committed by anyone (SMTP
delivery, another session, this session) arrive from the store's change hub
and wait in the view until the session may announce them:

- EXISTS and FETCH (FLAGS) may go out at any time a command is in progress
  or during IDLE (RFC 9051 §7.3.1, §7.5.2);
- EXPUNGE must not be sent while a FETCH, STORE or SEARCH (by sequence
  number) is being answered, nor when no command is in progress (RFC 9051
  §7.5.1); the UID forms may see them. Until announced, an expunged message
  keeps its sequence number, so the numbers the client holds stay right;
- under QRESYNC, expunges are announced as VANISHED (RFC 7162 §3.2.10).

Invariants every handler keeps (break one and clients lose sync):

1. Sequence numbers are computed from ``uids`` only, which changes only in
   :meth:`announce` (and :meth:`forget_own_expunge` for the session's own
   EXPUNGE, which the handler announces itself).
2. An EXISTS count is the length of ``uids`` after additions: it never
   counts a message whose EXPUNGE has not been sent yet as gone.
3. Changes are applied idempotently: an addition already in the view, an
   expunge of a UID not in it, a flag change this session made itself, are
   dropped. So the session's own commands can update the view at once and
   the broadcast of the same commit later is harmless.

Memory: the UIDs are a compact ``array`` (4 bytes a message, IMAP UIDs are
32-bit), and sessions that select the same mailbox state share one array
until one of them changes it (copy on write), so thousands of idle sessions
on a big mailbox stay cheap. Pure code, no I/O.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass

from kittiwake.store.model import Change, Flags

__all__ = ["Exists", "Expunge", "FlagsChanged", "SelectedView", "Update", "Vanished"]


@dataclass(frozen=True, slots=True)
class Expunge:
    """``* seq EXPUNGE`` (RFC 9051 §7.5.1)."""

    seq: int


@dataclass(frozen=True, slots=True)
class Vanished:
    """``* VANISHED uid-set`` (RFC 7162 §3.2.10), UIDs ascending."""

    uids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Exists:
    """``* n EXISTS`` (RFC 9051 §7.4.1)."""

    count: int


@dataclass(frozen=True, slots=True)
class FlagsChanged:
    """``* seq FETCH (UID uid FLAGS (...) MODSEQ (m))`` for another's change."""

    seq: int
    uid: int
    flags: Flags
    modseq: int


Update = Expunge | Vanished | Exists | FlagsChanged


class SelectedView:
    """UIDs with sequence numbers, and the changes not yet told to the client."""

    def __init__(self, mailbox_id: int, uids: Iterable[int] | array[int],
                 highestmodseq: int = 0) -> None:
        self.mailbox_id = mailbox_id
        # An array given is shared with other views (read-only until copied).
        self._shared = isinstance(uids, array)
        self.uids: array[int] = uids if isinstance(uids, array) else array("I", sorted(uids))
        self.highestmodseq = highestmodseq
        self._added: set[int] = set()
        self._expunged: set[int] = set()
        self._flags: dict[int, tuple[Flags, int]] = {}
        self._own_modseqs: set[int] = set()

    # --- numbers ------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.uids)

    def seq_of(self, uid: int) -> int | None:
        """The sequence number of ``uid`` in this view, or None."""
        i = bisect_left(self.uids, uid)
        if i < len(self.uids) and self.uids[i] == uid:
            return i + 1
        return None

    def uid_of(self, seq: int) -> int:
        """The UID at sequence number ``seq`` (1-based); IndexError if out of range."""
        if not 1 <= seq <= len(self.uids):
            raise IndexError(seq)
        return self.uids[seq - 1]

    @property
    def max_uid(self) -> int:
        return self.uids[-1] if self.uids else 0

    def is_pending_expunge(self, uid: int) -> bool:
        """True if ``uid`` was expunged but the client has not been told yet."""
        return uid in self._expunged

    # --- changes in ---------------------------------------------------------

    def note_own_modseq(self, modseq: int) -> None:
        """This session made the commit with ``modseq`` and answered it already."""
        self._own_modseqs.add(modseq)

    def apply(self, change: Change) -> None:
        """Queue a committed change of this mailbox (others are ignored)."""
        if change.mailbox_id != self.mailbox_id:
            return
        if change.modseq > self.highestmodseq:
            self.highestmodseq = change.modseq
        if change.kind == "added":
            for uid in change.uids:
                if self.seq_of(uid) is None:
                    self._added.add(uid)
        elif change.kind == "expunged":
            for uid in change.uids:
                if uid in self._added:
                    self._added.discard(uid)
                elif self.seq_of(uid) is not None:
                    self._expunged.add(uid)
                self._flags.pop(uid, None)
        elif change.kind == "flags":
            if change.modseq in self._own_modseqs:
                return
            for i, uid in enumerate(change.uids):
                if uid in self._expunged:
                    continue
                flags = change.flags[i] if i < len(change.flags) else Flags()
                self._flags[uid] = (flags, change.modseq)

    # --- changes out --------------------------------------------------------

    @property
    def has_pending(self) -> bool:
        return bool(self._added or self._expunged or self._flags)

    def _own(self) -> None:
        """Copy a shared UID array before the first change (copy on write)."""
        if self._shared:
            self.uids = array("I", self.uids)
            self._shared = False

    def announce(self, *, expunges_allowed: bool, qresync: bool = False,
                 flags: bool = True) -> list[Update]:
        """The untagged updates to send now, in the order to send them.

        Expunges first (so the numbers of FETCH and EXISTS that follow are the
        new ones), when allowed; then EXISTS for additions; then flag changes
        of messages the client knows, unless ``flags`` is False (a NOTIFY
        without FlagChange, RFC 5465 §5.1): those are dropped.
        """
        out: list[Update] = []
        if (expunges_allowed and self._expunged) or self._added:
            self._own()
        if expunges_allowed and self._expunged:
            gone = sorted(self._expunged)
            self._expunged.clear()
            if qresync:
                out.append(Vanished(tuple(gone)))
                self._remove(gone)
            else:
                # Highest first: each number is still right when the client reads it.
                for uid in reversed(gone):
                    seq = self.seq_of(uid)
                    if seq is not None:
                        del self.uids[seq - 1]
                        out.append(Expunge(seq))
        if self._added:
            new = sorted(self._added)
            self._added.clear()
            if new[0] > self.max_uid:
                self.uids.extend(new)
            else:  # out of order (never from the store, but stay correct)
                self.uids = array("I", sorted(set(self.uids) | set(new)))
            out.append(Exists(len(self.uids)))
        if self._flags and not flags:
            self._flags.clear()
        if self._flags:
            for uid in sorted(self._flags):
                seq = self.seq_of(uid)
                if seq is None:
                    continue
                flags, modseq = self._flags[uid]
                out.append(FlagsChanged(seq, uid, flags, modseq))
            self._flags.clear()
        return out

    def forget_own_expunge(self, uids: Iterable[int]) -> list[int]:
        """Remove UIDs this session expunged; returns their sequence numbers as sent.

        The numbers are those to send, in order, highest first (RFC 9051
        §7.5.1: each EXPUNGE renumbers the messages after it).
        """
        seqs: list[int] = []
        self._own()
        for uid in sorted(set(uids), reverse=True):
            seq = self.seq_of(uid)
            if seq is not None:
                del self.uids[seq - 1]
                seqs.append(seq)
            self._expunged.discard(uid)
            self._flags.pop(uid, None)
        return seqs

    def _remove(self, uids: list[int]) -> None:
        drop = set(uids)
        self.uids = array("I", (u for u in self.uids if u not in drop))
