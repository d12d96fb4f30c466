"""FETCH PREVIEW (RFC 8970): a short plain-text extract of a message's text.

The text is taken like the search text (:mod:`kittiwake.message.search`):
the first text part in reading order, where of a multipart/alternative
(RFC 2046 §5.1.4) the plain-text version is preferred and HTML is reduced
to its text (:func:`kittiwake.message.html.html_to_text`); parts inside
encapsulated messages count, attachments (a ``Content-Disposition:
attachment``) do not. Preview text is plain text for a person to glance at
(RFC 8970 leaves its making to the server): quoted lines (``>``) and
everything after a signature separator (``-- ``, RFC 3676 §4.3) are dropped,
runs of white space become one space, and at most :data:`PREVIEW_CHARS`
characters are kept (RFC 8970 sets an upper limit of 256 characters; 200 is
what Dovecot sends, compared in tests/imap/test_fetch_preview.py). A
message without usable text gets the empty string: "the server MUST return
a zero-length string".

Only the first :data:`MAX_SOURCE_OCTETS` of the chosen body are read and
decoded, so a huge part costs no more than a small one. The function takes a
reader for the body octets, so it stays pure; callers pass
``functools.partial(kittiwake.imap.sections.read_span, path)`` or a slice
of bytes in memory.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from kittiwake.imap.sections import Span
from kittiwake.message.body import decode_transfer
from kittiwake.message.charset import decode_bytes
from kittiwake.message.html import html_to_text
from kittiwake.message.part import Part

__all__ = ["MAX_SOURCE_OCTETS", "PREVIEW_CHARS", "preview", "preview_of_text"]

PREVIEW_CHARS = 200
MAX_SOURCE_OCTETS = 32 * 1024
_WS = re.compile(r"\s+")


def _text_part(root: Part) -> Part | None:
    """The part whose text previews the message (reading order, see the module doc)."""
    stack = [root]
    while stack:
        p = stack.pop()
        if p.is_multipart:
            kids = p.parts
            if p.subtype == "alternative":
                plain = [k for k in kids if k.type == "text" and k.subtype == "plain"]
                # Else the richest readable version: the last HTML or nested one.
                rich = [k for k in kids if (k.type == "text" and k.subtype == "html")
                        or k.is_multipart or k.message is not None]
                kids = plain[:1] or rich[-1:]
            stack.extend(reversed(kids))
        elif p.message is not None:
            stack.append(p.message)
        elif (p.type == "text" and p.subtype in ("plain", "html")
              and p.disposition != "attachment"):
            return p
    return None


def preview_of_text(text: str) -> str:
    """Preview text from a plain text: no quoted lines, no signature, white
    space collapsed, at most :data:`PREVIEW_CHARS` characters."""
    kept: list[str] = []
    for line in text.splitlines():
        if line.rstrip("\r") == "-- ":  # RFC 3676 §4.3 signature separator
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line)
    return _WS.sub(" ", " ".join(kept)).strip()[:PREVIEW_CHARS].rstrip()


def preview(root: Part, read: Callable[[Span], bytes]) -> str:
    """The PREVIEW of the message ``root``; ``read`` returns the octets of a span."""
    part = _text_part(root)
    if part is None or part.end <= part.body_start:
        return ""
    length = min(part.end - part.body_start, MAX_SOURCE_OCTETS)
    raw = read(Span(part.body_start, length))
    if length < part.end - part.body_start:
        # Cut at a line end, so no multi-byte character or encoded unit is split.
        nl = raw.rfind(b"\n")
        if nl > 0:
            raw = raw[: nl + 1]
    text = decode_bytes(decode_transfer(raw, part.encoding), part.charset)
    if part.subtype == "html":
        text = html_to_text(text)
    return preview_of_text(text)
