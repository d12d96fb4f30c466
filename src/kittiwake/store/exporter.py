"""Exporting an account's mailboxes as mbox files or Maildirs.

Each mailbox becomes ``DEST/<name>.mbox`` or the Maildir ``DEST/<name>/``
(hierarchy levels as directories), flags included, so that importing the
export gives the same messages and flags.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kittiwake.store.account import AccountStore
from kittiwake.store.mailfile import write_dovecot_keywords, write_maildir, write_mbox

Progress = Callable[[int], None]


def export(store: AccountStore, fmt: str, dest: Path, mailbox: str | None = None,
           progress: Progress | None = None) -> dict[str, int]:
    """Write mailboxes to ``dest``; returns messages written per mailbox."""
    if fmt not in ("mbox", "maildir"):
        raise ValueError(fmt)
    dest.mkdir(parents=True, exist_ok=True)
    boxes = [store.mailbox(mailbox)] if mailbox else store.mailboxes()
    counts: dict[str, int] = {}
    done = 0
    for box in boxes:
        messages = store.messages(box.name)
        counts[box.name] = len(messages)
        if fmt == "mbox":
            target = dest / (box.name + ".mbox")
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as out:
                for m in messages:
                    write_mbox(out, store.read(m.id), m.flags, m.received)
                    done += 1
                    if progress:
                        progress(done)
        else:
            maildir = dest / box.name
            for sub in ("cur", "new", "tmp"):
                (maildir / sub).mkdir(parents=True, exist_ok=True)
            letters: dict[str, str] = {}
            for m in messages:
                write_maildir(maildir, store.read(m.id), m.flags, m.received,
                              f"M{m.id}U{m.uid}", letters)
                done += 1
                if progress:
                    progress(done)
            write_dovecot_keywords(maildir, letters)
    return counts
