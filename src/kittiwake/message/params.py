"""MIME header parameters: Content-Type (RFC 2045 §5.1), Content-Disposition
(RFC 2183) and RFC 2231 parameter value continuations, charsets and languages.

Parsing is tolerant of what mailers really send: unquoted values with
spaces, missing closing quotes, comments, RFC 2047 encoded words inside
quoted ``name``/``filename`` values, raw UTF-8 (RFC 6532). Parameter names
are lowercased; values come back decoded to text.
"""

from __future__ import annotations

import re
import urllib.parse
from functools import lru_cache

from kittiwake.message.charset import decode_bytes
from kittiwake.message.rfc2047 import decode_words

# One ";"-separated segment: quoted strings (possibly unterminated) are atomic.
# Atomic groups keep these linear on hostile input (no backtracking into quotes).
# A quoted string here cannot fail (it may end at the end of the text), so a
# scan never restarts inside one.
_SEGMENT = re.compile(r'(?:(?>"(?:[^"\\]|\\.)*+(?:"|\\?\Z))|[^;"])++', re.S)
_PARAM = re.compile(r"\s*([^\s=]+?)\s*=\s*(.*)\Z", re.S)
_COMMENT_TOKENS = re.compile(r'\\.|[()"]', re.S)
# RFC 2231 §3: section numbers are ASCII digits ("\d" would take "①", which int() refuses).
_SECTION = re.compile(r"(.*?)\*([0-9]{1,4})(\*?)\Z|(.*?)(\*)\Z", re.S)
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)
_COMMENT_BAD = re.compile(r"[\x00-\x1f\x7f()\\]")
_TOKEN_SPECIALS = re.compile(r'[\x00-\x20()<>@,;:\\"/\[\]?=\x7f-\U0010ffff]')


@lru_cache(maxsize=256)
def comment_text(text: str) -> str:
    """``text`` made fit to stand inside a comment we write (RFC 5322 §3.2.2): controls,
    parentheses and backslashes as spaces, white space runs as one space. Cached: the
    same few (TLS versions, ciphers, check details) come with every message."""
    return " ".join(_COMMENT_BAD.sub(" ", text).split())


def strip_comments(text: str, replacement: str = " ") -> str:
    """``text`` without RFC 5322 §3.2.2 comments (nested, with quoted-pairs).

    Each comment becomes ``replacement``; quoted strings are left alone; an
    unterminated comment runs to the end. Linear in the length of ``text``.
    """
    if "(" not in text:
        return text
    out: list[str] = []
    depth = 0
    pos = 0
    quoted = False
    for m in _COMMENT_TOKENS.finditer(text):
        c = m.group(0)
        if c[0] == "\\":
            continue
        if quoted:
            quoted = c != '"'
        elif c == '"':
            quoted = depth == 0
        elif c == "(":
            if depth == 0:
                out.append(text[pos : m.start()])
            depth += 1
        elif depth:
            depth -= 1
            if depth == 0:
                out.append(replacement)
                pos = m.end()
    if depth == 0:
        out.append(text[pos:])
    else:
        out.append(replacement)
    return "".join(out)


def _unquote(value: str) -> tuple[str, bool]:
    """A value without its quotes and quoted-pairs; True if it was quoted."""
    value = value.strip()
    if value.startswith('"'):
        inner = value[1:]
        end = re.match(r'(?:[^"\\]|\\.)*', inner, re.S)
        body = end.group(0) if end else inner
        return _QUOTED_PAIR.sub(r"\1", body), True
    # RFC 2045 §5.1 allows comments; strip them from unquoted values.
    if "(" in value:
        stripped = strip_comments(value, "").strip()
        if stripped:
            value = stripped
    return value, False


def split_header_params(value: str) -> tuple[str, list[tuple[str, str, bool]]]:
    """Split ``value`` into its first item and its raw ``(name, value, quoted)`` params."""
    segments = _SEGMENT.findall(value)
    if not segments:
        return "", []
    first = segments[0] if not value.lstrip().startswith(";") else ""
    rest = segments[1:] if first else segments
    params: list[tuple[str, str, bool]] = []
    for seg in rest:
        m = _PARAM.match(seg)
        if m is None:
            continue
        v, quoted = _unquote(m.group(2))
        params.append((m.group(1).lower(), v, quoted))
    return strip_comments(first, "").strip(), params


def decode_params(raw: list[tuple[str, str, bool]]) -> dict[str, str]:
    """Combine RFC 2231 sections and decode values; later duplicates are ignored.

    RFC 2231 §3: ``name*0``, ``name*1``, ... are joined in order; §4: a
    section name ending in ``*`` has a percent-encoded value, the first one
    prefixed with ``charset'language'``.
    """
    order: dict[str, None] = {}
    plain: dict[str, str] = {}
    sections: dict[str, dict[int, tuple[str, bool]]] = {}
    for name, value, quoted in raw:
        m = _SECTION.match(name)
        if m is None:
            order.setdefault(name, None)
            if name not in plain:
                if quoted and "=?" in value:  # widespread RFC 2047 misuse in filenames
                    value = decode_words(value)
                plain[name] = value
            continue
        if m.group(1) is not None:
            base, index, extended = m.group(1), int(m.group(2)), bool(m.group(3))
        else:
            base, index, extended = m.group(4), 0, True
        order.setdefault(base, None)
        # Quoting an extended value is wrong (RFC 2231 §4) but common: decode it anyway.
        sections.setdefault(base, {}).setdefault(index, (value, extended))
    combined: dict[str, str] = {}
    for base, parts in sections.items():
        charset = None
        chunks: list[bytes] = []
        indexes = sorted(parts)
        for i in indexes:
            value, extended = parts[i]
            if extended:
                if i == indexes[0] and value.count("'") >= 2:
                    charset, _lang, value = value.split("'", 2)
                chunks.append(urllib.parse.unquote_to_bytes(value))
            else:
                chunks.append(value.encode("utf-8", "replace"))
        combined[base] = decode_bytes(b"".join(chunks), charset or "utf-8")
    # RFC 2231 forms win over a plain fallback of the same name.
    return {n: combined[n] if n in combined else plain[n] for n in order}


def parse_content_type(value: str | None) -> tuple[str, str, dict[str, str]]:
    """``(type, subtype, params)`` lowercased; ``("", "", {})`` if ``value`` is not valid.

    RFC 2045 §5.2 says to treat an invalid Content-Type as text/plain; the
    caller decides, since the default differs inside multipart/digest.
    """
    if value is None:
        return "", "", {}
    first, raw = split_header_params(value)
    mtype, slash, subtype = first.partition("/")
    mtype = mtype.strip().lower()
    subtype = subtype.strip().lower()
    if not slash or not mtype or not subtype or _TOKEN_SPECIALS.search(mtype + subtype):
        return "", "", {}
    return mtype, subtype, decode_params(raw)


def parse_disposition(value: str | None) -> tuple[str | None, dict[str, str]]:
    """RFC 2183 §2: ``(disposition type lowercased, params)``; ``(None, {})`` if absent."""
    if value is None:
        return None, {}
    first, raw = split_header_params(value)
    return (first.lower() or None), decode_params(raw)


def needs_quoting(value: str) -> bool:
    """True unless ``value`` is an RFC 2045 §5.1 token."""
    return not value or bool(_TOKEN_SPECIALS.search(value))


def quote_string(value: str) -> str:
    """An RFC 5322 §3.2.4 quoted-string for ``value`` (CR/LF become spaces)."""
    value = value.replace("\r", " ").replace("\n", " ")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
