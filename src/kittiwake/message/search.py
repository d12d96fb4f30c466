"""Text for the full-text index: decoded headers and the readable body text.

Text parts are decoded (transfer encoding, charset); HTML is reduced to
text; of a multipart/alternative (RFC 2046 §5.1.4) only one version counts,
plain text preferred. Encapsulated messages contribute their headers and
text to the body text.
"""

from __future__ import annotations

import dataclasses

from kittiwake.message.address import Group, parse_address_list
from kittiwake.message.body import text_of
from kittiwake.message.filebytes import FileBytes
from kittiwake.message.headers import Headers
from kittiwake.message.html import html_to_text
from kittiwake.message.part import Part

# Header fields worth finding a message by.
SEARCH_HEADERS = ("Subject", "From", "Sender", "Reply-To", "To", "Cc", "Bcc")
_ADDRESS_HEADERS = frozenset({"from", "sender", "reply-to", "to", "cc", "bcc"})


def header_text(headers: Headers) -> str:
    """Decoded Subject and address fields, one per line (names and addresses)."""
    lines: list[str] = []
    for name in SEARCH_HEADERS:
        for h in headers.fields(name):
            if h.key in _ADDRESS_HEADERS:
                words: list[str] = []
                for item in parse_address_list(h.value):
                    members = item.members if isinstance(item, Group) else (item,)
                    if isinstance(item, Group) and item.name:
                        words.append(item.name)
                    for a in members:
                        words.append(f"{a.name} <{a.addr}>" if a.name else a.addr)
                if words:
                    lines.append(", ".join(words))
            else:
                text = h.decoded.strip()
                if text:
                    lines.append(text)
    return "\n".join(lines)


def _leaf_text(part: Part, data: bytes | FileBytes, max_octets: int | None = None
               ) -> str | None:
    if part.type != "text":
        return None
    if max_octets is not None and part.end - part.body_start > max_octets:
        # Only the start counts (the text is cut at max_chars anyway): read no more.
        part = dataclasses.replace(part, end=part.body_start + max_octets)
    if part.subtype == "html":
        return html_to_text(text_of(part, data))
    if part.subtype in ("plain", "enriched", "markdown", "calendar", "csv", "x-vcard",
                        "vcard", "rfc822-headers"):
        return text_of(part, data)
    return None


def _choose(alternatives: list[Part]) -> list[Part]:
    """RFC 2046 §5.1.4: of alternatives, the plain-text one, else the last text-bearing one."""
    for p in alternatives:
        if p.type == "text" and p.subtype == "plain":
            return [p]
    for p in reversed(alternatives):
        if p.type == "text" or p.is_multipart or p.is_message:
            return [p]
    return []


def _body_texts(part: Part, data: bytes | FileBytes, out: list[str], budget: list[int],
                max_octets: int | None = None) -> None:
    stack = [part]
    while stack and budget[0] > 0:
        p = stack.pop()
        if p.is_multipart:
            kids = _choose(p.parts) if p.subtype == "alternative" else p.parts
            stack.extend(reversed(kids))
            continue
        if p.message is not None:
            inner = header_text(p.message.headers)[: budget[0]]
            if inner:
                out.append(inner)
                budget[0] -= len(inner)
            stack.append(p.message)
            continue
        text = _leaf_text(p, data, max_octets)
        if text:
            text = text[: budget[0]]
            out.append(text)
            budget[0] -= len(text)


def searchable_text(root: Part, data: bytes | FileBytes, *, max_chars: int = 4_000_000,
                    max_part_octets: int | None = None) -> tuple[str, str]:
    """``(header_text, body_text)`` of the message parsed into ``root`` from ``data``.

    ``root`` must carry its header fields (from :func:`parse`, or
    ``Part.from_dict(d, data)``). Body text stops after ``max_chars``; with
    ``max_part_octets`` no more than that of a text part's body is read and
    decoded (a large message read through :class:`FileBytes`).
    """
    out: list[str] = []
    _body_texts(root, data, out, [max_chars], max_part_octets)
    return header_text(root.headers), "\n\n".join(out)
