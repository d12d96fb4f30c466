"""What FETCH derives from a stored message, kept in the store between sessions.

A message never changes, so what FETCH answers from its structure never does
either: the serialised ENVELOPE, BODYSTRUCTURE and BODY (RFC 9051 §7.5.2), in
both string forms (8-bit strings quoted only with UTF-8 on, RFC 6855 §3), and
the octets of the header section with the offsets of the header, body and end
(for BODY[HEADER], BODY[HEADER.FIELDS (...)], BODY[TEXT], BODY[]). They are
made once, from the stored part tree, and kept as one opaque blob per message
in the store's ``message_cache`` (the store does not read it: schema version 5),
so a FETCH of a whole mailbox, after a restart too, opens no file and parses
nothing.

The blob: a fixed head (:data:`_HEAD`: format version, flags, offsets, the
length of each value) and the values one after the other. A blob of another
version (this code changed) is ignored and made again.
"""

from __future__ import annotations

import json
import struct
from typing import NamedTuple

from kittiwake.imap import bodystructure as bs
from kittiwake.imap import envelope as env
from kittiwake.imap.encode import encode_bytes
from kittiwake.imap.sections import regular_header
from kittiwake.imapserver.cache import Bounded
from kittiwake.message.part import Defect, Part

__all__ = ["FACTS", "FIELDS", "MAX_HEADER", "VERSION", "Derived", "derive", "from_blob",
           "part_tree", "set_memory"]

VERSION = 1
# version, flags, header start, body start, end, then the lengths of the values.
_HEAD = struct.Struct("<BBQQQIIIIIII")
_TRUNCATED, _REGULAR = 1, 2
# A header section longer than this is not kept (such messages take the general path).
MAX_HEADER = 256 * 1024


class Derived(NamedTuple):
    """The FETCH facts of one message; the ``*8`` values are for sessions with UTF-8 on."""

    header_start: int
    body_start: int
    end: int
    truncated: bool  # the header has no blank line after it (RFC 9051 §6.4.5 HEADER.FIELDS)
    regular: bool  # the header octets are only fields (see sections.regular_header)
    header: bytes
    envelope: bytes
    envelope8: bytes
    bodystructure: bytes
    bodystructure8: bytes
    body: bytes
    body8: bytes

    def to_blob(self) -> bytes:
        # A UTF-8 form equal to the other is kept as b"" (a serialised value never is).
        values = (self.header, self.envelope, _unless(self.envelope8, self.envelope),
                  self.bodystructure, _unless(self.bodystructure8, self.bodystructure),
                  self.body, _unless(self.body8, self.body))
        flags = (_TRUNCATED if self.truncated else 0) | (_REGULAR if self.regular else 0)
        return _HEAD.pack(VERSION, flags, self.header_start, self.body_start, self.end,
                          *map(len, values)) + b"".join(values)


def from_blob(blob: bytes | None) -> Derived | None:
    """The facts in a blob of :meth:`Derived.to_blob`; None if absent, of another
    version, or not whole."""
    if not blob or blob[0] != VERSION or len(blob) < _HEAD.size:
        return None
    _v, flags, hs, bstart, end, *lengths = _HEAD.unpack_from(blob)
    if _HEAD.size + sum(lengths) != len(blob):
        return None
    values = []
    at = _HEAD.size
    for n in lengths:
        values.append(blob[at:at + n])
        at += n
    header, e, e8, s, s8, b, b8 = values
    return Derived(hs, bstart, end, bool(flags & _TRUNCATED), bool(flags & _REGULAR),
                   header, e, e8 or e, s, s8 or s, b, b8 or b)


def _unless(value: bytes, same: bytes) -> bytes:
    return b"" if value == same else value


def part_tree(summary: str | None) -> Part | None:
    """The part tree of a stored summary (JSON), None when it has none."""
    try:
        return Part.from_dict(json.loads(summary or "{}")["part"])
    except (KeyError, ValueError, TypeError):
        return None


def derive(root: Part, header: bytes) -> Derived | None:
    """The facts of a message from its part tree and its header octets (the
    message's ``header_start:body_start``); None when the header is too large."""
    if len(header) > MAX_HEADER or len(header) != root.body_start - root.header_start:
        return None
    values = []
    for utf8 in (False, True):
        values.append((encode_bytes(env.envelope_of_part(root, utf8), utf8),
                       encode_bytes(bs.bodystructure(root, utf8), utf8),
                       encode_bytes(bs.body(root, utf8), utf8)))
    (e, s, b), (e8, s8, b8) = values
    e8, s8, b8 = (e if e8 == e else e8), (s if s8 == s else s8), (b if b8 == b else b8)
    return Derived(root.header_start, root.body_start, root.end,
                   Defect.TRUNCATED_HEADER in root.defects, regular_header(header),
                   header, e, e8, s, s8, b, b8)


def _weight(d: Derived) -> int:
    return 200 + len(d.header) + len(d.envelope) + len(d.bodystructure) + len(d.body) + (
        0 if d.envelope8 is d.envelope else len(d.envelope8)) + (
        0 if d.bodystructure8 is d.bodystructure else len(d.bodystructure8)) + (
        0 if d.body8 is d.body else len(d.body8))


# The memory of the two caches below, together (``limits.imap_fetch_cache_mib`` in
# kittiwake.conf sets it at start, :func:`set_memory`): two thirds for the facts,
# one third for HEADER.FIELDS answers.
DEFAULT_MEMORY = 96 * 1024 * 1024

# Facts of recently fetched messages, by account directory and message id.
FACTS: Bounded[str, Derived] = Bounded(DEFAULT_MEMORY * 2 // 3, _weight)

# HEADER.FIELDS answers of recently fetched messages, by (account directory, section,
# field names) and message id: clients ask for the same fields at every sync. The value
# is the whole literal, before any <partial> (kittiwake.imapserver.fastfetch).
FIELDS: Bounded[tuple[str, ...], bytes] = Bounded(DEFAULT_MEMORY // 3, lambda v: 100 + len(v))


def set_memory(total: int) -> None:
    """Bound :data:`FACTS` and :data:`FIELDS` to ``total`` octets together (0: keep
    nothing; every FETCH then takes the facts from the store's message_cache)."""
    FACTS.resize(total * 2 // 3)
    FIELDS.resize(total - total * 2 // 3)
