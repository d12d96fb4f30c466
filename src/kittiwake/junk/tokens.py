"""The words of a message that the content classifier looks at.

Words come from what a reader sees: the decoded Subject (RFC 2047 encoded
words undone) and the decoded text of the body parts (transfer encoding
undone, charset decoded, HTML reduced to text), as
:class:`kittiwake.message.searchtext.MessageText` gives it to IMAP SEARCH.
Subject words are kept apart (``subject:word``): the same word says more
there. Each distinct word counts once per message (a document-frequency
model, so a message that repeats a word a thousand times weighs as one).
"""

from __future__ import annotations

import re

from kittiwake.message import parse
from kittiwake.message.searchtext import MessageText, fold

# A word: letters, digits, and inner apostrophes/dots/dashes ("don't", "e-mail",
# "example.org"), 3 to 24 characters; longer runs are mostly base64 or hashes.
_WORD = re.compile(r"[^\W_](?:[\w'.$€£-]*[^\W_$])?")
MIN_LENGTH = 3
MAX_LENGTH = 24
# Enough words to judge any message; a huge message costs no more than this.
MAX_WORDS = 2000
MAX_TEXT_CHARS = 200_000


def words_of_text(text: str, prefix: str = "") -> list[str]:
    """Distinct words of already folded text, in order of first appearance."""
    seen: dict[str, None] = {}
    for match in _WORD.finditer(text[:MAX_TEXT_CHARS]):
        word = match.group()
        if not MIN_LENGTH <= len(word) <= MAX_LENGTH or word.isdigit():
            continue
        seen.setdefault(prefix + word, None)
        if len(seen) >= MAX_WORDS:
            break
    return list(seen)


def message_words(data: bytes) -> list[str]:
    """Distinct words of a message's decoded subject and body text; never raises."""
    try:
        root = parse(data)
        text = MessageText(root, data)
        subject = " ".join(text.header_values("subject"))
        words = words_of_text(fold(subject), "subject:")
        words += words_of_text(text.body_folded)
        return words[:MAX_WORDS]
    except Exception:  # malformed beyond what the parser tolerates: judge by nothing
        return []
