"""The selected-mailbox view: what a client is told, and when (RFC 9051 §7.5.1)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kittiwake.imapserver.view import Exists, Expunge, FlagsChanged, SelectedView, Vanished
from kittiwake.store.model import Change, Flags

SEEN = Flags.parse(["\\Seen"])


def test_expunge_waits_until_allowed_and_numbers_stay() -> None:
    view = SelectedView(1, [10, 20, 30])
    view.apply(Change("expunged", 1, uids=(20,), modseq=5))
    assert view.announce(expunges_allowed=False) == []
    assert view.seq_of(30) == 3 and view.is_pending_expunge(20)
    assert view.announce(expunges_allowed=True) == [Expunge(2)]
    assert view.seq_of(30) == 2


def test_several_expunges_go_highest_first() -> None:
    view = SelectedView(1, [1, 2, 3, 4])
    view.apply(Change("expunged", 1, uids=(1, 3), modseq=2))
    assert view.announce(expunges_allowed=True) == [Expunge(3), Expunge(1)]


def test_qresync_sends_vanished() -> None:
    view = SelectedView(1, [1, 2, 3])
    view.apply(Change("expunged", 1, uids=(3, 1), modseq=2))
    assert view.announce(expunges_allowed=True, qresync=True) == [Vanished((1, 3))]
    assert list(view.uids) == [2]


def test_additions_counted_even_while_expunges_wait() -> None:
    view = SelectedView(1, [1, 2])
    view.apply(Change("expunged", 1, uids=(1,), modseq=2))
    view.apply(Change("added", 1, uids=(3,), modseq=3))
    assert view.announce(expunges_allowed=False) == [Exists(3)]


def test_flags_of_others_announced_own_not() -> None:
    view = SelectedView(1, [5, 6])
    view.note_own_modseq(7)
    view.apply(Change("flags", 1, uids=(5,), modseq=7, flags=(SEEN,)))
    view.apply(Change("flags", 1, uids=(6,), modseq=8, flags=(SEEN,)))
    assert view.announce(expunges_allowed=True) == [FlagsChanged(2, 6, SEEN, 8)]


def test_other_mailboxes_and_repeats_are_ignored() -> None:
    view = SelectedView(1, [1])
    view.apply(Change("added", 2, uids=(9,), modseq=2))
    view.apply(Change("added", 1, uids=(1,), modseq=2))
    view.apply(Change("expunged", 1, uids=(44,), modseq=3))
    assert view.announce(expunges_allowed=True) == []
    assert view.highestmodseq == 3


def test_added_then_expunged_before_announce_is_never_seen() -> None:
    view = SelectedView(1, [1])
    view.apply(Change("added", 1, uids=(2,), modseq=2))
    view.apply(Change("expunged", 1, uids=(2,), modseq=3))
    assert view.announce(expunges_allowed=True) == []


def test_own_expunge_numbers() -> None:
    view = SelectedView(1, [1, 2, 3, 4])
    assert view.forget_own_expunge([2, 4]) == [4, 2]
    view.apply(Change("expunged", 1, uids=(2, 4), modseq=9))
    assert view.announce(expunges_allowed=True) == []


# A client that believes what it is told must end in step with the store.
step = st.one_of(
    st.tuples(st.just("add"), st.integers(1, 3)),
    st.tuples(st.just("expunge"), st.lists(st.integers(0, 30), max_size=4)),
    st.tuples(st.just("flag"), st.lists(st.integers(0, 30), max_size=4)),
    st.tuples(st.just("announce"), st.booleans(), st.booleans()),
)


@settings(max_examples=300, deadline=None)
@given(initial=st.integers(0, 8), steps=st.lists(step, max_size=40))
def test_client_model_stays_in_sync(initial: int, steps: list[tuple]) -> None:
    store = list(range(1, initial + 1))  # UIDs really in the mailbox
    next_uid = initial + 1
    modseq = 1
    view = SelectedView(1, store)
    client = list(store)  # the client's idea: index = seq - 1

    def tell(updates: list) -> None:
        for u in updates:
            if isinstance(u, Expunge):
                del client[u.seq - 1]
            elif isinstance(u, Vanished):
                for uid in u.uids:
                    client.remove(uid)
            elif isinstance(u, Exists):
                assert u.count >= len(client)
                # New messages are the highest UIDs; the client learns them by FETCH.
                client.extend(view.uids[len(client):u.count])
            elif isinstance(u, FlagsChanged):
                assert client[u.seq - 1] == u.uid

    for s in steps:
        modseq += 1
        if s[0] == "add":
            new = tuple(range(next_uid, next_uid + s[1]))
            next_uid += s[1]
            store.extend(new)
            view.apply(Change("added", 1, uids=new, modseq=modseq))
        elif s[0] == "expunge":
            gone = tuple(sorted({store[i % len(store)] for i in s[1]})) if store else ()
            store = [u for u in store if u not in gone]
            view.apply(Change("expunged", 1, uids=gone, modseq=modseq))
        elif s[0] == "flag":
            some = tuple(sorted({store[i % len(store)] for i in s[1]})) if store else ()
            view.apply(Change("flags", 1, uids=some, modseq=modseq, flags=(SEEN,) * len(some)))
        else:
            tell(view.announce(expunges_allowed=s[1], qresync=s[2]))
        assert client == list(view.uids)
        # Every UID the client holds is real or an expunge not yet told.
        assert all(u in store or view.is_pending_expunge(u) for u in client)
    tell(view.announce(expunges_allowed=True))
    assert client == store


def test_views_share_a_uid_array_until_one_changes() -> None:
    from array import array

    shared = array("I", [1, 2, 3])
    a, b = SelectedView(1, shared), SelectedView(1, shared)
    assert a.uids is b.uids
    a.apply(Change("expunged", 1, uids=(2,), modseq=5))
    assert a.announce(expunges_allowed=True) == [Expunge(2)]
    assert list(a.uids) == [1, 3] and list(b.uids) == [1, 2, 3] and list(shared) == [1, 2, 3]
    b.apply(Change("added", 1, uids=(4,), modseq=6))
    assert b.announce(expunges_allowed=True) == [Exists(4)]
    assert list(shared) == [1, 2, 3]


@settings(max_examples=200, deadline=None)
@given(uids=st.lists(st.integers(1, 60), unique=True, max_size=30),
       ranges=st.lists(st.tuples(st.one_of(st.none(), st.integers(1, 70)),
                                 st.one_of(st.none(), st.integers(1, 70))), min_size=1,
                       max_size=4))
def test_uid_sets_resolve_like_membership(uids: list[int], ranges: list) -> None:  # type: ignore[type-arg]
    """UID ranges cut by bisection name exactly the UIDs a membership test names."""
    from types import SimpleNamespace

    from kittiwake.imap.commands import SequenceSet
    from kittiwake.imapserver.messages import resolve

    view = SelectedView(1, uids)
    conn = SimpleNamespace(selected=SimpleNamespace(view=view), saved_uids=[])
    numbers = SequenceSet(tuple(ranges))
    want = [(i, u) for i, u in enumerate(view.uids, 1) if numbers.contains(u, view.max_uid)]
    assert resolve(conn, numbers, True) == want  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(uids=st.lists(st.integers(1, 60), unique=True, min_size=1, max_size=30),
       ranges=st.lists(st.tuples(st.one_of(st.none(), st.integers(1, 70)),
                                 st.one_of(st.none(), st.integers(1, 70))), min_size=1,
                       max_size=4),
       uid=st.booleans())
def test_a_chosen_set_answers_membership_without_spelling_it_out(
        uids: list[int], ranges: list, uid: bool) -> None:  # type: ignore[type-arg]
    """What CHANGEDSINCE asks of a set (kittiwake.imapserver.messages.Chosen): its UID
    bounds and the sequence number of a UID it names (None for one it does not) agree
    with membership tests of every message, for UID and sequence-number sets."""
    from types import SimpleNamespace

    from kittiwake.imap.commands import SequenceSet
    from kittiwake.imapserver.messages import choose
    from kittiwake.imapserver.state import HandlerError

    view = SelectedView(1, uids)
    conn = SimpleNamespace(selected=SimpleNamespace(view=view), saved_uids=[])
    numbers = SequenceSet(tuple(ranges))
    if uid:
        want = [(i, u) for i, u in enumerate(view.uids, 1)
                if numbers.contains(u, view.max_uid)]
    elif numbers.max_number() > len(view):
        try:
            choose(conn, numbers, False)  # type: ignore[arg-type]
        except HandlerError as exc:
            assert exc.status == "BAD"
            return
        raise AssertionError("a sequence number beyond the mailbox was accepted")
    else:
        want = [(i, u) for i, u in enumerate(view.uids, 1) if numbers.contains(i, len(view))]
    chosen = choose(conn, numbers, uid)  # type: ignore[arg-type]
    assert chosen.pairs() == want and len(chosen) == len(want)
    assert chosen.uid_range() == ((want[0][1], want[-1][1]) if want else None)
    named = dict((u, q) for q, u in want)
    for u in range(0, 72):
        assert chosen.seq_of(u) == named.get(u)
    # Spelt out batch by batch (the FETCH fast path's worker), the same pairs.
    for start in range(0, len(want) + 2):
        for count in (1, 2, 7, 100):
            assert chosen.slice(start, count) == want[start:start + count]


def test_flag_changes_dropped_when_not_wanted() -> None:
    # NOTIFY without FlagChange (RFC 5465 §5.1): flags are never told, other updates are.
    view = SelectedView(1, [1, 2])
    view.apply(Change("flags", 1, uids=(1,), modseq=2, flags=(SEEN,)))
    view.apply(Change("added", 1, uids=(3,), modseq=3))
    assert view.announce(expunges_allowed=True, flags=False) == [Exists(3)]
    assert view.announce(expunges_allowed=True) == []  # gone, not kept for later
    view.apply(Change("flags", 1, uids=(2,), modseq=4, flags=(SEEN,)))
    assert view.announce(expunges_allowed=True) == [FlagsChanged(2, 2, SEEN, 4)]


def test_lru_is_bounded_by_bytes_as_well_as_entries() -> None:
    """The header and structure caches hold at most about their byte budget, however
    large the values (a mailbox of big headers must not take the server's memory)."""
    from kittiwake.imapserver.cache import LRU

    lru: LRU[int, bytes] = LRU(1000, max_bytes=10_000, weight=len)
    for i in range(50):
        lru.put(i, b"x" * 1000)
    assert len(lru) == 10 and lru.get(39) is None and lru.get(49) == b"x" * 1000
    lru.put(49, b"y" * 5000)  # replacing an entry counts its new size only
    assert sum(len(lru.get(i) or b"") for i in range(50)) <= 10_000
    lru.put(100, b"z" * 50_000)  # one value over the budget stays alone
    assert len(lru) == 1 and lru.get(100) is not None


def test_fetch_caches_shrink_to_a_new_memory_bound_at_once() -> None:
    """Bounded.resize (limits.imap_fetch_cache_mib): the oldest values go until the rest
    fit; 0 keeps nothing, and a value put then is not kept either."""
    from kittiwake.imapserver.cache import Bounded

    b: Bounded[str, bytes] = Bounded(100_000, len)
    for i in range(50):
        b.put("acct", i, b"x" * 1000)
    assert len(b) == 50
    b.resize(10_000)
    kept = b.space("acct")
    assert sorted(kept) == list(range(40, 50))
    b.resize(0)
    b.put("acct", 99, b"y")
    assert len(b) == 0 and b.space("acct").get(99) is None
