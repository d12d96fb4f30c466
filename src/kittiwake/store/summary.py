"""What the store keeps about a message besides its bytes, computed once.

The envelope (IMAP ENVELOPE fields), the MIME part tree with offsets (so
IMAP BODYSTRUCTURE and BODY[section] are answered without re-parsing),
Message-ID / In-Reply-To / References for threading, and (imports) the folded
text of the substring index. Parsing never fails: a message that cannot be
parsed is still stored and served byte-exact, with what could be read.

A delivery computes only what its row needs at once, from the header section
(:func:`summarize_head`: threading and the subject); its summary JSON is
:data:`PENDING` and the background step that indexes it (in the server's CPU
pool) parses the whole message and fills it in, in the same transaction as its
index rows. Until then the store's readers compute it on demand
(``AccountStore.summaries``), so no reader sees the difference; a crash only
leaves it pending, and the next open queues it again (the row's ``indexed``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from kittiwake.log import get_logger
from kittiwake.message import parse, parse_msgids
from kittiwake.message.filebytes import FileBytes
from kittiwake.message.headers import Headers, named_fields, scan_header_section
from kittiwake.message.part import Part
from kittiwake.message.rfc2047 import decode_words
from kittiwake.message.searchtext import MessageText, tree_summary

logger = get_logger("store")

# Text indexed per message; longer bodies are cut (search still finds the start).
MAX_INDEX_CHARS = 1_000_000
# The summary JSON of a message whose part tree is not computed yet (see above).
PENDING = ""


@dataclass
class Summary:
    """Parsed facts about one message."""

    message_id: str = ""
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    subject: str = ""
    json: str = "{}"
    # The folded text IMAP SEARCH matches (kittiwake.message.searchtext), for the
    # substring index; None when too long to index (searched by decoding instead).
    search_headers: str | None = None
    search_body: str | None = None


def search_text_of(root: Part, data: bytes) -> tuple[str | None, str | None]:
    """The folded (headers, body) text SEARCH matches, or (None, None) when too long."""
    text = MessageText(root, data)
    headers, body = text.headers_folded, text.body_folded
    if len(headers) + len(body) > MAX_INDEX_CHARS:
        return None, None
    return headers, body


def summarize(data: bytes | FileBytes, search_text: bool = False) -> Summary:
    """Summary of a message; best effort on malformed input, never raises.

    ``search_text`` also computes the folded SEARCH text for the substring index
    (imports, in their worker processes); without it (a delivery), the index is
    the background indexer's, so that an acknowledgement does not wait for it.
    ``data`` may be a :class:`FileBytes` (a large message parsed from its file)
    only without ``search_text``.
    """
    try:
        if not isinstance(data, bytes) and search_text:
            data = data[0:len(data)]  # the text is decoded from one buffer
        root = parse(data)
        headers = root.headers
        ids = parse_msgids(headers.get("message-id"))
        envelope = root.envelope
        search_headers = search_body = None
        if search_text:
            search_headers, search_body = search_text_of(root, data)
        return Summary(
            message_id=ids[0] if ids else "",
            in_reply_to=parse_msgids(headers.get("in-reply-to")),
            references=parse_msgids(headers.get("references")),
            subject=(envelope.decoded_subject if envelope else None) or "",
            json=tree_summary(root),
            search_headers=search_headers,
            search_body=search_body,
        )
    except Exception:  # a message we cannot parse is still stored, byte-exact
        logger.warning("message summary failed; storing without one", exc_info=True)
        return Summary()


def summarize_head(*sections: Headers) -> Summary:
    """What a delivery's row needs at once, from the header fields (``sections``: the
    prefix's, then the message's own): Message-ID, In-Reply-To, References and the
    decoded subject, as :func:`summarize` finds them (the first field of each
    name counts). Its ``json`` is :data:`PENDING`; never raises."""
    try:
        def first(name: str) -> str | None:
            for headers in sections:
                value = headers.get(name)
                if value is not None:
                    return value
            return None

        ids = parse_msgids(first("message-id"))
        subject = first("subject")
        return Summary(
            message_id=ids[0] if ids else "",
            in_reply_to=parse_msgids(first("in-reply-to")),
            references=parse_msgids(first("references")),
            subject=decode_words(subject) if subject is not None else "",
            json=PENDING,
        )
    except Exception:  # the whole parse follows in the background, and may do better
        logger.warning("message header summary failed", exc_info=True)
        return Summary(json=PENDING)


# Octets read from a spooled file for its header section at first (most are smaller).
HEAD_READ = 64 * 1024
# RFC 4155: a mbox "From " line before the header section (not an obsolete "From :").
_OBS_FROM = re.compile(rb"From[ \t]*:")


# The fields summarize_head reads.
SUMMARY_FIELDS = ("message-id", "in-reply-to", "references", "subject")


def _scan_head(data: bytes | FileBytes) -> tuple[Headers, str]:
    """The header fields a summary needs at the start of a message (perhaps only
    those), and how the section ended (see :func:`scan_header_section`); a mbox
    "From " line before them is skipped, as :func:`kittiwake.message.parse` does."""
    start = 0
    if data[0:5] == b"From " and not _OBS_FROM.match(data[0:64]):
        nl = data.find(b"\n")
        start = len(data) if nl < 0 else nl + 1
    if isinstance(data, bytes):
        found = named_fields(data, SUMMARY_FIELDS, start)
        if found is not None:
            return found
    headers, _body, how = scan_header_section(data, start)
    return headers, how


def header_fields(data: bytes) -> Headers:
    """The header fields a summary needs, at the start of a message in memory."""
    return _scan_head(data)[0]


def head_fields(head: bytes, whole: bool) -> Headers | None:
    """The header fields in the first octets of a message (``whole``: all of it), or
    None when its header section goes on beyond them."""
    headers, how = _scan_head(head)
    return headers if how != "end" or whole else None


def file_header_fields(path: str | Path, size: int) -> Headers:
    """The header fields of the message in a file of ``size`` octets, reading no more
    of it than its header section (blocking)."""
    with open(path, "rb") as f:
        head = f.read(HEAD_READ)
    headers, how = _scan_head(head)
    if how != "end" or size <= len(head):
        return headers
    with FileBytes(path) as view:  # a header section beyond the first read
        return _scan_head(view)[0]
