"""The FETCH fast path (kittiwake.imapserver.fastfetch) writes the same octets as the
general path, for random messages and items; its facts persist in the store's
message_cache (schema 5) across a restart, and a version 4 database is migrated."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.imap.fetch_corpus import CORPUS

from kittiwake.imap import commands as c
from kittiwake.imap.encode import Piece
from kittiwake.imap.section import Partial, Section, SectionText
from kittiwake.imap.sections import literal_safe
from kittiwake.imap.values import FileLiteral
from kittiwake.imapserver import fastfetch, fetchcache, messages
from kittiwake.store.account import AccountStore
from kittiwake.store.model import FetchRow, FileRow, FlagRow, Flags, IdRow

PREFIX = b"Received: from mx.example.net by mail.example.org; Tue, 1 Dec 2026 10:00:00 +0000\r\n"


def _octets(pieces: list[Piece]) -> bytes:
    """What the driver sends for the pieces (file literals copied, NUL made 0x80)."""
    out = []
    for p in pieces:
        if isinstance(p, FileLiteral):
            with open(p.path, "rb") as f:
                f.seek(p.offset)
                data = f.read(p.length)
            out.append(data if p.binary else literal_safe(data))
        else:
            out.append(p)
    return b"".join(out)


def _no_general(row: FetchRow, seq: int) -> list[Piece]:
    raise AssertionError(f"message {row.id} left to the general path")


def _general(core: AccountStore, row: FetchRow, seq: int, items: tuple[c.FetchItem, ...],
             utf8: bool, condstore: bool, uid_first: bool, uidfetch: bool) -> bytes:
    m = row.message()
    file = core.message_file(m.id)
    pieces, unknown = messages._build(utf8, condstore, [(seq, m)],
                                      partial(core.summaries, [m.id]), lambda: {m.id: file},
                                      items, uid_first, str(core.root), uidfetch)
    assert unknown is None
    return _octets(pieces)


def _fast(core: AccountStore, pairs: list[tuple[int, int]], items: tuple[c.FetchItem, ...],
          utf8: bool, condstore: bool, uid_first: bool, uidfetch: bool) -> bytes:
    plan = fastfetch.plan(items, uid_first=uid_first, condstore=condstore, uidfetch=uidfetch,
                          utf8=utf8, account=str(core.root))
    assert plan is not None
    out, done = [], 0
    while done < len(pairs):
        batch = fastfetch.build_batch(plan, core, "Inbox", pairs[done:], 0, _no_general)
        out.append(_octets(batch.pieces))
        done += batch.consumed
    return b"".join(out)


def _forget() -> None:
    """Drop the in-memory caches (as a restart does)."""
    fetchcache.FACTS.clear()
    fastfetch.FIELDS.clear()
    messages.STRUCTURES._data.clear()


@pytest.fixture
def core(tmp_path: Path) -> Iterator[AccountStore]:
    store = AccountStore("alice", tmp_path / "alice")
    store.create_mailbox("Inbox")
    yield store
    store.close()


# --- random messages and items ------------------------------------------------------

_SEED = [CORPUS[n] for n in ("mixed-alternative", "nested-rfc822", "params-rfc2231",
                              "eight-bit-headers", "encoded-words", "folded-headers",
                              "header-only", "text-no-trailing-newline", "groups")]
_PIECES = st.sampled_from([
    b"\r\n", b"\n", b"\x00", b"\xc3\xa9", b"From: x@y\r\n", b"Subject: =?utf-8?q?caf=C3=A9?=\r\n",
    b" folded\r\n", b"Content-Type: multipart/mixed; boundary=outer\r\n", b"\"", b"\\",
])


@st.composite
def _message(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(_SEED)))
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(0, len(data)))
        if draw(st.booleans()):
            del data[i:i + draw(st.integers(0, 40))]
        else:
            data[i:i] = draw(_PIECES)
    return bytes(data)


_ATTRS = ["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE", "BODY",
          "MODSEQ", "EMAILID", "THREADID", "SAVEDATE", "RFC822", "RFC822.HEADER", "RFC822.TEXT"]
_NAMES = st.lists(st.sampled_from(["FROM", "SUBJECT", "DATE", "TO", "X-NOPE", "CONTENT-TYPE",
                                   "MESSAGE-ID", "RECEIVED", "KEYWORDS"]),
                  min_size=1, max_size=4).map(tuple)
_PARTIAL = st.none() | st.builds(Partial, st.integers(0, 400), st.integers(0, 400))
_SECTION = st.one_of(
    st.just(Section()), st.just(Section((), SectionText.HEADER)),
    st.just(Section((), SectionText.TEXT)),
    _NAMES.map(lambda f: Section((), SectionText.HEADER_FIELDS, f)),
    _NAMES.map(lambda f: Section((), SectionText.HEADER_FIELDS_NOT, f)))
_ITEM = st.one_of(st.sampled_from(_ATTRS).map(c.FetchAttr),
                  st.builds(c.BodySection, _SECTION, _PARTIAL, st.just(True)))
_FLAGS = st.lists(st.sampled_from(["\\Seen", "\\Flagged", "\\Deleted", "$Junk", "later"]),
                  max_size=3)


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=_message(), flags=_FLAGS, prefixed=st.booleans(),
       items=st.lists(_ITEM, min_size=1, max_size=5).map(tuple), utf8=st.booleans(),
       condstore=st.booleans(), uid_first=st.booleans(), uidfetch=st.booleans())
def test_same_octets_as_the_general_path(core: AccountStore, data: bytes, flags: list[str],
                                         prefixed: bool, items: tuple[c.FetchItem, ...],
                                         utf8: bool, condstore: bool, uid_first: bool,
                                         uidfetch: bool) -> None:
    delivered, _ = core.deliver("Inbox", data, Flags.parse(flags), received=1764590000123,
                                prefix=PREFIX if prefixed else b"")
    row = core.fetch_rows("Inbox", [delivered.uid])[0]
    seq = 7
    want = _general(core, row, seq, items, utf8, condstore, uid_first, uidfetch)
    # Made from the part tree, then from memory, then from the store's blob.
    for _ in range(2):
        assert _fast(core, [(seq, delivered.uid)], items, utf8, condstore, uid_first,
                     uidfetch) == want
    _forget()
    assert _fast(core, [(seq, delivered.uid)], items, utf8, condstore, uid_first,
                 uidfetch) == want


def test_many_messages_in_batches_with_a_streamed_one(core: AccountStore) -> None:
    """Messages past the read-ahead (streamed as file literals) and a batch ended by
    the read budget give the same octets as message by message."""
    big = CORPUS["plain"] + b"".join(b"line %06d of the cliff survey\r\n" % i
                                     for i in range(fastfetch.READ_MAX // 20))
    uids = [core.deliver("Inbox", d, prefix=PREFIX if i % 2 else b"")[0].uid
            for i, d in enumerate([*CORPUS.values(), big, *CORPUS.values()])]
    pairs = [(i + 1, u) for i, u in enumerate(uids)]
    items = (c.FetchAttr("UID"), c.BodySection(Section(), None, True), c.FetchAttr("FLAGS"))
    rows = {r.uid: r for r in core.fetch_rows("Inbox", uids)}
    want = b"".join(_general(core, rows[u], q, items, False, False, True, False)
                    for q, u in pairs)
    plan = fastfetch.plan(items, uid_first=True, condstore=False, uidfetch=False, utf8=False,
                          account=str(core.root))
    assert plan is not None
    out, done, batches, streamed = [], 0, 0, 0
    while done < len(pairs):
        batch = fastfetch.build_batch(plan, core, "Inbox", pairs[done:], 0, _no_general,
                                      budget=4096)
        streamed += sum(isinstance(p, FileLiteral) for p in batch.pieces)
        out.append(_octets(batch.pieces))
        done += batch.consumed
        batches += 1
    assert b"".join(out) == want
    assert streamed == 1 and batches > 2


def test_changedsince_in_batches_of_changed_messages(core: AccountStore) -> None:
    """CHANGEDSINCE (RFC 7162 §3.1.4.1): only the messages changed since, ``limit`` of
    them per batch, whatever the length of the range."""
    uids = [core.deliver("Inbox", CORPUS["plain"])[0].uid for _ in range(30)]
    since = max(r.modseq for r in core.fetch_rows("Inbox", uids))
    changed = uids[3::4]
    core.store_flags("Inbox", changed, "add", Flags.parse(["\\Answered"]))
    pairs = [(i + 1, u) for i, u in enumerate(uids)]
    items = (c.FetchAttr("UID"), c.FetchAttr("FLAGS"), c.FetchAttr("ENVELOPE"))
    rows = {r.uid: r for r in core.fetch_rows("Inbox", changed)}
    want = b"".join(_general(core, rows[u], q, items, False, True, True, False)
                    for q, u in pairs if u in rows)
    plan = fastfetch.plan(items, uid_first=True, condstore=True, uidfetch=False, utf8=False,
                          account=str(core.root))
    assert plan is not None
    out, done, batches, found = [], 0, 0, 0
    while done < len(pairs):
        batch = fastfetch.build_batch(plan, core, "Inbox", pairs[done:], since, _no_general,
                                      limit=3)
        out.append(_octets(batch.pieces))
        done += batch.consumed
        found += batch.found
        batches += 1
    assert b"".join(out) == want and found == len(changed) == 7
    assert batches == 3


def test_changedsince_over_a_uid_range_names_only_the_set(core: AccountStore) -> None:
    """build_changed (RFC 7162 §3.1.4): the changed messages of a UID range that the
    set names (``seq_of``), numbered as the set numbers them, ``limit`` changed rows a
    batch; the same octets as the general path for each, none for the others."""
    uids = [core.deliver("Inbox", CORPUS["plain"])[0].uid for _ in range(30)]
    since = max(r.modseq for r in core.fetch_rows("Inbox", uids))
    core.store_flags("Inbox", uids[1::3], "add", Flags.parse(["\\Answered"]))
    # The set: every message but the multiples of 5 (by position), numbered 1..30.
    named = {u: i + 1 for i, u in enumerate(uids) if i % 5}
    items = (c.FetchAttr("UID"), c.FetchAttr("FLAGS"), c.FetchAttr("ENVELOPE"))
    rows = {r.uid: r for r in core.fetch_rows("Inbox", uids[1::3])}
    want = b"".join(_general(core, rows[u], named[u], items, False, True, True, False)
                    for u in uids if u in rows and u in named)
    plan = fastfetch.plan(items, uid_first=True, condstore=True, uidfetch=False, utf8=False,
                          account=str(core.root))
    assert plan is not None
    out, low, batches = [], uids[0], 0
    while low is not None:
        batch = fastfetch.build_changed(plan, core, "Inbox", low, uids[-1], since,
                                        named.get, _no_general, limit=4)
        out.append(_octets(batch.pieces))
        low = batch.next_uid
        batches += 1
    assert b"".join(out) == want and want.count(b" FETCH (") == 8
    assert batches == 3  # 10 changed rows, 4 a batch


def test_a_huge_header_takes_the_general_path(core: AccountStore) -> None:
    """Facts are not kept for a header section over MAX_HEADER: such a message is
    written by the general path, between fast ones."""
    huge = b"".join(b"X-Filler-%06d: %s\r\n" % (i, b"f" * 60)
                    for i in range(fetchcache.MAX_HEADER // 70 + 10)) + CORPUS["plain"]
    uids = [core.deliver("Inbox", d, prefix=PREFIX)[0].uid
            for d in (CORPUS["plain"], huge, CORPUS["groups"])]
    pairs = [(i + 1, u) for i, u in enumerate(uids)]
    items = (c.FetchAttr("UID"), c.FetchAttr("ENVELOPE"),
             c.BodySection(Section((), SectionText.HEADER_FIELDS, ("FROM", "X-FILLER-000003")),
                           None, True))
    rows = {r.uid: r for r in core.fetch_rows("Inbox", uids)}
    want = b"".join(_general(core, rows[u], q, items, False, False, True, False)
                    for q, u in pairs)
    plan = fastfetch.plan(items, uid_first=True, condstore=False, uidfetch=False, utf8=False,
                          account=str(core.root))
    assert plan is not None and plan.narrow
    used: list[int] = []

    def general(row: FetchRow, seq: int) -> list[Piece]:
        used.append(row.uid)
        assert row.prefix == PREFIX  # the whole row, not the narrow one
        return messages._general_one(core, False, False, items, True, False, row, seq)

    batch = fastfetch.build_batch(plan, core, "Inbox", pairs, 0, general)
    assert _octets(batch.pieces) == want
    assert used == [uids[1]] and batch.found == 3


def test_facts_persist_across_a_restart(core: AccountStore, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """After a restart, ENVELOPE, BODYSTRUCTURE and HEADER.FIELDS need no file and no parse."""
    uids = [core.deliver("Inbox", d)[0].uid for d in CORPUS.values()]
    pairs = [(i + 1, u) for i, u in enumerate(uids)]
    items = (c.FetchAttr("ENVELOPE"), c.FetchAttr("BODYSTRUCTURE"),
             c.BodySection(Section((), SectionText.HEADER_FIELDS, ("FROM", "SUBJECT")), None,
                           True))
    want = _fast(core, pairs, items, False, False, True, False)
    ids = [r.id for r in core.fetch_rows("Inbox", uids)]
    assert sorted(core.cached(ids)) == sorted(ids)
    core.close()
    _forget()
    again = AccountStore("alice", tmp_path / "alice")
    try:
        def refused(*args: object) -> None:
            raise AssertionError("a file was read or a message parsed")
        monkeypatch.setattr(fastfetch, "_read", refused)
        monkeypatch.setattr(fastfetch, "parse", refused)
        monkeypatch.setattr(fetchcache, "part_tree", refused)
        assert _fast(again, pairs, items, False, False, True, False) == want
    finally:
        again.close()
    core.db = sqlite3.connect(":memory:")  # the fixture closes it again


def test_cache_rows_follow_their_messages(core: AccountStore) -> None:
    """COPY copies a message's blob, EXPUNGE and DELETE of a mailbox drop it."""
    core.create_mailbox("Archive")
    uid = core.deliver("Inbox", CORPUS["plain"])[0].uid
    _fast(core, [(1, uid)], (c.FetchAttr("ENVELOPE"),), False, False, False, False)
    [row] = core.fetch_rows("Inbox", [uid])
    core.copy("Inbox", [uid], "Archive")
    [copied] = core.fetch_rows("Archive", [1])
    assert core.cached([copied.id])[copied.id] == core.cached([row.id])[row.id]
    core.store_flags("Inbox", [uid], "add", Flags.parse(["\\Deleted"]))
    core.expunge("Inbox")
    assert core.cached([row.id]) == {}
    core.delete_mailbox("Archive")
    assert core.cached([copied.id]) == {}
    assert core.db.execute("SELECT COUNT(*) FROM message_cache").fetchone()[0] == 0


