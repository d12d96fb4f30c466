"""SEARCH semantics compared with Dovecot on the corpus of odd messages.

The same messages, in the same order, go into a private Dovecot (Debian
dovecot-imapd, no FTS plugin) and into kittiwake's store; each query is
parsed by kittiwake's IMAP parser and evaluated by the server's evaluator,
and the message numbers must equal Dovecot's. Where we differ on purpose,
the case is listed in ``DIFFERENT`` with the reason, and both answers are
pinned, so a change on either side shows.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
from fetch_corpus import CORPUS
from tests.integration.dovecot import Dovecot

from kittiwake.imap import commands as c
from kittiwake.imap.parser import parse_command
from kittiwake.imapserver import search as srch
from kittiwake.store.account import AccountStore

pytestmark = pytest.mark.integration

NAMES = sorted(CORPUS)
MESSAGES = [CORPUS[n] for n in NAMES]

QUERIES = [
    "ALL", "SUBJECT level", "SUBJECT LEVEL", "SUBJECT deep", "FROM x.test", "FROM deep",
    "TO x.test", "CC x.test", "HEADER Content-Type multipart", "HEADER Message-ID \"\"",
    "HEADER X-Nonexistent \"\"", "BODY innermost", "BODY INNERMOST", "TEXT innermost",
    "TEXT level", "BODY \"the end\"", "LARGER 1000", "SMALLER 300", "NOT SMALLER 300",
    "OR SUBJECT deep FROM deep", "NOT FROM x.test", "SENTSINCE 1-Jan-2000",
    "SENTBEFORE 1-Jan-2030", "UNSEEN", "SEEN", "1:5", "NOT 1:5 SUBJECT e",
    "CHARSET UTF-8 SUBJECT café", "CHARSET UTF-8 FROM Jörg", "SUBJECT crème",
    "CHARSET UTF-8 TEXT straße", "BODY data",
]

NO_DATE = "a message without a Date header matches no SENT* key (RFC 9051 §6.4.4 compares" \
    " the Date header and there is none); Dovecot takes 1 Jan 1970 for it"
LEGACY_8BIT = "raw 8-bit (non-UTF-8) header text is read as the legacy charset it is" \
    " (here latin-1), as a reader sees it; Dovecot matches it against nothing"
# query -> (why we differ, messages only we find, messages only Dovecot finds)
DIFFERENT: dict[str, tuple[str, set[str], set[str]]] = {
    "SENTBEFORE 1-Jan-2030": (NO_DATE, set(), set(NAMES) - {"folded-headers", "plain"}),
    "CHARSET UTF-8 SUBJECT café": (LEGACY_8BIT, {"latin1-headers"}, set()),
    "SUBJECT crème": (LEGACY_8BIT, {"latin1-headers"}, set()),
    "CHARSET UTF-8 FROM Jörg": (LEGACY_8BIT, {"latin1-headers"}, set()),
}


def ours(tmp: Path) -> list[srch.Candidate]:
    store = AccountStore("cmp", tmp / "acc")
    store.ensure_mailboxes([])
    for data in MESSAGES:
        store.deliver("Inbox", data)
    rows = store.messages("Inbox")
    return [srch.Candidate(m, i, store.path(m.id), partial(store.summary_json, m.id),
                           max_seq=len(rows), max_uid=rows[-1].uid, account=str(tmp))
            for i, m in enumerate(rows, 1)]


def wire(query: str) -> bytes:
    """The query as a client sends it: a non-ASCII word as a literal (LITERAL+)."""
    out = []
    for word in query.split(" "):
        raw = word.encode()
        out.append(raw if raw.isascii() else b"{%d+}\r\n" % len(raw) + raw)
    return b" ".join(out)


def our_search(cands: list[srch.Candidate], query: str) -> list[int]:
    data = b"a SEARCH " + wire(query)
    _tag, cmd = parse_command(data, utf8=True)
    assert isinstance(cmd, c.Search)
    return [m.seq for m in cands if srch.matches(cmd.criteria, m)]


def dovecot_search(client, query: str) -> list[int]:  # type: ignore[no-untyped-def]
    untagged, status = client.command(b"SEARCH " + wire(query))
    assert b" OK " in status, (query, status)
    line = next(r for r in untagged if r.startswith(b"* SEARCH"))
    return [int(x) for x in line.split()[2:]]


def test_search_answers_equal_dovecots(tmp_path: Path) -> None:
    cands = ours(tmp_path)
    differences = {}
    with Dovecot(messages=MESSAGES) as dc, dc.client() as client:
        client.login()
        client.select_inbox(MESSAGES)
        for query in QUERIES:
            mine, theirs = our_search(cands, query), dovecot_search(client, query)
            if mine != theirs:
                differences[query] = ({NAMES[i - 1] for i in set(mine) - set(theirs)},
                                      {NAMES[i - 1] for i in set(theirs) - set(mine)})
    assert differences == {q: (o, t) for q, (_why, o, t) in DIFFERENT.items()}
