"""Charset names from mail to Python codecs, and decoding that never fails.

MIME (RFC 2045 §5.1, RFC 2046 §4.1.2) and encoded words (RFC 2047 §2) name
charsets with IANA names. Mail in the wild uses wrong and unknown names and
mislabels 8-bit text, so decoding here degrades instead of raising: the
declared charset, then UTF-8 (RFC 6532), then windows-1252/latin-1.
"""

from __future__ import annotations

import codecs
import functools

# Names seen in mail that Python does not know, or where the web's practice
# (WHATWG Encoding) of reading a superset gives better text.
_ALIASES: dict[str, str] = {
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "iso-8859-9": "cp1254",
    "iso-8859-11": "cp874",
    "windows-874": "cp874",
    "tis-620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
    "x-mac-roman": "mac-roman",
    "macintosh": "mac-roman",
}


# Python text codecs that are not charsets a message can be written in.
_NOT_CHARSETS = frozenset({"idna", "punycode", "unicode-escape", "raw-unicode-escape", "mbcs"})


@functools.lru_cache(maxsize=256)
def lookup(charset: str | None) -> str | None:
    """The Python codec name for a MIME charset name, or None when unknown.

    Only text encodings qualify: names of bytes-to-bytes codecs (``base64``,
    ``zlib``, ``rot13``) that Python also knows are rejected.
    """
    if not charset:
        return None
    name = charset.strip().strip('"').strip().lower()
    name = _ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError, TypeError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS:
        return None
    return info.name


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Decode ``data`` as ``charset`` without ever raising.

    Order: the declared charset when it decodes cleanly (except US-ASCII,
    which is often UTF-8 mislabelled), then strict UTF-8,
    then the declared charset with replacement characters (when it is a
    real non-ASCII charset), then windows-1252, then latin-1.
    """
    codec = lookup(charset)
    if codec is not None and not _declared_ascii(charset):
        try:
            return data.decode(codec)
        except (UnicodeError, LookupError, ValueError, TypeError):
            pass
    if codec != "utf-8":
        try:
            return data.decode("utf-8")
        except UnicodeError:
            pass
    if codec is not None and codec not in ("cp1252", "ascii"):
        try:
            return data.decode(codec, "replace")
        except (UnicodeError, LookupError, ValueError, TypeError):
            pass
    return decode_legacy(data)


def _declared_ascii(charset: str | None) -> bool:
    # Text labelled US-ASCII that has 8-bit bytes was mislabelled: try UTF-8 first.
    return (charset or "").strip().strip('"').lower() in ("us-ascii", "ascii")


def decode_replace(data: bytes, charset: str | None) -> str:
    """Decode as ``charset`` with U+FFFD for bad bytes; unknown charsets read as UTF-8.

    For RFC 2047 encoded words, which state their charset explicitly.
    """
    codec = lookup(charset) or "utf-8"
    try:
        return data.decode(codec, "replace")
    except (UnicodeError, LookupError, ValueError, TypeError):
        return data.decode("utf-8", "replace")


def decode_legacy(data: bytes) -> str:
    """UTF-8 if valid, else windows-1252 where defined, else latin-1 (never fails)."""
    try:
        return data.decode("utf-8")
    except UnicodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeError:
        return data.decode("latin-1")
