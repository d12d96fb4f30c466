"""What the store keeps about a message besides its bytes, computed once at delivery.

The envelope (IMAP ENVELOPE fields), the MIME part tree with offsets (so
IMAP BODYSTRUCTURE and BODY[section] are answered without re-parsing),
Message-ID / In-Reply-To / References for threading, and the decoded text
for the full-text index. Parsing never fails: a message that cannot be
parsed is still stored and served byte-exact, with what could be read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from kittiwake.log import get_logger
from kittiwake.message import parse, parse_msgids, searchable_text
from kittiwake.message.filebytes import FileBytes
from kittiwake.message.part import Part
from kittiwake.message.searchtext import MessageText

logger = get_logger("store")

# Text indexed per message; longer bodies are cut (search still finds the start).
MAX_INDEX_CHARS = 1_000_000


@dataclass
class Summary:
    """Parsed facts about one message."""

    message_id: str = ""
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    subject: str = ""
    json: str = "{}"
    header_text: str = ""
    body_text: str = ""
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


def summarize(data: bytes | FileBytes, search_text: bool = False,
              index_text: bool = True) -> Summary:
    """Summary of a message; best effort on malformed input, never raises.

    ``search_text`` also computes the folded SEARCH text for the substring index
    (imports, in their worker processes). A delivery passes ``index_text=False``:
    it leaves both the full-text and the substring index to the background
    indexer, so that its acknowledgement does not wait for them. ``data`` may be a
    :class:`FileBytes` (a large message parsed from its file) only then.
    """
    try:
        if not isinstance(data, bytes) and (index_text or search_text):
            data = data[0:len(data)]  # the text is decoded from one buffer
        root = parse(data)
        headers = root.headers
        ids = parse_msgids(headers.get("message-id"))
        envelope = root.envelope
        header_text = body_text = ""
        if index_text:
            header_text, body_text = searchable_text(root, data, max_chars=MAX_INDEX_CHARS)
        search_headers = search_body = None
        if search_text:
            search_headers, search_body = search_text_of(root, data)
        return Summary(
            message_id=ids[0] if ids else "",
            in_reply_to=parse_msgids(headers.get("in-reply-to")),
            references=parse_msgids(headers.get("references")),
            subject=(envelope.decoded_subject if envelope else None) or "",
            json=json.dumps({"part": root.to_dict()}, ensure_ascii=False,
                            separators=(",", ":")),
            header_text=header_text,
            body_text=body_text,
            search_headers=search_headers,
            search_body=search_body,
        )
    except Exception:  # a message we cannot parse is still stored, byte-exact
        logger.warning("message summary failed; storing without one", exc_info=True)
        return Summary()
