"""Composing a Delivery Status Notification message (RFC 3464, RFC 6522, RFC 6533).

:func:`compose` builds the whole message, pure code (no clock, no I/O):
``multipart/report; report-type=delivery-status`` (RFC 6522 §3) with

1. ``text/plain``: what failed or is delayed, for which recipients, the
   remote server's reply verbatim with its host, and what happens next;
2. ``message/delivery-status`` (RFC 3464 §2, see :mod:`kittiwake.dsn.report`);
3. the original message: ``message/rfc822``, or only its header as
   ``text/rfc822-headers`` when the sender asked for RET=HDRS (RFC 3461
   §4.3), when the notice reports no failure (delayed, relayed: unless
   RET=FULL) or when the message body is larger than ``max_original_body``.

When the original transaction used SMTPUTF8 and something in it is not
ASCII, the RFC 6533 forms are used: ``message/global-delivery-status``,
``message/global`` and ``message/global-headers``; the DSN must then be
sent with SMTPUTF8 too (:attr:`DSN.smtputf8`).

RFC 5321 §6.1 / RFC 3461 §6.2: no DSN is ever made for a message with the
null reverse-path, and RFC 3461 §4.1 NOTIFY is respected per recipient
(:func:`kittiwake.dsn.report.wants_notice`): :func:`compose` returns None
when nothing is left to report. The DSN goes out with ``MAIL FROM:<>``
and carries ``Auto-Submitted: auto-replied`` (RFC 3834 §5).
"""

from __future__ import annotations

import binascii
import secrets
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from kittiwake.dsn.report import (
    Action,
    RecipientReport,
    ascii_domain,
    clean,
    date,
    delivery_status,
    wants_notice,
)
from kittiwake.message.headers import fold_header, parse_header_section
from kittiwake.smtp.params import Ret

MAX_ORIGINAL_BODY = 100 * 1024  # octets of original body returned in full
WIDTH = 76
MAILER_DAEMON = "MAILER-DAEMON"
DISPLAY_NAME = "Mail Delivery Subsystem"

SUBJECTS = {
    Action.FAILED: "Undelivered Mail Returned to Sender",
    Action.DELAYED: "Delayed Mail (still being retried)",
    Action.DELIVERED: "Successful Mail Delivery Report",
    Action.RELAYED: "Successful Mail Delivery Report",
    Action.EXPANDED: "Successful Mail Delivery Report",
}
_ORDER = (Action.FAILED, Action.DELAYED, Action.DELIVERED, Action.RELAYED, Action.EXPANDED)


@dataclass(frozen=True, slots=True)
class DSN:
    """A composed DSN, to be sent with the null reverse-path to ``recipient``.

    ``smtputf8``: it uses RFC 6533 forms and needs an SMTPUTF8 transaction;
    ``eightbit``: it contains 8-bit octets (BODY=8BITMIME, RFC 6152).
    """

    recipient: str
    data: bytes
    subject: str
    message_id: str
    reports: tuple[RecipientReport, ...]
    smtputf8: bool
    eightbit: bool
    headers_only: bool


