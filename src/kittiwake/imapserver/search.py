"""Evaluating SEARCH keys (RFC 9051 §6.4.4) over the messages of a mailbox.

:func:`matches` decides one message against a key tree from the parser.
Cheap keys (flags, sizes, dates, numbers, modseq) use the message row; text
keys open the message (its stored part tree and bytes) once, lazily, through
:class:`Candidate`. Text semantics are those of ``searchtext``. Runs in a
worker thread (it reads files); pure otherwise.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from kittiwake.imap import commands as c
from kittiwake.imapserver.cache import HEADS, LRU, MessageKey, read_head
from kittiwake.message.part import Part
from kittiwake.message.searchtext import MessageText, fold
from kittiwake.store.messagefile import MessageFile
from kittiwake.store.model import Flags, Message
from kittiwake.store.schema import SYSTEM_FLAGS

__all__ = ["Candidate", "TextIndex", "index_query", "indexed_hits", "matches", "needs_body",
           "needs_text"]

_RFC_TIME = dt.UTC

# Octets read from a message's start when looking for its header section.
HEAD_GUESS = 16 * 1024

# Decoded, folded values of top-level header fields of recently searched messages:
# field name (lower case) -> its values, each field filled when a key first asks.
HEADERS: LRU[MessageKey, dict[str, list[str]]] = LRU(50_000)


@dataclass
class TextIndex:
    """Answers of the store's substring index for the text keys of one search.

    ``answers`` maps (folded needle, column: "body", "headers" or None for both)
    to (indexed ids, matching ids). For a message not in the index the lookups
    say None (decode it).
    """

    answers: dict[tuple[str, str | None], tuple[set[int], set[int]]]

    def lookup(self, key: c.SearchText, message_id: int) -> bool | None:
        """BODY/TEXT: the answer itself (the index holds exactly that text)."""
        got = self.answers.get((fold(key.value), "body" if key.body_only else None))
        if got is None or message_id not in got[0]:
            return None
        return message_id in got[1]

    def rules_out(self, key: c.SearchHeader, message_id: int) -> bool:
        """HEADER/SUBJECT/FROM/...: True when no header of the message holds the string
        (then the key is false); False means the field must be checked."""
        if not key.value:
            return False
        got = self.answers.get((fold(key.value), "headers"))
        return got is not None and message_id in got[0] and message_id not in got[1]


@dataclass
class Candidate:
    """One message being searched: its row, numbers, and (lazily) its text."""

    message: Message
    seq: int
    # The message's octets: a MessageFile (prefix and file), a function giving it
    # (looked up when the text is read), or a bare path (no prefix).
    path: Path | MessageFile | Callable[[], MessageFile]
    summary: Callable[[], str]
    saved_uids: frozenset[int] = frozenset()
    now: float = 0.0  # seconds since the epoch, for OLDER/YOUNGER
    max_seq: int = 0
    max_uid: int = 0
    account: str = ""
    text_index: TextIndex | None = None

    @property
    def key(self) -> MessageKey:
        m = self.message
        return (self.account, m.id, m.saved, m.size)

    def folded_values(self, field: str) -> list[str]:
        """Decoded, folded values of the top-level fields called ``field``; cached.

        Only the field asked for is decoded (a SUBJECT search need not decode
        every Received line of every candidate).
        """
        name = field.lower()
        key = self.key
        fields = HEADERS.get(key)
        if fields is None:
            fields = {}
            HEADERS.put(key, fields)
        got = fields.get(name)
        if got is None:
            got = fields[name] = [fold(h.decoded)
                                  for h in self.header_text.root.headers.fields(name)]
        return got

    @cached_property
    def header_text(self) -> MessageText:
        """Only the top-level header section (header keys), from the file's first octets.

        Most headers end within :data:`HEAD_GUESS` octets; then no part tree is
        needed. Longer ones, and mbox-style files, use the stored tree's offsets.
        The file is not opened (nor its row read) when the head cache has them.
        """
        if "text" in self.__dict__:
            return self.text
        from kittiwake.message.headers import parse_header_section

        m = self.message
        key = self.key
        try:
            head = self._head(key, min(HEAD_GUESS, m.size))
            if not head.startswith(b"From "):
                headers, body = parse_header_section(head)
                if body < len(head) or len(head) == m.size:
                    root = Part(0, body, len(head), headers=headers)
                    return MessageText(root, head)
            root = Part.from_dict(json.loads(self.summary())["part"])
            head = self._head(key, root.body_start)
            root.headers = parse_header_section(head, root.header_start, root.body_start)[0]
            return MessageText(root, head)
        except (OSError, ValueError, KeyError, TypeError):
            return self.text

    def _head(self, key: MessageKey, length: int) -> bytes:
        cached = HEADS.get(key)
        if cached is not None and len(cached) >= length:
            return cached[:length]
        return read_head(key, self.source, length)

    @cached_property
    def source(self) -> MessageFile:
        if isinstance(self.path, MessageFile):
            return self.path
        if isinstance(self.path, Path):
            return MessageFile(self.path)
        return self.path()

    @cached_property
    def text(self) -> MessageText:
        data = self.source.read()
        try:
            d = json.loads(self.summary())
            root = Part.from_dict(d["part"], data)
        except (ValueError, KeyError, TypeError):
            from kittiwake.message import parse

            root = parse(data)
        return MessageText(root, data)

    @cached_property
    def sent(self) -> dt.date | None:
        """The Date header's date (RFC 9051 §6.4.4 SENT*: timezone disregarded)."""
        from kittiwake.message.envelope import parse_date

        values = self.header_text.header_values("Date")
        parsed = parse_date(values[0]) if values else None
        return parsed.date() if parsed else None


