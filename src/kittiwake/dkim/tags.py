"""Tag=value lists, the syntax of DKIM-Signature headers and key records (RFC 6376 §3.2).

    tag-list  =  tag-spec *( ";" tag-spec ) [ ";" ]
    tag-spec  =  [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
    tag-name  =  ALPHA *ALNUMPUNC
    tag-value =  [ tval *( 1*(WSP / FWS) tval ) ]
    tval      =  1*VALCHAR          ; VALCHAR = %x21-3A / %x3C-7E

:func:`parse_tag_list` keeps where each value sits in the text so that the
``b=`` value can be blanked for hashing without disturbing anything else
(RFC 6376 §3.7).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

# RFC 5234 WSP plus the CR and LF of folding: white space inside a tag list.
FWS_CHARS = " \t\r\n"
_TAG_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# Outside VALCHAR (%x21-3A / %x3C-7E) and white space: the controls and DEL. ";" ends
# the spec, so it never reaches a value; UTF-8 (>= 0x80) is let through for RFC 8616.
_BAD_VALUE_CHAR = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class TagListError(ValueError):
    """The text is not a valid tag=value list (RFC 6376 §3.2)."""


@dataclass(frozen=True)
class Tag:
    """One tag: its name, its value with surrounding white space removed, and
    ``span``, the (start, end) of the whole value text between "=" and the next
    ";" (or the end), including surrounding white space."""

    name: str
    value: str
    span: tuple[int, int]


def parse_tag_list(text: str) -> dict[str, Tag]:
    """Parse a tag list; names are case-sensitive (§3.2), order is kept.

    Raises :class:`TagListError` for a spec without "=", a bad tag name, a
    character outside VALCHAR/white space in a value, an empty spec between
    two ";", or a duplicate name ("if a tag name does occur more than once,
    the entire tag-list is invalid", §3.2).
    """
    tags: dict[str, Tag] = {}
    pos = 0
    length = len(text)
    while pos <= length:
        end = text.find(";", pos)
        if end < 0:
            end = length
        eq = text.find("=", pos, end)
        if eq < 0:  # a spec without "=": empty, or an error
            spec = text[pos:end].strip(FWS_CHARS)
            if not spec:
                # Only the optional trailing ";" may leave an empty spec behind.
                if end < length or not tags:
                    raise TagListError("empty tag (\";;\" or nothing at all)")
                break
            raise TagListError(f"tag without '=': {spec[:40]!r}")
        name = text[pos:eq].strip(FWS_CHARS)
        if not _TAG_NAME.fullmatch(name):
            raise TagListError(f"invalid tag name {name[:40]!r}")
        if name in tags:
            raise TagListError(f"duplicate tag {name!r}")
        value = text[eq + 1:end].strip(FWS_CHARS)
        bad = _BAD_VALUE_CHAR.search(value)
        if bad is not None:
            raise TagListError(f"invalid character {bad.group()!r} in tag {name!r}")
        tags[name] = Tag(name, value, (eq + 1, end))
        pos = end + 1
    return tags


def strip_fws(value: str) -> str:
    """The value with all folding white space removed (for base64 values, §3.5 b=)."""
    return value.replace(" ", "").replace("\t", "").replace("\r", "").replace("\n", "")


def decode_base64(value: str, what: str) -> bytes:
    """Strict base64 after removing white space; TagListError names ``what``."""
    compact = strip_fws(value)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise TagListError(f"{what} is not valid base64") from None


def split_colon_list(value: str) -> list[str]:
    """A colon-separated list with white space around items removed (h=, q=, k= lists)."""
    return [item.strip(FWS_CHARS) for item in value.split(":")]