def compose(*, hostname: str, mail_from: str, recipients: Sequence[RecipientReport],
            original: bytes | None, now: datetime, arrival: datetime | None = None,
            envid: str | None = None, ret: Ret | None = None, smtputf8: bool = False,
            max_original_body: int = MAX_ORIGINAL_BODY, intro: str = "",
            message_id: str | None = None, boundary: str | None = None) -> DSN | None:
    """The DSN for ``recipients`` of a message from ``mail_from``, or None.

    None when ``mail_from`` is empty (RFC 5321 §6.1: never a DSN about a
    DSN or other null-sender mail) or no recipient wants a notice (RFC 3461
    §4.1 NOTIFY). ``original`` is the message as queued (None or empty: no
    third part); ``arrival`` when it was received (Arrival-Date); ``envid``
    and ``ret`` the RFC 3461 §4.3/§4.4 MAIL parameters; ``intro`` an
    optional first paragraph (e.g. "removed by the administrator").
    """
    if not mail_from.strip():
        return None
    reports = tuple(r for r in recipients if wants_notice(r))
    if not reports:
        return None
    original = original or b""
    utf8 = smtputf8 and _needs_utf8(mail_from, reports, original)
    hostname = ascii_domain(clean(hostname, utf8=False, limit=255)) or "localhost"
    main = min((r.action for r in reports), key=_ORDER.index)
    subject = SUBJECTS[main]
    message_id = message_id or f"{secrets.token_hex(12)}@{hostname}"
    boundary = boundary or f"=_kittiwake-dsn-{secrets.token_hex(12)}"

    headers_only = False
    reason = ""
    if original:
        header_section, body_start = parse_header_section(original)
        body_size = len(original) - body_start
        if ret is Ret.HDRS:
            headers_only, reason = True, "you asked for the header only (RET=HDRS)"
        elif main is not Action.FAILED and ret is not Ret.FULL:
            # RFC 3461 §4.3: without RET the MTA chooses; the content goes back in full
            # only when it did not reach everyone (a failure).
            headers_only = True
            reason = ("the message is still on its way" if main is Action.DELAYED
                      else "the message was delivered")
        elif body_size > max_original_body:
            headers_only = True
            reason = f"the message is large ({_size(len(original))})"
    text = human_text(hostname=hostname, reports=reports, main=main, intro=intro,
                      has_original=bool(original), headers_only=headers_only, reason=reason)
    status = delivery_status(reporting_mta=hostname, recipients=reports, arrival=arrival,
                             envid=envid, utf8=utf8)

    parts: list[bytes] = [_text_part(text, utf8)]
    status_type = "message/global-delivery-status" if utf8 else "message/delivery-status"
    status_bytes = status.encode("utf-8") if utf8 else status.encode("ascii", "replace")
    parts.append(_part(status_type, status_bytes, "Delivery report"))
    if original:
        if headers_only:
            content = _crlf_end(header_section.raw())
            ctype = "message/global-headers" if utf8 else "text/rfc822-headers"
            parts.append(_part(ctype, content, "Header of the original message"))
        else:
            ctype = "message/global" if utf8 else "message/rfc822"
            parts.append(_part(ctype, _crlf_end(original), "Original message"))

    to = clean(mail_from, utf8=True, limit=500)
    if not utf8 and not to.isascii():
        local, _, domain = to.rpartition("@")
        to = f"{local}@{ascii_domain(domain)}"
    report_type = "global-delivery-status" if utf8 else "delivery-status"
    head = "".join([
        fold_header("From", f"{DISPLAY_NAME} <{MAILER_DAEMON}@{hostname}>"),
        fold_header("To", f"<{to}>"),
        fold_header("Subject", subject),
        fold_header("Date", date(now)),
        fold_header("Message-ID", f"<{message_id}>"),
        fold_header("Auto-Submitted", "auto-replied"),  # RFC 3834 §5
        fold_header("MIME-Version", "1.0"),
        # RFC 6522 §3: report-type names the subtype of the second part.
        fold_header("Content-Type", f"multipart/report; report-type={report_type};"
                                    f' boundary="{boundary}"'),
    ])
    body = b"".join(b"--" + boundary.encode("ascii") + b"\r\n" + p + b"\r\n" for p in parts)
    body += b"--" + boundary.encode("ascii") + b"--\r\n"
    preamble = b"This is a MIME-encapsulated delivery status notification.\r\n\r\n"
    data = head.encode("utf-8") + b"\r\n" + preamble + body
    return DSN(recipient=mail_from, data=data, subject=subject, message_id=message_id,
               reports=reports, smtputf8=utf8, eightbit=not data.isascii(),
               headers_only=headers_only)