def index_query(key: c.SearchKey) -> tuple[str, str | None] | None:
    """What the substring index is asked for a lone text key: (its folded string,
    the column: "body" for BODY, None for TEXT, "headers" for a header key with a
    string); None for any other key."""
    if isinstance(key, c.SearchText):
        return fold(key.value), "body" if key.body_only else None
    if isinstance(key, c.SearchHeader) and key.value:
        return fold(key.value), "headers"
    return None


def indexed_hits(key: c.SearchKey, hits: list[Message], unindexed: list[Message],
                 candidate: Callable[[Message], Candidate]) -> list[int]:
    """UIDs of the messages matching a lone text key (:func:`index_query`), ascending,
    from the store's ``text_matches`` answer: ``hits``, whose indexed text holds the
    folded string, and ``unindexed``, the messages not in the index.

    BODY/TEXT: the index holds exactly the text they match, so the hits are the
    answer. A header key (RFC 9051 §6.4.4 SUBJECT, FROM, TO, CC, BCC, HEADER): a
    hit has the string somewhere in its header section; the field itself is
    checked (its decoded values). Unindexed messages are decoded.
    """
    header = isinstance(key, c.SearchHeader)
    found = [m.uid for m in hits if not header or matches(key, candidate(m))]
    found += [m.uid for m in unindexed if matches(key, candidate(m))]
    return sorted(found)


def needs_text(key: c.SearchKey) -> bool:
    """Whether evaluating ``key`` opens messages (header, body or sent-date keys)."""
    return any(isinstance(k, c.SearchHeader | c.SearchText)
               or (isinstance(k, c.SearchDate) and k.field == c.DateField.SENT)
               for k in c.search_keys(key))


def needs_body(key: c.SearchKey) -> bool:
    """Whether ``key`` reads message bodies (BODY/TEXT), which want the part tree."""
    return any(isinstance(k, c.SearchText) for k in c.search_keys(key))


