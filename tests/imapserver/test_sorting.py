"""SORT and THREAD (RFC 5256, RFC 5957)."""

from __future__ import annotations

import datetime as dt
import unicodedata

import pytest

from kittiwake.imapserver.sorting import (
    SortInfo,
    SortKey,
    base_subject,
    sort,
    thread_orderedsubject,
    thread_references,
)


@pytest.mark.parametrize(("subject", "base", "reply"), [
    ("Hello", "hello", False),
    ("Re: Hello", "hello", True),
    ("RE:  re: Fwd:Hello", "hello", True),
    ("Re: [kittiwake-dev] Fw: Hello (fwd)", "hello", True),
    ("[kittiwake-dev] Hello", "hello", False),
    ("[PATCH]", "[patch]", False),  # §2.1 (4): a blob stays when nothing would be left
    ("[Fwd: Re: Hello]", "hello", True),
    ("Re[2]: Hello\t  world", "hello world", True),
    ("Re:", "", True),
    ("  Résumé ", unicodedata.normalize("NFKD", "résumé"), False),  # compared decomposed
])
def test_base_subject(subject: str, base: str, reply: bool) -> None:
    assert base_subject(subject) == (base, reply)


def day(n: int) -> dt.datetime:
    return dt.datetime(2026, 1, n, tzinfo=dt.UTC)


def test_sort_keys_reverse_and_ties_by_number() -> None:
    infos = [SortInfo(1, "b", day(3), size=30, from_=("Zed", "zed")),
             SortInfo(2, "Re: a", day(1), size=10, from_=("", "alice"), from_addr="alice@x"),
             SortInfo(3, "a", day(2), size=10, from_=("Bob", "bob"))]
    assert sort(infos, [SortKey("SUBJECT")]) == [2, 3, 1]
    assert sort(infos, [SortKey("SIZE"), SortKey("DATE", reverse=True)]) == [3, 2, 1]
    assert sort(infos, [SortKey("FROM")]) == [2, 3, 1]
    assert sort(infos, [SortKey("DISPLAYFROM")]) == [2, 3, 1]
    assert sort(infos, [SortKey("SIZE")]) == [2, 3, 1]


def test_missing_date_uses_internaldate() -> None:
    infos = [SortInfo(1, date=day(5)), SortInfo(2, date=None, internal=day(4))]
    assert sort(infos, [SortKey("DATE")]) == [2, 1]


def test_orderedsubject_groups_by_base_subject() -> None:
    infos = [SortInfo(1, "hello", day(1)), SortInfo(2, "other", day(2)),
             SortInfo(3, "Re: hello", day(3)), SortInfo(4, "RE: Hello", day(4))]
    assert thread_orderedsubject(infos) == [[1, [3], [4]], [2]]


def test_references_builds_tree_and_chains() -> None:
    infos = [
        SortInfo(1, "topic", day(1), message_id="a"),
        SortInfo(2, "Re: topic", day(2), message_id="b", references=("a",)),
        SortInfo(3, "Re: topic", day(3), message_id="c", references=("a", "b")),
        SortInfo(4, "Re: topic", day(4), message_id="d", references=("a",)),
        SortInfo(5, "unrelated", day(5), message_id="e"),
    ]
    assert thread_references(infos) == [[1, [2, 3], [4]], [5]]


def test_references_missing_parent_and_subject_merge() -> None:
    infos = [
        # Two replies to a message we do not have: a dummy parent with two children.
        SortInfo(1, "Re: lost", day(1), message_id="x", references=("gone",)),
        SortInfo(2, "Re: lost", day(2), message_id="y", references=("gone",)),
        # A reply without References joins the thread of its subject.
        SortInfo(3, "report", day(3), message_id="r"),
        SortInfo(4, "Re: report", day(4), message_id="s"),
    ]
    assert thread_references(infos) == [[[1], [2]], [3, 4]]


def test_references_survive_loops_and_duplicate_ids() -> None:
    infos = [
        SortInfo(1, "a", day(1), message_id="m1", references=("m2",)),
        SortInfo(2, "b", day(2), message_id="m2", references=("m1",)),
        SortInfo(3, "c", day(3), message_id="m1"),  # duplicate Message-ID
    ]
    threads = thread_references(infos)
    flat: list[int] = []

    def walk(t: list) -> None:  # type: ignore[type-arg]
        for x in t:
            walk(x) if isinstance(x, list) else flat.append(x)

    walk(threads)
    assert sorted(flat) == [1, 2, 3]