def _needs_utf8(mail_from: str, reports: Sequence[RecipientReport], original: bytes) -> bool:
    """RFC 6533 forms only when something is not ASCII (else the plain DSN is more widely read)."""
    if not mail_from.isascii():
        return True
    for r in reports:
        if not r.address.isascii() or (r.orcpt and not r.orcpt.address.isascii()):
            return True
        if r.error is not None and not r.error.text.isascii():
            return True
    if original:
        headers, _ = parse_header_section(original)
        return not headers.raw().isascii()
    return False


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB" if n >= 1024 * 1024 else f"{n // 1024} KiB"


def _crlf_end(data: bytes) -> bytes:
    return data if data.endswith(b"\r\n") else data.rstrip(b"\r\n") + b"\r\n"


def _part(ctype: str, content: bytes, description: str) -> bytes:
    cte = "7bit" if content.isascii() else "8bit"
    head = (fold_header("Content-Type", ctype) + fold_header("Content-Description", description)
            + fold_header("Content-Transfer-Encoding", cte))
    return head.encode("ascii") + b"\r\n" + _strip_line_end(content)


def _strip_line_end(content: bytes) -> bytes:
    """The CRLF before a boundary belongs to the delimiter (RFC 2046 §5.1.1): drop one."""
    if content.endswith(b"\r\n"):
        return content[:-2]
    return content[:-1] if content.endswith(b"\n") else content


def _text_part(text: str, utf8: bool) -> bytes:
    """text/plain; UTF-8 text as 8bit in SMTPUTF8 DSNs, else quoted-printable (RFC 2045 §6.7)."""
    raw = text.encode("utf-8")
    if raw.isascii() or utf8:
        cte, content = ("7bit" if raw.isascii() else "8bit"), raw
    else:
        lines = [binascii.b2a_qp(line, istext=False).replace(b"=\n", b"=\r\n")
                 for line in raw.split(b"\r\n")]
        cte, content = "quoted-printable", b"\r\n".join(lines)
    head = (fold_header("Content-Type", "text/plain; charset=utf-8")
            + fold_header("Content-Description", "Notification")
            + fold_header("Content-Transfer-Encoding", cte))
    return head.encode("ascii") + b"\r\n" + _strip_line_end(content)


def _para(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent,
                         break_long_words=False, break_on_hyphens=False) or [""]


def _verbatim(text: str, indent: str) -> list[str]:
    """The remote reply as it was, line by line (long lines cut to stay under 998 octets)."""
    out: list[str] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = clean(line)
        while len(line) > 900:
            out.append(indent + line[:900])
            line = line[900:]
        if line:
            out.append(indent + line)
    return out


def _recipient_lines(r: RecipientReport) -> list[str]:
    addr = clean(r.address, limit=500)
    lines = [f"  <{addr}>"]
    if r.orcpt is not None and clean(r.orcpt.address) != addr:
        lines.append(f"    (originally addressed to {clean(r.orcpt.address, limit=500)})")
    err = r.error
    if err is not None and (err.code or err.text):
        reply = " ".join(x for x in (str(err.code) if err.code else "",
                                     err.enhanced if err.code and err.enhanced
                                     and not err.text.startswith(err.enhanced) else "",
                                     err.text) if x)
        if err.code:
            lines.append(f"    The mail server {clean(err.host)} replied:" if err.host
                         else "    The remote mail server replied:")
            lines += _verbatim(reply, "      ")
        else:
            # No server said this: kittiwake found it or decided it (DeliveryError.ours).
            lines.append("    This mail system (kittiwake) decided this itself; it is not"
                         " a reply")
            lines.append("    from a receiving mail server:")
            lines += _verbatim(reply, "      ")
    if r.note:
        lines += _para(r.note, "    ")
    if r.attempts or r.last_attempt is not None:
        bits = []
        if r.attempts:
            bits.append(f"{r.attempts} attempt{'s' if r.attempts != 1 else ''}")
        if r.last_attempt is not None:
            bits.append(f"last attempt {date(r.last_attempt)}")
        lines.append("    (" + ", ".join(bits) + ")")
    return lines


_HEADINGS = {
    Action.FAILED: ("Your message could not be delivered to the following recipients. The"
                    " mail system gave up: it will not try again."),
    Action.DELAYED: ("Your message has not been delivered yet to the following recipients."
                     " The mail system will keep trying."),
    Action.DELIVERED: "Your message was delivered to the following recipients.",
    Action.RELAYED: ("Your message was passed on to the mail servers of the following"
                     " recipients. Those servers do not send delivery notifications, so this"
                     " is the last report you will get about them."),
    Action.EXPANDED: ("Your message was delivered to the following addresses, which forward"
                      " it further."),
}


def human_text(*, hostname: str, reports: Sequence[RecipientReport], main: Action,
               intro: str = "", has_original: bool = True, headers_only: bool = False,
               reason: str = "") -> str:
    """The human-readable part (RFC 6522 §3 first part), CRLF line ends."""
    lines = [f"This is the mail system at {hostname}.", ""]

    def para(text: str) -> None:
        lines.extend(_para(text))
        lines.append("")

    if intro:
        para(intro)
    for action in _ORDER:
        group = [r for r in reports if r.action is action]
        if not group:
            continue
        para(_HEADINGS[action])
        for r in group:
            lines.extend(_recipient_lines(r))
            lines.append("")
        if action is Action.DELAYED:
            until = [r.will_retry_until for r in group if r.will_retry_until is not None]
            if until:
                para(f"The mail system will retry until about {date(max(until))}. You do"
                     " not need to send the message again; if it still cannot be delivered"
                     " by then, you will get another notice.")
            else:
                para("You do not need to send the message again; if it cannot be delivered,"
                     " you will get another notice.")
    if main is Action.FAILED:
        failed = [r for r in reports if r.action is Action.FAILED]
        if any(r.error is not None and r.error.code for r in failed):
            para("Please check the recipient addresses. The replies above come from the"
                 " receiving mail servers and usually say what went wrong.")
        elif any(r.error is not None and r.error.text for r in failed):
            para("The reasons above were found by this mail system, not by the receiving"
                 " mail servers.")
    if has_original:
        if headers_only:
            para(f"Only the header of your message is included below, because {reason}.")
        else:
            para("Your message is included below.")
    return "\r\n".join(lines).rstrip("\r\n") + "\r\n"
