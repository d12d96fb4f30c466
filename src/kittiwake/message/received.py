"""The Received trace header (RFC 5321 §4.4) and counting it for loop detection.

:func:`received_header` writes ``Received: from HELO (rDNS [IP]) by HOST with
PROTOCOL id ID for <rcpt>; date``, with the "with" keyword from RFC 3848 and
RFC 6531 §3.7.3 and the TLS version and cipher as a comment. Everything that
came from the network (HELO name, recipient) is sanitised so it cannot break
the header's syntax or add header fields.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import enum
import ipaddress
import re
from functools import lru_cache

from kittiwake.message.headers import Headers, fold_header, parse_header_section
from kittiwake.message.params import comment_text


class WithProtocol(enum.StrEnum):
    """RFC 3848 and RFC 6531 §3.7.3 values for the Received "with" clause."""

    SMTP = "SMTP"
    ESMTP = "ESMTP"
    ESMTPA = "ESMTPA"
    ESMTPS = "ESMTPS"
    ESMTPSA = "ESMTPSA"
    LMTP = "LMTP"
    LMTPA = "LMTPA"
    LMTPS = "LMTPS"
    LMTPSA = "LMTPSA"
    UTF8SMTP = "UTF8SMTP"
    UTF8SMTPA = "UTF8SMTPA"
    UTF8SMTPS = "UTF8SMTPS"
    UTF8SMTPSA = "UTF8SMTPSA"
    UTF8LMTP = "UTF8LMTP"
    UTF8LMTPA = "UTF8LMTPA"
    UTF8LMTPS = "UTF8LMTPS"
    UTF8LMTPSA = "UTF8LMTPSA"


def with_protocol(
    *, esmtp: bool = True, tls: bool = False, authenticated: bool = False,
    smtputf8: bool = False, lmtp: bool = False,
) -> WithProtocol:
    """The "with" value for a session: S for TLS, A for authentication (RFC 3848 §2)."""
    if not esmtp and not lmtp:
        return WithProtocol.SMTP  # RFC 5321 §4.4: HELO sessions
    name = ("UTF8" if smtputf8 else "") + ("LMTP" if lmtp else "SMTP" if smtputf8 else "ESMTP")
    name += ("S" if tls else "") + ("A" if authenticated else "")
    return _PROTOCOLS[name]


_PROTOCOLS: dict[str, WithProtocol] = {p.value: p for p in WithProtocol}


_DOMAINISH = re.compile(r"[^\w.\-:\[\]]")
_ATOMISH = re.compile(r"[^\w.\-+=/!#$%&'*?^`{|}~]")
_RCPT_BAD = re.compile(r"[\x00-\x20<>()\\,;\x7f]")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@lru_cache(maxsize=256)
def _clean_domain(text: str) -> str:
    return _DOMAINISH.sub("_", text)[:255] or "unknown"


def _clean_atom(text: str) -> str:
    if text.isascii() and text.isalnum():
        return text  # nothing for _ATOMISH to replace
    return _ATOMISH.sub("_", text)


def format_date(date: dt.datetime) -> str:
    """RFC 5322 §3.3 date-time, as :func:`email.utils.format_datetime` writes it
    (an f-string for UTC, the common case)."""
    if date.tzinfo is not dt.UTC:
        return email.utils.format_datetime(date)
    return (f"{_DAYS[date.weekday()]}, {date.day:02d} {_MONTHS[date.month - 1]} "
            f"{date.year:04d} {date.hour:02d}:{date.minute:02d}:{date.second:02d} +0000")


@lru_cache(maxsize=1024)
def address_literal(ip: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """RFC 5321 §4.1.3: ``[192.0.2.1]`` or ``[IPv6:2001:db8::1]``."""
    try:
        addr = ipaddress.ip_address(str(ip).strip("[]"))
    except ValueError:
        return "[" + _clean_domain(str(ip)).strip("[]") + "]"
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return f"[{addr.ipv4_mapped}]"
        return f"[IPv6:{addr.compressed}]"
    return f"[{addr}]"


def received_header(
    *,
    by: str,
    date: dt.datetime,
    helo: str | None = None,
    ip: str | ipaddress.IPv4Address | ipaddress.IPv6Address | None = None,
    rdns: str | None = None,
    protocol: str = WithProtocol.ESMTP,
    id: str | None = None,
    for_rcpt: str | None = None,
    tls_version: str | None = None,
    tls_cipher: str | None = None,
    comment: str | None = None,
) -> str:
    """A complete, folded ``Received: ...\\r\\n`` field (RFC 5321 §4.4 Stamp).

    ``for_rcpt`` should be given only for single-recipient deliveries (RFC
    5321 §7.2). ``comment`` is extra text shown after the TLS comment (e.g.
    DNSSEC status). A naive ``date`` is taken as UTC.
    """
    parts: list[str] = [f"from {_clean_domain(helo or 'unknown')}"]
    tcp_info: list[str] = []
    if rdns:
        tcp_info.append(_clean_domain(rdns.rstrip(".")))
    if ip is not None:
        tcp_info.append(address_literal(ip))
    if tcp_info:
        parts.append("(" + " ".join(tcp_info) + ")")
    parts.append(f"by {_clean_domain(by)}")
    parts.append(f"with {_clean_atom(str(protocol)) or 'ESMTP'}")
    if tls_version or tls_cipher:
        tls = ", ".join(
            x for x in (comment_text(tls_version or ""),
                        "cipher " + comment_text(tls_cipher) if tls_cipher else "") if x
        )
        parts.append(f"({tls})")
    if comment:
        parts.append(f"({comment_text(comment)})")
    if id:
        parts.append(f"id {_clean_atom(id)}")
    if for_rcpt:
        rcpt = _RCPT_BAD.sub("_", for_rcpt.strip().strip("<>"))
        parts.append(f"for <{rcpt}>")
    if date.tzinfo is None:
        date = date.replace(tzinfo=dt.UTC)
    # The date goes on its own continuation line so it is never split.
    value = " ".join(parts) + ";\r\n\t" + format_date(date)
    return fold_header("Received", value)


def count_received(message: bytes | Headers) -> int:
    """How many Received fields a message has (RFC 5321 §6.3 loop detection)."""
    headers = message if isinstance(message, Headers) else parse_header_section(message)[0]
    return headers.count("Received")
