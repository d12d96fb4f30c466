"""The FETCH ENVELOPE data item (RFC 9051 §7.5.2) from a parsed message.

Input is the :class:`~kittiwake.message.envelope.Envelope` the message parser
stored with the part tree (no re-parsing); output is an IMAP
:data:`~kittiwake.imap.values.Value` for the response writer::

    (date subject from sender reply-to to cc bcc in-reply-to message-id)

Rules followed (RFC 9051 §7.5.2, the same in RFC 3501 §7.4.2):

- date, subject, in-reply-to and message-id are the header values as
  written (unfolded, encoded words left encoded); NIL when the field is
  absent, the empty string when it is present but empty;
- each address is ``(name adl mailbox host)``; a group is a start marker
  ``(NIL NIL "group name" NIL)``, its members, and the end marker
  ``(NIL NIL NIL NIL)``; an empty list is NIL;
- Sender and Reply-To, when absent or empty, take the value of From
  ("the server sets the corresponding member of the envelope to be the
  same value as the from member").

Malformed addresses still give well-formed structures, as Dovecot does: a
mailbox without a domain gets the host ``MISSING_DOMAIN`` (a NIL host would
turn it into a group marker), a missing local part ``MISSING_MAILBOX``.

The parser keeps display names decoded (RFC 2047). A non-ASCII name goes
out as UTF-8 when the session has UTF-8 on (IMAP4rev2, RFC 9051 §4.3, or
RFC 6855 ``UTF8=ACCEPT``) and as RFC 2047 encoded words otherwise, so an
IMAP4rev1 client gets 7-bit text it knows how to decode. Raw 8-bit header
text (RFC 6532) in the other fields is sent as UTF-8; the response writer
makes it a literal when UTF-8 is off.

Address lists come as :class:`~kittiwake.imap.values.Raw`, already
serialised: the grammar is ``"(" 1*address ")"``, addresses without a space
between them, which a list value (written with spaces) cannot express. So
``utf8`` must be the response writer's setting for the session.

Differences from Dovecot found by tests/imap/test_fetch_dovecot.py and kept:
of repeated fields (RFC 5322 §3.6 allows one) the first counts, where
Dovecot joins the address fields and takes the last Subject; source routes
(RFC 5322 §4.4 obs-route) are not sent as the adl.

Pure functions, no I/O.
"""

from __future__ import annotations

from kittiwake.imap.encode import encode_bytes
from kittiwake.imap.values import Raw, Value
from kittiwake.message.address import Address, AddressList, Group
from kittiwake.message.envelope import Envelope
from kittiwake.message.part import Part
from kittiwake.message.rfc2047 import encode_words

__all__ = ["MISSING_DOMAIN", "MISSING_MAILBOX", "address_list", "envelope", "envelope_of_part",
           "text"]

MISSING_DOMAIN = "MISSING_DOMAIN"
MISSING_MAILBOX = "MISSING_MAILBOX"

_GROUP_END = b"(NIL NIL NIL NIL)"
EMPTY_ENVELOPE: tuple[Value, ...] = (None,) * 10


def text(value: str | None) -> str | None:
    """A header-derived string made safe for IMAP: no NUL, which no IMAP string
    can hold, not even a literal (RFC 9051 §4.3, CHAR8); it becomes U+FFFD."""
    if value is None or "\0" not in value:
        return value
    return value.replace("\0", "\ufffd")


def _name(name: str, utf8: bool) -> str | None:
    if not name:
        return None
    if name.isascii() or utf8:
        return text(name)
    return encode_words(text(name) or "")


def _address(a: Address, utf8: bool) -> tuple[Value, ...]:
    return (_name(a.name, utf8), None, text(a.localpart) or MISSING_MAILBOX,
            text(a.domain) or MISSING_DOMAIN)


def address_list(items: AddressList | None, utf8: bool = False) -> Raw | None:
    """RFC 9051 §7.5.2 address structures for one header field; None (NIL) if empty.

    The grammar is ``"(" 1*address ")"``: addresses follow each other without
    a space, which a plain list value (written with spaces) cannot express,
    so the list comes serialised (``utf8`` decides quoting, as for the
    writer).
    """
    if not items:
        return None
    out: list[bytes] = []
    for item in items:
        if isinstance(item, Group):
            out.append(encode_bytes((None, None, text(item.name), None), utf8))
            out.extend(encode_bytes(_address(a, utf8), utf8) for a in item.members)
            out.append(_GROUP_END)
        else:
            out.append(encode_bytes(_address(item, utf8), utf8))
    return Raw(b"(" + b"".join(out) + b")")


def envelope(env: Envelope | None, utf8: bool = False) -> tuple[Value, ...]:
    """The ENVELOPE value of ``env``; an all-NIL envelope when there is none."""
    if env is None:
        return EMPTY_ENVELOPE
    from_ = address_list(env.from_, utf8)
    sender = address_list(env.sender, utf8) or from_
    reply_to = address_list(env.reply_to, utf8) or from_
    return (
        text(env.date),
        text(env.subject),
        from_,
        sender,
        reply_to,
        address_list(env.to, utf8),
        address_list(env.cc, utf8),
        address_list(env.bcc, utf8),
        text(env.in_reply_to),
        text(env.message_id),
    )


def envelope_of_part(part: Part, utf8: bool = False) -> tuple[Value, ...]:
    """The ENVELOPE of a message (the root part, or a message/rfc822's inner part)."""
    return envelope(part.envelope, utf8)
