"""SEARCH gives exactly the hits of a brute-force scan of the decoded messages.

Random mailboxes (encoded subjects and names, quoted-printable, base64, HTML,
attachments, several charsets) go through the real store; the server's
evaluator (which reads only header sections for header keys and uses the
stored part trees) must agree with decoding every message from scratch.
"""

from __future__ import annotations

import base64
import itertools
import quopri
from email.header import Header
from functools import partial
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kittiwake.imap import commands as c
from kittiwake.imapserver import search as srch
from kittiwake.message import parse
from kittiwake.message.searchtext import MessageText, fold
from kittiwake.store.account import AccountStore

WORDS = ["Kittiwake", "möwe", "STRASSE", "straße", "fulmar", "Ærø", "puffin", "größe",
         "guillemot", "ÉCOLE", "cliff"]
word = st.sampled_from(WORDS)
phrase = st.lists(word, min_size=1, max_size=3).map(" ".join)


@st.composite
def message(draw: st.DrawFn) -> bytes:
    charset = draw(st.sampled_from(["utf-8", "iso-8859-1"]))
    subject = draw(phrase)
    name = draw(phrase)
    try:
        subject.encode(charset)
        name.encode(charset)
    except UnicodeEncodeError:
        charset = "utf-8"
    subj = Header(subject, charset).encode() if draw(st.booleans()) else subject
    if draw(st.booleans()):  # folded (RFC 5322 §2.2.3) at its first space
        subj = subj.replace(" ", "\r\n ", 1)
    frm = f"{Header(name, charset).encode()} <a@example.org>"
    body = draw(phrase)
    kind = draw(st.sampled_from(["plain", "qp", "b64", "html", "mixed"]))
    head = f"From: {frm}\r\nSubject: {subj}\r\nMIME-Version: 1.0\r\n"
    if draw(st.booleans()):
        # An encoded word holding a line break and what looks like another field:
        # the header text of the index has a line "subject: <word>" that is no Subject.
        fake = draw(word).encode("utf-8").hex("=").upper()
        head += f"X-Note: =?utf-8?q?x=0Asubject:_={fake}?=\r\n"
    raw = body.encode(charset)
    if kind == "plain":
        head += f"Content-Type: text/plain; charset={charset}\r\n"
        if not raw.isascii():
            head += "Content-Transfer-Encoding: 8bit\r\n"
        return head.encode("utf-8") + b"\r\n" + raw + b"\r\n"
    if kind == "qp":
        return (head + f"Content-Type: text/plain; charset={charset}\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode() + \
            quopri.encodestring(raw) + b"\r\n"
    if kind == "b64":
        return (head + f"Content-Type: text/plain; charset={charset}\r\n"
                "Content-Transfer-Encoding: base64\r\n\r\n").encode() + \
            base64.encodebytes(raw).replace(b"\n", b"\r\n")
    html = f"<html><body><p>{body}</p><!-- {draw(word)} --></body></html>".encode(charset)
    if kind == "html":
        return (head + f"Content-Type: text/html; charset={charset}\r\n"
                "Content-Transfer-Encoding: base64\r\n\r\n").encode() + \
            base64.encodebytes(html).replace(b"\n", b"\r\n")
    attach = base64.encodebytes(draw(word).encode()).replace(b"\n", b"\r\n")
    return (head + "Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n"
            f"Content-Type: text/plain; charset={charset}\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode() + \
        quopri.encodestring(raw) + b"\r\n--zz\r\nContent-Type: application/octet-stream\r\n" \
        b"Content-Transfer-Encoding: base64\r\n\r\n" + attach + b"--zz--\r\n"


needle = st.one_of(word, word.map(str.upper), word.map(lambda w: w[1:4]), word.map(lambda w: w[:2]),
                   st.just("ss"), st.just("STRASSE"))
key = st.one_of(
    needle.map(lambda n: c.SearchHeader("SUBJECT", n)),
    needle.map(lambda n: c.SearchHeader("FROM", n)),
    needle.map(lambda n: c.SearchHeader("X-NOTE", n)),
    needle.map(lambda n: c.SearchText(n, body_only=True)),
    needle.map(lambda n: c.SearchText(n)),
)
query = st.one_of(key, key, st.tuples(key, key).map(lambda k: c.SearchOr(*k)),
                  key.map(c.SearchNot), st.tuples(key, key).map(lambda k: c.SearchAnd(k)))


_counter = itertools.count()


def brute(k: c.SearchKey, text: MessageText) -> bool:
    if isinstance(k, c.SearchHeader):
        return text.header_contains(k.field, k.value)
    if isinstance(k, c.SearchText):
        return text.body_contains(k.value) if k.body_only else text.text_contains(k.value)
    if isinstance(k, c.SearchOr):
        return brute(k.left, text) or brute(k.right, text)
    if isinstance(k, c.SearchNot):
        return not brute(k.key, text)
    assert isinstance(k, c.SearchAnd)
    return all(brute(x, text) for x in k.keys)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(message(), min_size=1, max_size=8), queries=st.lists(query, max_size=6),
       indexed=st.integers(0, 8))
def test_search_equals_brute_force(tmp_path: Path, messages: list[bytes],
                                   queries: list[c.SearchKey], indexed: int) -> None:
    root = tmp_path / f"acc{next(_counter)}"
    store = AccountStore("alice", root)
    store.ensure_mailboxes([])
    try:
        for data in messages:
            store.deliver("Inbox", data)
        # Some messages reach the substring index, the rest are decoded at search.
        store.index_pending(limit=indexed)
        rows = store.messages("Inbox")
        for q in queries:
            # Through the substring index, as the server does (and without it).
            specs = {(fold(k.value), "body" if k.body_only else None) for k in c.search_keys(q)
                     if isinstance(k, c.SearchText)}
            specs |= {(fold(k.value), "headers") for k in c.search_keys(q)
                      if isinstance(k, c.SearchHeader) and k.value}
            answers = {spec: store.text_search("Inbox", *spec) for spec in specs}
            index = srch.TextIndex(answers)
            assert all(len(got[0]) == min(indexed, len(rows)) for got in answers.values())
            cands = [srch.Candidate(m, i, store.path(m.id), partial(store.summary_json, m.id),
                                    account=str(root), text_index=index)
                     for i, m in enumerate(rows, 1)]
            got = [m.seq for m in cands if srch.matches(q, m)]
            want = [i for i, data in enumerate(messages, 1)
                    if brute(q, MessageText(parse(data), data))]
            assert got == want, (q, messages)
            # A lone text key: the server's direct path (store.text_matches, then the
            # header field checked, unindexed messages decoded).
            lone = srch.index_query(q)
            if lone is not None:
                hits, unindexed = store.text_matches("Inbox", *lone)
                assert len(unindexed) == len(rows) - min(indexed, len(rows))
                uids = srch.indexed_hits(q, hits, unindexed, lambda m: srch.Candidate(
                    m, 0, store.path(m.id), partial(store.summary_json, m.id),
                    account=str(root)))
                assert uids == [rows[i - 1].uid for i in want], (q, messages)
    finally:
        store.close()
