"""TLSRPT reports in mail (RFC 8460 §5.3): composing the message, finding the report.

A report sent by mail is a ``multipart/report; report-type="tlsrpt"``
(RFC 6522) message with ``TLS-Report-Domain`` and ``TLS-Report-Submitter``
header fields, the subject ``Report Domain: D Submitter: S Report-ID: <ID>``,
a human-readable text part and the report as ``application/tlsrpt+gzip``
(or ``+json``) named as in §5.1.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import secrets

from kittiwake.message.body import decode_body
from kittiwake.message.part import Part, parse
from kittiwake.tlsrpt.report import (
    GZIP_TYPE,
    JSON_TYPE,
    MAX_COMPRESSED,
    NoReport,
    Report,
    ReportTooLarge,
    compose_gzip,
    parse_report,
)


def report_filename(submitter: str, report: Report, policy_domain: str) -> str:
    """§5.1: ``submitter!policy-domain!begin-timestamp!end-timestamp.json.gz``."""
    return (f"{submitter}!{policy_domain}!{int(report.start.timestamp())}"
            f"!{int(report.end.timestamp())}.json.gz")


def compose_message(report: Report, *, policy_domain: str, submitter: str, mail_from: str,
                    to: list[str], now: dt.datetime) -> bytes:
    """The report message (RFC 8460 §5.3), CRLF line ends, not yet DKIM-signed."""
    boundary = "tlsrpt-" + secrets.token_hex(12)
    attachment = base64.encodebytes(compose_gzip(report)).replace(b"\n", b"\r\n")
    filename = report_filename(submitter, report, policy_domain)
    msgid_domain = mail_from.rpartition("@")[2] or submitter
    text = (f"This is an aggregate TLS report (RFC 8460) from {submitter} about mail"
            f" delivered to {policy_domain}\r\nbetween {report.start:%Y-%m-%d %H:%M} and"
            f" {report.end:%Y-%m-%d %H:%M} UTC: {report.total_successful} successful"
            f" and {report.total_failure} failed TLS sessions.\r\n")
    head = [
        f"From: <{mail_from}>",
        "To: " + ", ".join(f"<{a}>" for a in to),
        # RFC 8460 §5.3: the subject names domain, submitter and report id.
        f"Subject: Report Domain: {policy_domain} Submitter: {submitter}"
        f" Report-ID: <{report.report_id}>",
        f"Date: {email.utils.format_datetime(now.astimezone(dt.UTC))}",
        f"Message-ID: <{secrets.token_hex(16)}@{msgid_domain}>",
        "Auto-Submitted: auto-generated",  # RFC 3834 §5: no automatic replies to it
        f"TLS-Report-Domain: {policy_domain}",
        f"TLS-Report-Submitter: {submitter}",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type="tlsrpt"; boundary="{boundary}"',
    ]
    body = [
        "", "This is a multipart message in MIME format.", "",
        f"--{boundary}", "Content-Type: text/plain; charset=us-ascii",
        "Content-Transfer-Encoding: 7bit", "", text,
        f"--{boundary}", f"Content-Type: {GZIP_TYPE}",
        "Content-Transfer-Encoding: base64",
        f'Content-Disposition: attachment; filename="{filename}"', "",
        attachment.decode("ascii"),
        f"--{boundary}--", "",
    ]
    return "\r\n".join(head + body).encode("ascii")


def _report_parts(root: Part) -> list[Part]:
    """Parts holding a report: of the two media types (RFC 8460 §6) anywhere; failing
    that, a part named *.json(.gz) inside a tlsrpt multipart/report (§5.3)."""
    found = [p for p in root.walk() if p.media_type in (GZIP_TYPE, JSON_TYPE)]
    # Some senders label the gzip as application/gzip or octet-stream with a
    # .json.gz name; accept those inside a tlsrpt multipart/report only.
    if not found and root.media_type == "multipart/report" and \
            root.params.get("report-type", "").lower() == "tlsrpt":
        found = [p for p in root.walk() if not p.is_multipart and
                 (p.filename or "").lower().endswith((".json.gz", ".json"))]
    return found


def report_from_message(data: bytes) -> Report:
    """The TLSRPT report in a message; :class:`ReportError` subclasses say why not."""
    root = parse(data)
    parts = _report_parts(root)
    if not parts:
        raise NoReport("no application/tlsrpt+gzip or application/tlsrpt+json part"
                       " (RFC 8460 §5.3)")
    part = parts[0]
    if part.body_size > MAX_COMPRESSED * 2:
        raise ReportTooLarge(f"report part is {part.body_size} bytes")
    body = decode_body(part, data)
    gzipped = part.media_type == GZIP_TYPE or (part.filename or "").lower().endswith(".gz")
    return parse_report(body, gzipped=gzipped)
