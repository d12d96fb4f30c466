"""The text SEARCH matches against (RFC 9051 §6.4.4), decoded once per message.

RFC 9051 §6.4.4: a string key matches when it is a substring of the field
or text, case-insensitively. We match on what a reader sees, not on wire
bytes: header values with RFC 2047 encoded words decoded (RFC 6532 UTF-8 as
is), bodies with their transfer encoding undone and their charset decoded,
HTML reduced to text, and encapsulated messages (message/rfc822) searched
as part of the body that contains them. Comparison is Unicode case folding
on both sides (the i;unicode-casemap comparator of RFC 5051, approximated
by NFKC + casefold, which is what users expect of "ß" and "SS" too).

:func:`contains` is the reference semantics: the full-text index may
narrow the candidates, but the result must be exactly what this gives.
"""

from __future__ import annotations

import json
import os
import unicodedata
from functools import cached_property
from typing import NamedTuple

from kittiwake.message.body import text_of
from kittiwake.message.filebytes import FileBytes
from kittiwake.message.headers import Headers
from kittiwake.message.html import html_to_text
from kittiwake.message.part import Part, parse

__all__ = ["IndexJob", "IndexText", "MessageText", "contains", "fold", "index_texts"]

# Text subtypes whose decoded body is searched as text.
_TEXT_LIKE = frozenset({"plain", "enriched", "markdown", "calendar", "csv", "x-vcard", "vcard",
                        "rfc822-headers", "richtext", "x-diff", "x-patch"})


def fold(text: str) -> str:
    """The form both sides of a comparison are brought to."""
    return unicodedata.normalize("NFKC", text).casefold()


def contains(haystack_folded: str, needle: str) -> bool:
    """RFC 9051 §6.4.4 substring match; ``haystack_folded`` went through :func:`fold`."""
    return fold(needle) in haystack_folded


def _header_lines(headers: Headers) -> list[str]:
    return [f"{h.name}: {h.decoded}" for h in headers]


class MessageText:
    """Decoded header fields and body text of one message, computed on first use."""

    def __init__(self, root: Part, data: bytes | FileBytes) -> None:
        self.root = root
        self.data = data

    def header_values(self, name: str) -> list[str]:
        """Decoded, unfolded values of the top-level fields called ``name``."""
        return [h.decoded for h in self.root.headers.fields(name)]

    def has_header(self, name: str) -> bool:
        return bool(self.root.headers.fields(name))

    def header_contains(self, name: str, needle: str) -> bool:
        """HEADER/FROM/TO/CC/BCC/SUBJECT keys; an empty needle matches any such field."""
        values = self.header_values(name)
        if not needle:
            return bool(values)
        return any(contains(fold(v), needle) for v in values)

    @cached_property
    def headers_folded(self) -> str:
        return fold("\n".join(_header_lines(self.root.headers)))

    @cached_property
    def body_folded(self) -> str:
        """All readable text below the top-level header (RFC 9051 §6.4.4 BODY)."""
        out: list[str] = []
        stack = [self.root]
        while stack:
            p = stack.pop()
            if p.is_multipart:
                stack.extend(reversed(p.parts))
            elif p.message is not None:
                out.extend(_header_lines(p.message.headers))
                stack.append(p.message)
            elif p.type == "text" and p.subtype == "html":
                out.append(html_to_text(text_of(p, self.data)))
            elif p.type == "text" and (p.subtype in _TEXT_LIKE or not p.subtype):
                out.append(text_of(p, self.data))
        return fold("\n".join(out))

    def body_contains(self, needle: str) -> bool:
        return contains(self.body_folded, needle)

    def text_contains(self, needle: str) -> bool:
        """TEXT: the header or the body (RFC 9051 §6.4.4)."""
        return contains(self.headers_folded, needle) or contains(self.body_folded, needle)


def tree_summary(root: Part) -> str:
    """The summary JSON a store keeps of a message's part tree: ``{"part": tree}``."""
    return json.dumps({"part": root.to_dict()}, ensure_ascii=False, separators=(",", ":"))


class IndexJob(NamedTuple):
    """A stored message to extract index text from: ``prefix`` + the file at ``path``,
    and its part tree as stored (the summary JSON, ``{"part": ...}``), or ``""`` when
    it has none yet: then the message is parsed here and the tree comes back too
    (:attr:`IndexText.summary`)."""

    message_id: int
    path: str
    prefix: bytes
    summary: str
    max_chars: int


class IndexText(NamedTuple):
    """What the substring index gets for one message: its folded text, None when
    longer than ``max_chars``. ``error`` is set when the message could not be read
    or decoded."""

    message_id: int
    search_headers: str | None = None
    search_body: str | None = None
    error: str = ""
    summary: str | None = None  # the part tree's JSON, computed for a job without one


# Messages larger than this are read through a window (FileBytes), not whole.
LARGE_MESSAGE = 8 * 1024 * 1024
# Per character of text an index may take, the octets of a text part read for it.
OCTETS_PER_CHAR = 4


def index_text(job: IndexJob) -> IndexText:
    """The index text of one stored message; never raises (``error`` says why not).

    A large message is read through a window, its text parts only; when they
    are longer than the substring index takes, the message is not indexed (None:
    SEARCH decodes such a message instead, so results stay exact) and they are not
    decoded.
    """
    summary: str | None = None
    try:
        size = os.path.getsize(job.path) + len(job.prefix)
        if size > LARGE_MESSAGE:
            return _large_index_text(job)
        with open(job.path, "rb") as f:
            data = job.prefix + f.read() if job.prefix else f.read()
        root, summary = _tree(job, data)
        text = MessageText(root, data)
        headers: str | None = text.headers_folded
        body: str | None = text.body_folded
        if len(headers or "") + len(body or "") > job.max_chars:
            headers = body = None
        return IndexText(job.message_id, headers, body, summary=summary)
    except Exception as exc:  # unreadable or undecodable: the indexer marks it
        return IndexText(job.message_id, error=f"{type(exc).__name__}: {exc}", summary=summary)


def _large_index_text(job: IndexJob) -> IndexText:
    limit = job.max_chars * OCTETS_PER_CHAR
    with FileBytes(job.path, job.prefix) as view:
        root, summary = _tree(job, view)
        text_octets = sum(p.end - p.body_start for p in root.walk()
                          if p.type == "text" and not p.is_multipart)
        headers: str | None = None
        body: str | None = None
        if text_octets <= limit:
            text = MessageText(root, view)  # reads the text parts only
            headers, body = text.headers_folded, text.body_folded
            if len(headers) + len(body) > job.max_chars:
                headers = body = None
    return IndexText(job.message_id, headers, body, summary=summary)


def _tree(job: IndexJob, data: bytes | FileBytes) -> tuple[Part, str | None]:
    """The job's part tree: as stored, or parsed now (with its JSON) when it has none."""
    if job.summary:
        return Part.from_dict(json.loads(job.summary)["part"], data), None
    root = parse(data)
    return root, tree_summary(root)


def index_texts(jobs: list[IndexJob]) -> list[IndexText]:
    """:func:`index_text` of each job: the unit of work sent to a CPU worker process
    (:mod:`kittiwake.cpupool`), pure apart from reading the files."""
    return [index_text(job) for job in jobs]
