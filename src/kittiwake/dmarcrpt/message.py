"""The report message that carries an aggregate report (RFC 7489 §7.2.1.1).

Subject ``Report Domain: <policy domain> Submitter: <org> Report-ID: <<id>>``,
a short text part and the gzip-compressed XML as ``application/gzip`` named
``receiver "!" policy-domain "!" begin "!" end ".xml.gz"``. Unsigned: the
caller adds a DKIM-Signature (§7.2.1.1 recommends it).
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
from email.utils import format_datetime

from kittiwake.dmarcrpt.compose import compose_report
from kittiwake.dmarcrpt.model import Feedback

__all__ = ["compress", "report_filename", "report_message", "report_subject"]


def report_filename(receiver: str, report: Feedback) -> str:
    """§7.2.1.1: ``filename = receiver "!" policy-domain "!" begin-timestamp "!"
    end-timestamp [ "!" unique-id ] "." extension``, extension ``xml.gz``."""
    r = report.report_metadata.date_range
    return f"{receiver}!{report.policy_published.domain}!{r.begin}!{r.end}.xml.gz"


def report_subject(submitter: str, report: Feedback) -> str:
    """§7.2.1.1: ``Report Domain: … Submitter: … Report-ID: <…>``."""
    return (f"Report Domain: {report.policy_published.domain} Submitter: {submitter}"
            f" Report-ID: <{report.report_metadata.report_id}>")


def compress(xml: bytes) -> bytes:
    """gzip (RFC 1952) with a fixed mtime, so the same report gives the same bytes."""
    return gzip.compress(xml, compresslevel=9, mtime=0)


def _b64_lines(data: bytes) -> str:
    text = base64.b64encode(data).decode("ascii")
    return "\r\n".join(text[i:i + 76] for i in range(0, len(text), 76))


def report_message(report: Feedback, *, from_address: str, to_addresses: list[str],
                   receiver: str, submitter: str, message_id: str,
                   date: dt.datetime) -> bytes:
    """The whole report message, CRLF line ends, ready for DKIM signing."""
    attachment = compress(compose_report(report))
    name = report_filename(receiver, report)
    boundary = "=_dmarc_" + message_id.split("@", 1)[0].replace(".", "_")[-40:]
    policy_domain = report.policy_published.domain
    r = report.report_metadata.date_range
    period = (f"{dt.datetime.fromtimestamp(r.begin, dt.UTC):%Y-%m-%d %H:%M} to"
              f" {dt.datetime.fromtimestamp(r.end, dt.UTC):%Y-%m-%d %H:%M} UTC")
    text = (f"This is a DMARC aggregate report (RFC 7489) for {policy_domain},\r\n"
            f"covering {period}: {report.message_count} messages from"
            f" {len({x.row.source_ip for x in report.records})} addresses.\r\n")
    lines = [
        f"From: {from_address}",
        f"To: {', '.join(to_addresses)}",
        f"Subject: {report_subject(submitter, report)}",
        f"Date: {format_datetime(date.astimezone(dt.UTC))}",
        f"Message-ID: <{message_id}>",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/mixed; boundary="{boundary}"',
        "",
        "This is a multi-part message in MIME format.",
        "",
        f"--{boundary}",
        'Content-Type: text/plain; charset="us-ascii"',
        "Content-Transfer-Encoding: 7bit",
        "",
        text,
        f"--{boundary}",
        f'Content-Type: application/gzip; name="{name}"',
        "Content-Transfer-Encoding: base64",
        f'Content-Disposition: attachment; filename="{name}"',
        "",
        _b64_lines(attachment),
        "",
        f"--{boundary}--",
        "",
    ]
    return "\r\n".join(lines).encode("ascii")
