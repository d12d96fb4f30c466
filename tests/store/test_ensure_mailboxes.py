"""ensure_mailboxes when another caller creates the same mailbox at the same time.

Two MX deliveries that meet the same missing mailbox (a configured one not made
yet, the junk filter's Rejects) each create it; the second must find it there,
not fail: it failed with MailboxExists, which cost the message a 451, or a
rejected message its copy in Rejects.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kittiwake.store import Store
from kittiwake.store.account import AccountStore
from kittiwake.store.model import MailboxNotFound


def test_a_mailbox_created_between_the_look_and_the_create_counts_as_there(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    core = AccountStore("alice", tmp_path / "alice")
    core.ensure_mailboxes([])
    before = core.mailboxes()  # as another caller's ensure_mailboxes read them
    core.ensure_mailboxes(["Rejects"])  # ... and then this one created Rejects
    monkeypatch.setattr(core, "mailboxes", lambda: before)
    assert core.ensure_mailboxes(["Rejects"]) == []  # nothing new, and no error
    monkeypatch.undo()
    assert sorted(m.name for m in core.mailboxes()) == ["Inbox", "Rejects"]
    core.close()


async def test_concurrent_deliveries_into_a_missing_mailbox_all_arrive(tmp_path: Path) -> None:
    """What deliver_local does on MailboxNotFound, twelve at once, in fresh accounts."""
    store = Store(tmp_path)
    for n in range(5):
        account = await store.account(f"user{n}")

        async def deliver(i: int, account=account) -> None:  # type: ignore[no-untyped-def]
            data = b"Message-ID: <%d@example.org>\r\nSubject: r\r\n\r\nbody\r\n" % i
            try:
                await account.deliver("Rejects", data)
            except MailboxNotFound:
                await account.ensure_mailboxes(["Rejects"])
                await account.deliver("Rejects", data)

        await asyncio.gather(*(deliver(i) for i in range(12)))
        assert len(await account.messages("Rejects")) == 12
    store.close()