def test_a_version_4_database_is_migrated(tmp_path: Path) -> None:
    root = tmp_path / "bob"
    old = AccountStore("bob", root)
    old.create_mailbox("Inbox")
    uid = old.deliver("Inbox", CORPUS["plain"])[0].uid
    # What version 4 had: everything but the message cache.
    old.db.execute("DROP TABLE message_cache")
    old.db.execute("PRAGMA user_version = 4")
    old.close()
    core = AccountStore("bob", root)
    try:
        from kittiwake.store.schema import SCHEMA_VERSION  # (6 since tombstones by modseq)

        assert core.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        items = (c.FetchAttr("UID"), c.FetchAttr("ENVELOPE"))
        row = core.fetch_rows("Inbox", [uid])[0]
        want = _general(core, row, 1, items, False, False, False, False)
        assert _fast(core, [(1, uid)], items, False, False, False, False) == want
        assert row.id in core.cached([row.id])
    finally:
        core.close()


def test_items_the_fast_path_leaves_to_the_general_one() -> None:
    for item in (c.BodySection(Section((1,), None)), c.BodySection(Section((), SectionText.MIME)),
                 c.BinarySection(()), c.BinarySize(()), c.Preview()):
        assert fastfetch.plan((c.FetchAttr("UID"), item), uid_first=False, condstore=False,
                              uidfetch=False, utf8=False) is None


