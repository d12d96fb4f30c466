"""The IMAP ENVELOPE fields of a message (RFC 9051 §7.5.2) and the header
parsers they need: msg-id lists (RFC 5322 §3.6.4) and dates (RFC 5322 §3.3).

:class:`Envelope` keeps the raw header values (IMAP sends date, subject,
in-reply-to and message-id as written) and parsed address lists. The
RFC 9051 defaulting of Sender and Reply-To to From is left to the IMAP
server: here an absent field is None.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from dataclasses import dataclass
from typing import Any

from kittiwake.message.address import Address, AddressList, Group, parse_address_list
from kittiwake.message.headers import Headers
from kittiwake.message.params import strip_comments
from kittiwake.message.rfc2047 import decode_words

_ANGLE_ID = re.compile(r"<([^<>]*)>")
_WS = re.compile(r"\s+")


def parse_msgids(value: str | None) -> list[str]:
    """The msg-ids in a Message-ID/In-Reply-To/References value, without ``<>``.

    RFC 5322 §3.6.4: ``"<" id-left "@" id-right ">"``. Tolerant: white space
    and comments inside brackets are dropped, and without any brackets
    blank-separated words containing ``@`` are taken as ids.
    """
    if not value:
        return []
    out: list[str] = []
    found = _ANGLE_ID.findall(value)
    if found:
        for ident in found:
            ident = _WS.sub("", strip_comments(ident, ""))
            if ident:
                out.append(ident)
        return out
    for word in _WS.split(strip_comments(value)):
        if "@" in word:
            out.append(word.strip("<>,;\"'"))
    return out


_DAY_NAME = re.compile(r"^\s*[A-Za-z]+\s*,?\s*")
_TZ_WORDS = {"CET": "+0100", "CEST": "+0200", "BST": "+0100", "IST": "+0530", "JST": "+0900",
             "EET": "+0200", "EEST": "+0300", "MET": "+0100", "MEST": "+0200",
             "AEST": "+1000", "AEDT": "+1100", "HKT": "+0800", "SGT": "+0800", "KST": "+0900",
             "WET": "+0000", "WEST": "+0100", "MSK": "+0300", "NZST": "+1200", "NZDT": "+1300"}


def parse_date(value: str | None) -> dt.datetime | None:
    """A Date header (RFC 5322 §3.3, with §4.3 obsolete forms) as an aware datetime.

    Tolerant: missing day names, two-digit years, named zones, trailing
    comments, dots as time separators. An unknown zone (or ``-0000``) is
    read as UTC. None when no date can be made out.
    """
    if not value:
        return None
    text = strip_comments(value).strip()
    text = re.sub(r"(\d{1,2})\.(\d{2})\.(\d{2})", r"\1:\2:\3", text)
    words = text.split()
    if words and words[-1].upper() in _TZ_WORDS:
        words[-1] = _TZ_WORDS[words[-1].upper()]
    text = " ".join(words)
    for candidate in (text, _DAY_NAME.sub("", text)):
        try:
            parsed = email.utils.parsedate_tz(candidate)
        except (ValueError, TypeError, IndexError, OverflowError):
            parsed = None
        if parsed is None:
            continue
        try:
            year, month, day, hour, minute, second = parsed[:6]
            offset = parsed[9] or 0
            if not -86400 < offset < 86400:
                offset = 0
            tz = dt.timezone(dt.timedelta(seconds=offset))
            return dt.datetime(year, month, day, hour, minute, min(second, 59), tzinfo=tz)
        except (ValueError, TypeError, OverflowError):
            continue
    return None


@dataclass(frozen=True, slots=True)
class Envelope:
    """RFC 9051 §7.5.2 ENVELOPE data; None means the header field is absent."""

    date: str | None = None
    subject: str | None = None
    from_: AddressList | None = None
    sender: AddressList | None = None
    reply_to: AddressList | None = None
    to: AddressList | None = None
    cc: AddressList | None = None
    bcc: AddressList | None = None
    in_reply_to: str | None = None
    message_id: str | None = None

    @property
    def decoded_subject(self) -> str | None:
        """The subject with RFC 2047 words decoded."""
        return decode_words(self.subject) if self.subject is not None else None

    @property
    def parsed_date(self) -> dt.datetime | None:
        """The Date field as a datetime (see :func:`parse_date`)."""
        return parse_date(self.date)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form (for storing with the part tree)."""
        out: dict[str, Any] = {}
        for name in _FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            out[name] = [_item_to_json(i) for i in value] if name in _ADDR_FIELDS else value
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Envelope:
        """The inverse of :meth:`to_dict`."""
        kw: dict[str, Any] = {}
        for name in _FIELDS:
            if name in d:
                v = d[name]
                kw[name] = [_item_from_json(i) for i in v] if name in _ADDR_FIELDS else v
        return cls(**kw)


_ADDR_FIELDS = ("from_", "sender", "reply_to", "to", "cc", "bcc")
_FIELDS = ("date", "subject", *_ADDR_FIELDS, "in_reply_to", "message_id")
_HEADER_OF = {"from_": "From", "sender": "Sender", "reply_to": "Reply-To", "to": "To",
              "cc": "Cc", "bcc": "Bcc"}


def _item_to_json(item: Address | Group) -> list[Any]:
    if isinstance(item, Group):
        return [item.name, [[a.name, a.localpart, a.domain] for a in item.members]]
    return [item.name, item.localpart, item.domain]


def _item_from_json(item: list[Any]) -> Address | Group:
    if len(item) == 2:
        return Group(item[0], tuple(Address(*a) for a in item[1]))
    return Address(*item)


def envelope_of(headers: Headers) -> Envelope:
    """The envelope of a message from its header fields (the first of each field counts)."""
    kw: dict[str, Any] = {
        "date": headers.get("Date"),
        "subject": headers.get("Subject"),
        "in_reply_to": headers.get("In-Reply-To"),
        "message_id": headers.get("Message-ID"),
    }
    for attr, name in _HEADER_OF.items():
        value = headers.get(name)
        kw[attr] = parse_address_list(value) if value is not None else None
    return Envelope(**kw)
