"""The FETCH BODYSTRUCTURE and BODY data items (RFC 9051 §7.5.2) from a part tree.

Built from a :class:`~kittiwake.message.part.Part` tree as the message
parser stored it (no re-parsing). The grammar is RFC 9051 §9 ``body``:

- a non-multipart part: ``(type subtype params id description encoding
  octets ...)``; text parts add their line count (``body-type-text``);
  message/rfc822 and message/global (RFC 6532 §3.7) add the encapsulated
  message's envelope, its body structure and the line count
  (``body-type-msg``); BODYSTRUCTURE then adds ``body-ext-1part``: MD5,
  disposition, language, location;
- a multipart: its parts, the subtype, and for BODYSTRUCTURE
  ``body-ext-mpart``: parameters, disposition, language, location.

BODY is the same without extension data. Conventions (compared with Dovecot,
see tests/imap/test_fetch_dovecot.py):

- type, subtype and parameter names are lower case (the parser lowercases
  them; they are case-insensitive, RFC 2045 §5.1);
- a text part without a charset parameter gets ``"charset" "us-ascii"``
  (after its other parameters), the RFC 2045 §5.2 default (Dovecot does
  the same);
- ``octets`` is the body as stored, still transfer-encoded; ``lines``
  counts text lines, a last line without a line end included;
- a non-ASCII parameter value is sent as UTF-8 when the session has UTF-8
  on, and otherwise as an RFC 2231 §4 extended parameter (``name*`` with
  ``utf-8''`` and percent-encoding), which stays 7-bit;
- an empty Content-ID, -Description, -Location or -MD5 is NIL, as an absent
  one: the stored part tree keeps no empty values, so a message answers the
  same before and after it is stored;
- a multipart without any part (no boundary, boundary not found) still
  needs one body (``1*body``): it is given an empty text/plain part, as
  Dovecot does;
- a message/rfc822 part that was not parsed inside (transfer-encoded
  against RFC 2046 §5.2.1, or past the depth limit) still gets the
  ``body-type-msg`` form, with an all-NIL envelope and an empty text/plain
  body, so that clients following the grammar can read it.

Pure functions, no I/O; they never raise for a tree the parser produces.
"""

from __future__ import annotations

import urllib.parse

from kittiwake.imap.encode import encode_bytes
from kittiwake.imap.envelope import EMPTY_ENVELOPE, envelope, text
from kittiwake.imap.values import Raw, Value
from kittiwake.message.part import Part

__all__ = ["body", "bodystructure", "params_value"]

_US_ASCII: tuple[str, str] = ("charset", "us-ascii")
_EMPTY_TEXT_BASIC: tuple[Value, ...] = ("text", "plain", _US_ASCII, None, None, "7bit", 0, 0)
_EMPTY_TEXT_EXT: tuple[Value, ...] = (*_EMPTY_TEXT_BASIC, None, None, None, None)


def _param_pair(name: str, value: str, utf8: bool) -> tuple[str, str]:
    name, value = text(name) or "", text(value) or ""
    if value.isascii() or utf8:
        return name, value
    # RFC 2231 §4: charset'language'percent-encoded value, name marked with "*".
    return name + "*", "utf-8''" + urllib.parse.quote(value.encode("utf-8"), safe="")


def params_value(params: dict[str, str], utf8: bool = False) -> list[str] | None:
    """``body-fld-param``: ``(name value ...)``, or None (NIL) without parameters."""
    if not params:
        return None
    out: list[str] = []
    for name, value in params.items():
        out.extend(_param_pair(name, value, utf8))
    return out


def _text_params(part: Part, utf8: bool) -> list[str] | None:
    params = params_value(part.params, utf8)
    if part.type == "text" and "charset" not in part.params:
        # RFC 2045 §5.2: plain US-ASCII text is the default.
        return [*(params or ()), *_US_ASCII]  # after the others, as Dovecot puts it
    return params


def _disposition(part: Part, utf8: bool) -> Value:
    if part.disposition is None:
        return None
    return (text(part.disposition), params_value(part.disposition_params, utf8))


def _language(part: Part) -> Value:
    if not part.language:
        return None
    return [text(t) for t in part.language]


def _structure(part: Part, ext: bool, utf8: bool) -> Value:
    if part.is_multipart:
        # body-type-mpart = 1*body SP media-subtype ...: the bodies follow each
        # other without a space, so this list is serialised here.
        kids = [encode_bytes(_structure(c, ext, utf8), utf8) for c in part.parts]
        if not kids:
            kids.append(encode_bytes(_EMPTY_TEXT_EXT if ext else _EMPTY_TEXT_BASIC))
        tail: list[Value] = [text(part.subtype)]
        if ext:
            tail += [params_value(part.params, utf8), _disposition(part, utf8),
                     _language(part), text(part.location or None)]
        return Raw(b"(" + b"".join(kids) + b" " + encode_bytes(tail, utf8)[1:])
    out: list[Value] = [text(part.type), text(part.subtype), _text_params(part, utf8),
                        text(part.id or None), text(part.description or None),
                        text(part.encoding),
                        part.body_size]
    if part.is_message:
        if part.message is not None:
            out += [list(envelope(part.message.envelope, utf8)),
                    _structure(part.message, ext, utf8)]
        else:
            out += [list(EMPTY_ENVELOPE), list(_EMPTY_TEXT_EXT if ext else _EMPTY_TEXT_BASIC)]
        out.append(part.lines)
    elif part.type == "text":
        out.append(part.lines)
    if ext:
        out += [text(part.md5 or None), _disposition(part, utf8), _language(part),
                text(part.location or None)]
    return out


def bodystructure(part: Part, utf8: bool = False) -> Value:
    """The BODYSTRUCTURE value (with extension data) of the message ``part``.

    ``utf8`` must be the writer's setting: multipart lists come serialised.
    """
    return _structure(part, True, utf8)


def body(part: Part, utf8: bool = False) -> Value:
    """The BODY value (no extension data) of the message ``part``."""
    return _structure(part, False, utf8)
