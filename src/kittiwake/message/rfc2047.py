"""RFC 2047 encoded words: ``=?charset?B|Q?text?=`` in headers, both directions.

Decoding is tolerant (RFC 2047 §6.3: a reader should show what it can):
any charset Python knows, an RFC 2231 §5 language suffix (``charset*lang``),
junk in base64, spaces inside Q text; bad charsets and bad bytes become
U+FFFD. Whitespace between adjacent encoded words is dropped (RFC 2047 §6.2),
and adjacent words in the same charset are joined before decoding, so a
multi-byte character split over two words still comes out whole.
"""

from __future__ import annotations

import base64
import binascii
import re

from kittiwake.message.charset import decode_replace

# RFC 2047 §2: encoded-word = "=?" charset "?" encoding "?" encoded-text "?="
_WORD = re.compile(r"=\?([^?\s*]*)(?:\*[^?\s]*)?\?([bBqQ])\?([^?]*?)\?=")
_LWS = re.compile(r"[ \t\r\n]*\Z")
_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")


def b64decode_tolerant(data: bytes) -> bytes:
    """Base64 decoding that skips characters outside the alphabet and bad padding."""
    clean = _B64_JUNK.sub(b"", data)
    rest = len(clean) % 4
    if rest == 1:  # one stray character cannot carry a byte
        clean = clean[:-1]
    elif rest:
        clean += b"=" * (4 - rest)
    try:
        return binascii.a2b_base64(clean)
    except (binascii.Error, ValueError):
        return b""


def _word_bytes(encoding: str, text: str) -> bytes:
    raw = text.encode("utf-8", "replace")
    if encoding in "bB":
        return b64decode_tolerant(raw)
    # RFC 2047 §4.2: "_" is a space, "=XX" a byte; a2b_qp(header=True) does both.
    return binascii.a2b_qp(raw, header=True)


def decode_words(text: str) -> str:
    """Decode every RFC 2047 encoded word in ``text``; other text is kept as is."""
    if "=?" not in text:
        return text
    out: list[str] = []
    pend_charset: str | None = None
    pend: list[bytes] = []

    def flush() -> None:
        nonlocal pend_charset
        if pend_charset is not None:
            out.append(decode_replace(b"".join(pend), pend_charset))
            pend.clear()
            pend_charset = None

    pos = 0
    for m in _WORD.finditer(text):
        gap = text[pos : m.start()]
        # RFC 2047 §6.2: linear white space between encoded words is ignored.
        if gap and not (pend_charset is not None and _LWS.match(gap)):
            flush()
            out.append(gap)
        charset = m.group(1).lower()
        if pend_charset is not None and charset != pend_charset:
            flush()
        pend_charset = charset
        pend.append(_word_bytes(m.group(2), m.group(3)))
        pos = m.end()
    flush()
    out.append(text[pos:])
    return "".join(out)


def encode_words(text: str, *, charset: str = "utf-8", max_word: int = 75) -> str:
    """``text`` as space-separated B encoded words, or unchanged when it is plain ASCII.

    RFC 2047 §2: an encoded word is at most 75 characters; words are split on
    character boundaries so each decodes on its own.
    """
    if text.isascii() and "=?" not in text and "\r" not in text and "\n" not in text:
        return text
    prefix = f"=?{charset}?B?"
    budget = (max_word - len(prefix) - 2) // 4 * 3  # raw bytes per word
    words: list[str] = []
    chunk = b""
    for ch in text:
        b = ch.encode(charset, "replace")
        if chunk and len(chunk) + len(b) > budget:
            words.append(prefix + base64.b64encode(chunk).decode("ascii") + "?=")
            chunk = b""
        chunk += b
    if chunk or not words:
        words.append(prefix + base64.b64encode(chunk).decode("ascii") + "?=")
    return " ".join(words)
