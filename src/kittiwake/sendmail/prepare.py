"""Reading a message from a sendmail caller and completing it for submission.

RFC 6409 §8 lets a submission server add a missing Date and Message-ID and
complete the sender, but a message should leave its author complete: this
adds ``From`` (with the ``-F`` full name), ``Date`` (RFC 5322 §3.6.1) and
``Message-ID`` (§3.6.4) when missing, removes ``Bcc`` (§3.6.3: its addresses
must not be disclosed to the other recipients), and turns bare LF line ends
into CRLF (RFC 5322 §2.1, RFC 5321 §2.3.8). With ``-t`` the recipients are
the addresses of To, Cc and Bcc.
"""

from __future__ import annotations

import email.utils
import re
import secrets
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

from kittiwake.message import encode_words, fold_header, parse_addresses
from kittiwake.message.headers import scan_header_section

__all__ = ["NoRecipients", "Prepared", "normalize_line_ends", "prepare_message",
           "read_message", "split_addresses"]


class NoRecipients(ValueError):
    """Neither the arguments nor (with -t) the header named a recipient."""


@dataclass(frozen=True)
class Prepared:
    """The message as it will be submitted, and its envelope."""

    data: bytes
    mailfrom: str  # "" for the null reverse-path
    recipients: list[str]
    added: list[str]  # header fields added, by name
    removed: list[str]  # header fields removed, by name


def read_message(stream: BinaryIO, ignore_dots: bool) -> bytes:
    """The message on ``stream``. Without ``ignore_dots`` a line holding only "."
    ends it (traditional sendmail behaviour; the rest of the input is not read)."""
    if ignore_dots:
        return stream.read()
    lines: list[bytes] = []
    for line in iter(stream.readline, b""):
        if line.rstrip(b"\r\n") == b".":
            break
        lines.append(line)
    return b"".join(lines)


def normalize_line_ends(data: bytes) -> bytes:
    """Every line ending CRLF (bare LF and bare CR become CRLF), ending with one."""
    out = re.sub(rb"\r\n|\r|\n", b"\r\n", data)
    if out and not out.endswith(b"\r\n"):
        out += b"\r\n"
    return out


def split_addresses(values: Iterable[str]) -> list[str]:
    """Addresses of arguments such as ``a@x``, ``"A" <a@x>, b@y`` (RFC 5322 §3.4)."""
    out: list[str] = []
    for value in values:
        found = [a.addr for a in parse_addresses(value) if a.addr]
        out.extend(found if found else [value.strip()] if value.strip() else [])
    return out


def _dedupe(addrs: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for a in addrs:
        if a.lower() not in seen:
            seen.add(a.lower())
            out.append(a)
    return out


def _display_name(name: str) -> str:
    """A display name: RFC 2047 encoded words when not ASCII (RFC 2047 §5(3)), else
    atoms, or a quoted string when it has specials (RFC 5322 §3.2.4)."""
    name = " ".join(name.split())
    if not name.isascii():
        return encode_words(name)
    if re.fullmatch(r"[A-Za-z0-9!#$%&'*+/=?^`{|}~ -]*", name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def prepare_message(raw: bytes, *, mailfrom: str, recipients: Iterable[str],
                    from_header_recipients: bool, full_name: str | None = None,
                    now: float | None = None, hostname: str | None = None) -> Prepared:
    """Complete ``raw`` for submission and work out the envelope recipients.

    ``recipients`` are the command-line addresses; with
    ``from_header_recipients`` (``-t``) the To, Cc and Bcc addresses are added
    to them (as Postfix does). Raises :class:`NoRecipients` when there are none.
    """
    data = normalize_line_ends(raw)
    headers, body_at, _how = scan_header_section(data)
    envelope = split_addresses(recipients)
    if from_header_recipients:
        for name in ("to", "cc", "bcc"):
            for value in headers.get_all(name):
                envelope.extend(a.addr for a in parse_addresses(value) if a.domain)
    envelope = _dedupe(envelope)
    if not envelope:
        raise NoRecipients("no recipients: give addresses as arguments"
                           + ("" if from_header_recipients else " or use -t")
                           + (" (To, Cc and Bcc had none)" if from_header_recipients else ""))
    added: list[str] = []
    fields: list[str] = []
    if "from" not in headers:
        author = mailfrom or "MAILER-DAEMON"
        value = f"{_display_name(full_name)} <{author}>" if full_name else author
        fields.append(fold_header("From", value))
        added.append("From")
    if "date" not in headers:
        fields.append(fold_header("Date", email.utils.formatdate(now or time.time(),
                                                                  localtime=True)))
        added.append("Date")
    if "message-id" not in headers:
        domain = mailfrom.rpartition("@")[2] if "@" in mailfrom else \
            (hostname or socket.getfqdn())
        fields.append(f"Message-ID: <{secrets.token_hex(12)}@{domain}>\r\n")
        added.append("Message-ID")
    kept = [h for h in headers if h.key != "bcc"]
    removed = ["Bcc"] * (len(headers) - len(kept))
    head = "".join(fields).encode("utf-8") + b"".join(h.raw for h in kept)
    body = data[body_at:]
    # The blank line between header and body (RFC 5322 §2.1); a message without
    # one (no body, or a first line that is not a field) gets it added.
    out = head + b"\r\n" + body
    return Prepared(out, mailfrom, envelope, added, removed)