def _has_flag(flags: Flags, name: str) -> bool:
    bit = SYSTEM_FLAGS.get(name.lower())
    if bit:
        return bool(flags.system & bit)
    if name.lower() == "\\recent":
        return False  # no \Recent is kept (RFC 9051 Appendix E drops it)
    return any(k.lower() == name.lower() for k in flags.keywords)


def _date_of_ms(ms: int) -> dt.date:
    # RFC 9051 §6.4.4: INTERNALDATE comparisons disregard time and timezone;
    # we compare in UTC, as the date is stored.
    return dt.datetime.fromtimestamp(ms / 1000, tz=_RFC_TIME).date()


def _compare(op: c.DateOp, value: dt.date | None, date: dt.date) -> bool:
    if value is None:
        return False
    if op == c.DateOp.BEFORE:
        return value < date
    if op == c.DateOp.ON:
        return value == date
    return value >= date


def matches(key: c.SearchKey, m: Candidate) -> bool:
    """Whether the message matches ``key`` (RFC 9051 §6.4.4)."""
    msg = m.message
    if isinstance(key, c.SearchAll):
        return True
    if isinstance(key, c.SearchAnd):
        return all(matches(k, m) for k in key.keys)
    if isinstance(key, c.SearchOr):
        return matches(key.left, m) or matches(key.right, m)
    if isinstance(key, c.SearchNot):
        return not matches(key.key, m)
    if isinstance(key, c.SearchFlag):
        return _has_flag(msg.flags, key.flag) == key.present
    if isinstance(key, c.SearchKeyword):
        return _has_flag(msg.flags, key.keyword) == key.present
    if isinstance(key, c.SearchSize):
        return msg.size > key.size if key.larger else msg.size < key.size
    if isinstance(key, c.SearchSequence):
        if key.set.saved:
            return msg.uid in m.saved_uids
        if key.uid:
            return key.set.contains(msg.uid, m.max_uid)
        return key.set.contains(m.seq, m.max_seq)
    if isinstance(key, c.SearchModSeq):
        return msg.modseq >= key.modseq  # RFC 7162 §3.1.5
    if isinstance(key, c.SearchAge):
        # RFC 5032 §3: OLDER n: INTERNALDATE at least n seconds ago.
        age = m.now - msg.received / 1000
        return age >= key.seconds if key.older else age <= key.seconds
    if isinstance(key, c.SearchDate):
        if key.field == c.DateField.INTERNAL:
            return _compare(key.op, _date_of_ms(msg.received), key.date)
        if key.field == c.DateField.SAVED:
            return _compare(key.op, _date_of_ms(msg.saved) if msg.saved else None, key.date)
        return _compare(key.op, m.sent, key.date)
    if isinstance(key, c.SearchObjectId):
        want = key.id
        have = email_id(msg) if key.kind == "EMAILID" else thread_id(msg)
        return want == have
    if isinstance(key, c.SearchSaveDateSupported):
        return True  # RFC 8514 §4.3: every mailbox here keeps SAVEDATE
    if isinstance(key, c.SearchHeader):
        if m.text_index is not None and m.text_index.rules_out(key, msg.id):
            return False
        # The same test as MessageText.header_contains, on cached folded values.
        values = m.folded_values(key.field)
        if not key.value:
            return bool(values)
        needle = fold(key.value)
        return any(needle in v for v in values)
    if isinstance(key, c.SearchText):
        if m.text_index is not None:
            hit = m.text_index.lookup(key, msg.id)
            if hit is not None:
                return hit
        return m.text.body_contains(key.value) if key.body_only else \
            m.text.text_contains(key.value)
    raise ValueError(f"unknown search key {type(key).__name__}")


def email_id(msg: Message) -> str:
    """EMAILID (RFC 8474 §5.1): stable for the message's life, here its row id."""
    return f"M{msg.id}"


def thread_id(msg: Message) -> str:
    """THREADID (RFC 8474 §5.2)."""
    return f"T{msg.thread_id}"
