"""A full training (``kittiwake junk train``, the sweep's training of a new account)
while the user moves mail: each message counts once, as where it ended.

The training reads the account's mailboxes one after the other. A message the
user moves from one not read yet... into one read later is listed twice; it
was trained twice (ham from the Inbox and junk from Junk: ``bench.junkcpu``
under callgrind, whose slow training met the sweep's, ended with 271-295 ham
for 200 read messages). One moved the other way is listed by neither and is
learnt from its change, after the training.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from tests.junk.test_scenario import HAM_WORDS, SPAM_WORDS, message

from kittiwake.config import DomainsConfig
from kittiwake.junk import JunkFilter
from kittiwake.junk.history import Class
from kittiwake.store import Flags, Store
from kittiwake.store.model import Message
from kittiwake.store.store import Account

CONF = DomainsConfig.model_validate({
    "domains": {"example.org": {}},
    "accounts": {"alice": {"domain": "example.org",
                           "destinations": {"alice@example.org": {}}, "junk": {}}}})


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store(tmp_path / "data")
    yield s
    s.close()


def moving_after(listed: str, source: str, target: str, uid: int, seen: list[str]
                 ) -> Callable[..., Awaitable[list[Message]]]:
    """Account.messages that, once ``listed`` is read, moves message ``uid`` from
    ``source`` to ``target`` (the user, while the training reads on); ``seen``: the
    mailboxes read, in order."""
    original = Account.messages
    moved = False

    async def messages(self: Account, mailbox: str, *args: object) -> list[Message]:
        nonlocal moved
        found = await original(self, mailbox, *args)  # type: ignore[arg-type]
        seen.append(mailbox)
        if mailbox == listed and not moved:
            moved = True
            await self.move(source, [uid], target)
        return found

    return messages


@pytest.mark.parametrize(("source", "target", "ham", "junk"), [
    ("Inbox", "Junk", 2, 2),  # listed in the Inbox, then in Junk: junk once
    ("Junk", "Inbox", 4, 0),  # listed in neither: rescued, ham once (from its change)
])
async def test_a_message_moved_during_the_training_counts_once(
        store: Store, monkeypatch: pytest.MonkeyPatch, source: str, target: str,
        ham: int, junk: int) -> None:
    alice = await store.account("alice", default_mailboxes=["Junk"])
    filt = JunkFilter(store, lambda: CONF)
    await filt.start()
    for i in range(3):
        await alice.deliver("Inbox", message(f"friend{i}@work.example", f"ham {i}",
                                             HAM_WORDS, i), flags=Flags.parse(["\\Seen"]))
    await alice.deliver("Junk", message("lucky@spam.example", "spam 0", SPAM_WORDS, 10))
    await filt.settled()
    before = await filt.stats("alice")
    assert (before.ham_messages, before.junk_messages) == (3, 1)

    [mover] = [m for m in await alice.messages(source)][1 if source == "Inbox" else 0:][:1]
    seen: list[str] = []
    # The Inbox is read first, Junk after it (the order of the account's mailboxes).
    monkeypatch.setattr(Account, "messages", moving_after("Inbox", source, target,
                                                          mover.uid, seen))
    await filt.train_all("alice")
    monkeypatch.undo()
    await filt.settled()
    assert seen.index("Inbox") < seen.index("Junk")

    stats = await filt.stats("alice")
    assert (stats.ham_messages, stats.junk_messages) == (ham, junk)
    assert (stats.ham_known, stats.junk_known) == (ham, junk)
    assert mover.id in {m.id for m in await alice.messages(target)}
    db = await filt.database("alice")
    expected = Class.JUNK if target == "Junk" else Class.HAM
    assert db.message_class(mover.id) == (expected, expected)
    # The word counts are those of a training from the mailboxes as they are now.
    words = db.reader.execute("SELECT word, ham, junk FROM word ORDER BY word").fetchall()
    await filt.train_all("alice")
    assert db.reader.execute("SELECT word, ham, junk FROM word ORDER BY word"
                             ).fetchall() == words
    await filt.close()
