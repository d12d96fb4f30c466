"""Finding the report XML in a report message (RFC 7489 §7.2.1.1), with bomb protection.

Reports arrive as an ``application/gzip`` or ``application/zip``
attachment (§7.2.1.1 names gzip; Microsoft and others send zip), sometimes
as plain ``text/xml``/``application/xml``, and sometimes as
``application/octet-stream`` with a telling file name. The first such part
is taken.

Decompression is bounded: at most :data:`~.parse.MAX_XML_SIZE` bytes come
out, and more than :data:`MAX_RATIO` times the compressed size (beyond
:data:`RATIO_FLOOR`) is refused as a bomb, as real XML compresses about
10-50 times (at most :data:`MAX_RATIO`). A zip must hold exactly one regular file with a plain name
ending in ``.xml`` (no directories, ``..``, absolute or drive paths),
stored or deflated, not encrypted; an archive inside an archive is refused.
"""

from __future__ import annotations

import email.parser
import email.policy
import io
import zipfile
import zlib
from email.message import Message

from kittiwake.dmarcrpt.errors import Problem, ReportError
from kittiwake.dmarcrpt.parse import MAX_XML_SIZE

__all__ = ["MAX_MESSAGE_SIZE", "MAX_RATIO", "extract_report_xml", "gunzip", "unzip"]

MAX_MESSAGE_SIZE = 48 * 1024 * 1024
MAX_RATIO = 100
RATIO_FLOOR = 1024 * 1024  # small outputs may compress better (repetitive rows) without harm

GZIP_TYPES = {"application/gzip", "application/x-gzip", "application/gzip-compressed"}
ZIP_TYPES = {"application/zip", "application/x-zip-compressed", "application/x-zip"}
XML_TYPES = {"text/xml", "application/xml"}
_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"


def _check_output(size: int, compressed: int) -> None:
    if size > RATIO_FLOOR and size > compressed * MAX_RATIO:
        raise ReportError(Problem.BOMB, f"decompression ratio above {MAX_RATIO}:1"
                          f" ({compressed} bytes compressed)")
    if size > MAX_XML_SIZE:
        raise ReportError(Problem.TOO_LARGE, f"decompresses to more than {MAX_XML_SIZE}"
                          " bytes")


def _not_archive(data: bytes, what: str) -> bytes:
    if data.startswith(_GZIP_MAGIC) or data.startswith(_ZIP_MAGIC):
        raise ReportError(Problem.ARCHIVE, f"{what} holds another archive")
    return data


def gunzip(data: bytes) -> bytes:
    """Decompress gzip data (RFC 1952), members concatenated, within the limits."""
    out = bytearray()
    rest = data
    while rest:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        chunk = rest
        while chunk:
            try:
                piece = d.decompress(chunk, 256 * 1024)
            except zlib.error as exc:
                raise ReportError(Problem.MALFORMED, f"bad gzip data: {exc}") from None
            out += piece
            _check_output(len(out), len(data))
            chunk = d.unconsumed_tail
        if not d.eof:
            raise ReportError(Problem.MALFORMED, "truncated gzip data")
        rest = d.unused_data.lstrip(b"\x00")
    return _not_archive(bytes(out), "the gzip file")


def _safe_name(name: str) -> bool:
    if not name or "\\" in name or name.startswith("/") or ":" in name:
        return False
    return ".." not in name.split("/") and not name.endswith("/")


def unzip(data: bytes) -> bytes:
    """The one XML file of a zip archive, within the limits."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise ReportError(Problem.MALFORMED, f"bad zip archive: {exc}") from None
    if len(entries) != 1:
        raise ReportError(Problem.ARCHIVE, f"zip archive with {len(entries)} entries,"
                          " expected one file")
    entry = entries[0]
    if not _safe_name(entry.filename):
        raise ReportError(Problem.ARCHIVE, f"zip entry name {entry.filename[:80]!r}"
                          " is a path trick")
    lower = entry.filename.lower()
    if lower.endswith((".zip", ".gz", ".tar", ".tgz")):
        raise ReportError(Problem.ARCHIVE, "the zip archive holds another archive")
    if entry.flag_bits & 0x1:
        raise ReportError(Problem.ARCHIVE, "encrypted zip entry")
    if entry.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ReportError(Problem.ARCHIVE, f"zip compression method {entry.compress_type}")
    _check_output(entry.file_size, max(entry.compress_size, 1))
    out = bytearray()
    try:
        with archive.open(entry) as f:
            while piece := f.read(256 * 1024):
                out += piece
                _check_output(len(out), len(data))  # the declared size may lie
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise ReportError(Problem.MALFORMED, f"bad zip entry: {exc}") from None
    return _not_archive(bytes(out), "the zip file")


def _kind(part: Message) -> str | None:
    ctype = part.get_content_type().lower()
    name = (part.get_filename() or "").lower()
    if ctype in GZIP_TYPES or name.endswith((".gz", ".gzip")):
        return "gzip"
    if ctype in ZIP_TYPES or name.endswith(".zip"):
        return "zip"
    if ctype in XML_TYPES or name.endswith(".xml"):
        return "xml"
    return None


def extract_report_xml(message: bytes) -> bytes:
    """The report XML in a report message; raises :class:`ReportError` saying why not."""
    if len(message) > MAX_MESSAGE_SIZE:
        raise ReportError(Problem.TOO_LARGE, f"message of {len(message)} bytes"
                          f" (limit {MAX_MESSAGE_SIZE})")
    try:
        return _find(message)
    except ReportError:
        raise
    except (ValueError, LookupError, TypeError, IndexError) as exc:  # odd MIME headers
        raise ReportError(Problem.MALFORMED, f"unreadable message: {exc}") from None


def _find(message: bytes) -> bytes:
    parsed = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(message)
    for part in parsed.walk():
        if part.is_multipart():
            continue
        kind = _kind(part)
        if kind is None:
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes) or not payload:
            continue
        # The content decides when it says: generators mislabel zip as gzip and back.
        if payload.startswith(_ZIP_MAGIC) or (kind == "zip" and not
                                              payload.startswith(_GZIP_MAGIC)):
            return unzip(payload)
        if payload.startswith(_GZIP_MAGIC) or kind == "gzip":
            return gunzip(payload)
        return _not_archive(payload, "the XML part")
    raise ReportError(Problem.NOT_A_REPORT, "no gzip, zip or XML report part")
