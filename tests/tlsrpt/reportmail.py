"""Report messages laid out as Google and Microsoft send them (RFC 8460 §5.3)."""

from __future__ import annotations

import base64
import gzip
from pathlib import Path

DATA = Path(__file__).parent / "data"


def fixture(name: str) -> bytes:
    return (DATA / name).read_bytes()


def google_message(report: bytes | None = None, to: str = "tls-reports@example.org") -> bytes:
    """Google's layout: report-type after the boundary, name= and filename=, base64 in
    76-character lines, a short text part."""
    attachment = base64.encodebytes(gzip.compress(report or fixture("google.json")))
    return (
        "From: noreply-smtp-tls-reporting@google.com\r\n"
        f"To: {to}\r\n"
        "Subject: Report Domain: example.org Submitter: google.com"
        " Report-ID: <2026.11.29T00.00.00Z+example.org@google.com>\r\n"
        "TLS-Report-Domain: example.org\r\n"
        "TLS-Report-Submitter: google.com\r\n"
        "Message-ID: <000000000000a1b2c3@google.com>\r\n"
        "Date: Sun, 30 Nov 2026 09:10:11 -0800\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; boundary="000000000000f00d"; report-type=tlsrpt\r\n'
        "\r\n"
        "--000000000000f00d\r\n"
        'Content-Type: text/plain; charset="UTF-8"; format=flowed; delsp=yes\r\n'
        "\r\n"
        "This is an aggregate TLS report from google.com\r\n"
        "--000000000000f00d\r\n"
        'Content-Type: application/tlsrpt+gzip; \r\n'
        '\tname="google.com!example.org!1795910400!1795996799!001.json.gz"\r\n'
        'Content-Disposition: attachment; \r\n'
        '\tfilename="google.com!example.org!1795910400!1795996799!001.json.gz"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        + attachment.decode().replace("\n", "\r\n")
        + "--000000000000f00d--\r\n").encode()


def microsoft_message(report: bytes | None = None) -> bytes:
    """Microsoft's layout: quoted report-type first, a GUID-named attachment, an HTML
    and a text part in a multipart/alternative before it."""
    attachment = base64.b64encode(gzip.compress(report or fixture("microsoft.json")))
    lines = [attachment[i:i + 76].decode() for i in range(0, len(attachment), 76)]
    return (
        "From: TLSRPT <tlsrpt-noreply@microsoft.com>\r\n"
        "To: <tls-reports@example.org>\r\n"
        "Subject: Report Domain: example.org Submitter: microsoft.com"
        " Report-ID: <133773120000000000+example.org>\r\n"
        "TLS-Report-Domain: example.org\r\n"
        "TLS-Report-Submitter: microsoft.com\r\n"
        "Date: Mon, 30 Nov 2026 05:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type="tlsrpt";\r\n'
        '\tboundary="_000_MS_TLSRPT_"\r\n'
        "\r\n"
        "--_000_MS_TLSRPT_\r\n"
        'Content-Type: multipart/alternative; boundary="_001_alt_"\r\n'
        "\r\n"
        "--_001_alt_\r\n"
        "Content-Type: text/plain; charset=\"us-ascii\"\r\n\r\n"
        "This is a TLS report from Microsoft.\r\n"
        "--_001_alt_\r\n"
        "Content-Type: text/html; charset=\"us-ascii\"\r\n\r\n"
        "<html><body>This is a TLS report from Microsoft.</body></html>\r\n"
        "--_001_alt_--\r\n"
        "\r\n"
        "--_000_MS_TLSRPT_\r\n"
        "Content-Type: application/tlsrpt+gzip;\r\n"
        '\tname="microsoft.com!example.org!1795910400!1795996799!'
        'a3c1e0ff-0000-4000-8000-1234567890ab.json.gz"\r\n'
        "Content-Description: microsoft.com!example.org!1795910400!1795996799.json.gz\r\n"
        'Content-Disposition: attachment; filename="microsoft.com!example.org!1764374400'
        '!1764460799!a3c1e0ff-0000-4000-8000-1234567890ab.json.gz"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        + "\r\n".join(lines) + "\r\n"
        "\r\n"
        "--_000_MS_TLSRPT_--\r\n").encode()