def test_plans_read_the_narrowest_rows() -> None:
    """A plan names the narrowest row with the columns its writers read."""
    def row_of(*items: c.FetchItem) -> type:
        plan = fastfetch.plan(items, uid_first=True, condstore=False, uidfetch=False,
                              utf8=False)
        assert plan is not None
        return plan.row

    body = c.BodySection(Section(), None, True)
    fields = c.BodySection(Section((), SectionText.HEADER_FIELDS, ("FROM",)), None, True)
    assert row_of(c.FetchAttr("ENVELOPE"), fields) is IdRow
    assert row_of(c.FetchAttr("FLAGS"), c.FetchAttr("ENVELOPE"),
                  c.FetchAttr("BODYSTRUCTURE")) is FlagRow
    assert row_of(body) is FileRow
    assert row_of(c.BodySection(Section((), SectionText.TEXT), Partial(0, 10), True)) is FileRow
    assert row_of(body, c.FetchAttr("FLAGS")) is FetchRow
    assert row_of(c.FetchAttr("INTERNALDATE")) is FetchRow
    assert row_of(c.FetchAttr("RFC822.SIZE"), fields) is FetchRow


def test_large_bodies_are_pieces_of_their_own(core: AccountStore) -> None:
    """BODY[] of messages of at least BIG octets: each body is a piece of the batch
    (not copied into a join), the octets the same as the general path's."""
    big = CORPUS["plain"] + b"line of body text\r\n" * (fastfetch.BIG // 10)
    datas = [big, CORPUS["groups"], big + b"\x00 nul\r\n"]
    uids = [core.deliver("Inbox", d, prefix=PREFIX if i == 1 else b"")[0].uid
            for i, d in enumerate(datas)]
    pairs = [(i + 1, u) for i, u in enumerate(uids)]
    items = (c.BodySection(Section(), None, True),)
    rows = {r.uid: r for r in core.fetch_rows("Inbox", uids)}
    want = b"".join(_general(core, rows[u], q, items, False, False, False, False)
                    for q, u in pairs)
    plan = fastfetch.plan(items, uid_first=False, condstore=False, uidfetch=False,
                          utf8=False, account=str(core.root))
    assert plan is not None
    batch = fastfetch.build_batch(plan, core, "Inbox", pairs, 0, _no_general)
    assert _octets(batch.pieces) == want
    assert big in batch.pieces and literal_safe(big + b"\x00 nul\r\n") in batch.pieces
