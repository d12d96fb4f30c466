"""AccountStore.messages: every shape of request gives exactly the filtered rows.

The store picks a different index per shape (CHANGEDSINCE through the modseq
index, sparse UID sets one by one, dense ones by range); whatever it picks,
the answer must be the mailbox's messages with modseq > changed_since among
the UIDs asked for, in UID order.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kittiwake.store.account import AccountStore
from kittiwake.store.model import FileRow, FlagRow, Flags, IdRow

N = 60


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AccountStore]:
    root: Path = tmp_path_factory.mktemp("rows") / "alice"
    core = AccountStore("alice", root)
    core.ensure_mailboxes(["Archive"])
    for i in range(N):
        core.deliver("Inbox", b"Subject: %d\r\n\r\nx\r\n" % i)
        core.deliver("Archive", b"Subject: a%d\r\n\r\nx\r\n" % i)
    rng = random.Random(7)
    for _ in range(12):  # flag changes at different modseqs
        core.store_flags("Inbox", rng.sample(range(1, N + 1), 5), "add",
                         Flags.parse([rng.choice(["\\Seen", "\\Flagged", "$Label"])]))
    core.store_flags("Inbox", [7, 8, 30], "add", Flags.parse(["\\Deleted"]))
    core.expunge("Inbox")
    yield core
    core.close()


uid_sets = st.one_of(
    st.none(),
    st.sets(st.integers(1, N + 5), max_size=N),
    st.sets(st.integers(1, N + 5), max_size=4),
    st.tuples(st.integers(1, N), st.integers(0, N)).map(lambda t: set(range(t[0], t[0] + t[1]))),
)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(since=st.integers(0, 3 * N + 20), uids=uid_sets)
def test_messages_is_the_filtered_mailbox(store: AccountStore, since: int,
                                          uids: set[int] | None) -> None:
    everything = store.messages("Inbox")
    assert [m.uid for m in everything] == sorted(m.uid for m in everything)
    want = [m for m in everything if m.modseq > since and (uids is None or m.uid in uids)]
    got = store.messages("Inbox", since, None if uids is None else sorted(uids))
    assert got == want
    # Any iterable of UIDs (a list with repeats, a set) gives the same.
    if uids:
        assert store.messages("Inbox", since, [*uids, *uids]) == want


def test_changed_since_sees_only_later_changes(store: AccountStore) -> None:
    rows = store.messages("Inbox")
    top = max(m.modseq for m in rows)
    assert store.messages("Inbox", top) == []
    newest = [m for m in rows if m.modseq == top]
    assert store.messages("Inbox", top - 1) == newest
    assert 7 not in {m.uid for m in store.messages("Inbox", 0, [7, 8, 9])}  # expunged
    assert store.messages("Inbox", 0, []) == []
    assert {m.mailbox_id for m in store.messages("Archive", 0, range(1, 5))} == \
        {store.mailbox("Archive").id}


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(uids=st.lists(st.integers(1, N + 5), min_size=1, max_size=20, unique=True).map(sorted))
def test_narrow_rows_are_the_columns_of_the_whole_rows(store: AccountStore,
                                                       uids: list[int]) -> None:
    """fetch_narrow gives, for each row type, the same rows (expunged UIDs absent)
    with the same values as fetch_rows for that type's columns."""
    whole = store.fetch_rows("Inbox", uids)
    for kind in (IdRow, FlagRow, FileRow):
        got = store.fetch_narrow("Inbox", uids, kind)
        assert all(type(r) is kind for r in got)
        assert [tuple(r) for r in got] == [
            tuple(getattr(w, name) for name in kind._fields) for w in whole]
    assert {r.uid for r in whole} == set(uids) - {7, 8, 30} - set(range(N + 1, N + 6))
