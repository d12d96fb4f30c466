"""Hostile and odd report messages: refused cleanly, with a typed reason (never a crash)."""

from __future__ import annotations

import gzip
import io
import time
import zipfile
import zlib

import pytest

from conftest import fixture
from kittiwake.dmarcrpt import Problem, ReportError, parse_report, report_from_message
from kittiwake.dmarcrpt import parse as parse_module
from kittiwake.dmarcrpt.extract import MAX_MESSAGE_SIZE, gunzip, unzip


def mail(payload: bytes, ctype: str, name: str | None = None) -> bytes:
    """A report message with ``payload`` as a base64 attachment."""
    import base64

    disp = f'Content-Disposition: attachment; filename="{name}"\r\n' if name else ""
    b64 = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    return (b"From: reports@receiver.example\r\nTo: dmarc@example.org\r\n"
            b"Subject: Report Domain: example.org Submitter: receiver.example Report-ID: 1\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
            b"--b\r\nContent-Type: text/plain\r\n\r\nreport attached\r\n"
            b"--b\r\nContent-Type: " + ctype.encode() + b"\r\n" + disp.encode() +
            b"Content-Transfer-Encoding: base64\r\n\r\n" + b64 + b"--b--\r\n")


def zipped(entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return out.getvalue()


def refused(data: bytes, problem: Problem) -> ReportError:
    with pytest.raises(ReportError) as caught:
        report_from_message(data)
    assert caught.value.problem is problem, caught.value
    return caught.value


# --- the forms reports arrive in ---------------------------------------------------


def test_gzip_attachment() -> None:
    data = mail(gzip.compress(fixture("google.xml")), "application/gzip",
                "google.com!example.org!1764460800!1764547199.xml.gz")
    assert report_from_message(data).report_metadata.org_name == "google.com"


def test_zip_attachment() -> None:
    data = mail(zipped({"example.org!1.xml": fixture("microsoft.xml")}), "application/zip",
                "r.zip")
    assert report_from_message(data).report_metadata.org_name == "Enterprise Outlook"


def test_octet_stream_with_a_telling_name_and_mislabelled_zip() -> None:
    xml = fixture("yahoo.xml")
    assert report_from_message(mail(gzip.compress(xml), "application/octet-stream",
                                    "x.xml.gz")).report_metadata.org_name == "Yahoo"
    # a zip labelled application/gzip: the content decides
    assert report_from_message(mail(zipped({"a.xml": xml}), "application/gzip",
                                    "a.xml.gz")).report_metadata.org_name == "Yahoo"


def test_xml_body() -> None:
    data = (b"From: r@receiver.example\r\nContent-Type: text/xml\r\n\r\n" +
            fixture("yahoo.xml"))
    assert report_from_message(data).records[0].row.count == 4


def test_message_without_a_report() -> None:
    refused(b"From: a@b.example\r\nSubject: hi\r\n\r\nhello\r\n", Problem.NOT_A_REPORT)


# --- hostile XML -----------------------------------------------------------------------


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<feedback><report_metadata><org_name>&lol9;</org_name></report_metadata></feedback>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE feedback [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<feedback><report_metadata><org_name>&xxe;</org_name></report_metadata></feedback>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE feedback SYSTEM "http://127.0.0.1:1/evil.dtd">
<feedback/>"""


@pytest.mark.parametrize("xml", [BILLION_LAUGHS, XXE, EXTERNAL_DTD],
                         ids=["billion-laughs", "xxe", "external-dtd"])
def test_doctype_and_entities_refused(xml: bytes) -> None:
    with pytest.raises(ReportError) as caught:
        parse_report(xml)
    assert caught.value.problem is Problem.ENTITIES and caught.value.problem.hostile
    refused(mail(gzip.compress(xml), "application/gzip", "r.xml.gz"), Problem.ENTITIES)


def test_undeclared_entity_is_malformed_not_expanded() -> None:
    with pytest.raises(ReportError) as caught:
        parse_report(b"<feedback>&xxe;</feedback>")
    assert caught.value.problem is Problem.MALFORMED


def test_deep_nesting_refused() -> None:
    xml = b"<feedback>" + b"<a>" * 10_000 + b"</a>" * 10_000 + b"</feedback>"
    with pytest.raises(ReportError) as caught:
        parse_report(xml)
    assert caught.value.problem is Problem.TOO_DEEP


def test_huge_xml_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parse_module, "MAX_XML_SIZE", 10_000)
    with pytest.raises(ReportError) as caught:
        parse_report(b"<feedback>" + b" " * 20_000 + b"</feedback>")
    assert caught.value.problem is Problem.TOO_LARGE


def test_huge_message_refused() -> None:
    refused(b"From: a@b.example\r\n\r\n" + b"x" * (MAX_MESSAGE_SIZE + 1), Problem.TOO_LARGE)


def test_malformed_compressed_data() -> None:
    refused(mail(b"\x1f\x8bnot really gzip", "application/gzip", "r.xml.gz"),
            Problem.MALFORMED)
    refused(mail(b"PK\x03\x04 broken zip", "application/zip", "r.zip"), Problem.MALFORMED)
    refused(mail(gzip.compress(b"<feedback>")[:-8], "application/gzip", "r.xml.gz"),
            Problem.MALFORMED)


# --- decompression bombs and archive tricks ----------------------------------------


def test_gzip_bomb_refused_quickly_without_inflating_it_all() -> None:
    bomb = gzip.compress(b"\0" * (200 * 1024 * 1024), compresslevel=9)  # ~200 KiB
    started = time.monotonic()
    err = refused(mail(bomb, "application/gzip", "r.xml.gz"), Problem.BOMB)
    assert "ratio" in str(err)
    assert time.monotonic() - started < 5


def test_zip_bomb_refused() -> None:
    bomb = zipped({"r.xml": b"\0" * (100 * 1024 * 1024)})
    refused(mail(bomb, "application/zip", "r.zip"), Problem.BOMB)


def test_zip_with_lying_sizes_is_stopped_while_reading() -> None:
    data = bytearray(zipped({"r.xml": b"<" * (50 * 1024 * 1024)}))
    # Declare a tiny uncompressed size in the central directory and the local header.
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24:cd + 28] = (100).to_bytes(4, "little")
    data[22:26] = (100).to_bytes(4, "little")
    with pytest.raises(ReportError) as caught:
        unzip(bytes(data))
    assert caught.value.problem in (Problem.BOMB, Problem.MALFORMED)


def test_nested_archives_refused() -> None:
    inner = zipped({"r.xml": fixture("google.xml")})
    refused(mail(zipped({"inner.zip": inner}), "application/zip", "r.zip"), Problem.ARCHIVE)
    refused(mail(zipped({"r.xml": inner}), "application/zip", "r.zip"), Problem.ARCHIVE)
    refused(mail(gzip.compress(gzip.compress(fixture("google.xml"))), "application/gzip",
                 "r.xml.gz"), Problem.ARCHIVE)


@pytest.mark.parametrize("name", ["../../etc/cron.d/x.xml", "/abs.xml", "dir/", "C:\\x.xml"])
def test_zip_path_tricks_refused(name: str) -> None:
    refused(mail(zipped({name: fixture("google.xml")}), "application/zip", "r.zip"),
            Problem.ARCHIVE)


def test_zip_with_two_files_refused() -> None:
    two = zipped({"a.xml": fixture("google.xml"), "b.xml": fixture("yahoo.xml")})
    err = refused(mail(two, "application/zip", "r.zip"), Problem.ARCHIVE)
    assert "2 entries" in str(err)


def test_concatenated_gzip_members_are_one_stream() -> None:
    xml = fixture("google.xml")
    half = len(xml) // 2
    assert gunzip(gzip.compress(xml[:half]) + gzip.compress(xml[half:])) == xml


def test_raw_deflate_is_not_gzip() -> None:
    with pytest.raises(ReportError):
        gunzip(zlib.compress(b"<feedback/>"))
