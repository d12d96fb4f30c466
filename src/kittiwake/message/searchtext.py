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

import unicodedata
from functools import cached_property

from kittiwake.message.body import text_of
from kittiwake.message.headers import Headers
from kittiwake.message.html import html_to_text
from kittiwake.message.part import Part

__all__ = ["MessageText", "contains", "fold"]

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

    def __init__(self, root: Part, data: bytes) -> None:
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
