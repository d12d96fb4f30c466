"""The MIME part tree of a message (RFC 2045, RFC 2046, RFC 2183, RFC 6532),
with byte offsets into the original data.

:func:`parse` never raises. For every part it records where its header and
body start and end in the original bytes, so BODY[HEADER], BODY[1.2.MIME]
and BODY[1.2] (RFC 9051 §6.4.5) can be served byte-exact from the stored
file, plus everything BODYSTRUCTURE (RFC 9051 §7.5.2) needs. The tree can be
stored with :meth:`Part.to_dict` and read back without re-parsing.

Offsets follow RFC 2046 §5.1.1: the CRLF before a boundary delimiter belongs
to the delimiter, so a part's body ends before it; preamble and epilogue
belong to no child. Malformed mail gets a best-effort tree and a note in
:attr:`Part.defects`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from kittiwake.log import get_logger
from kittiwake.message.envelope import Envelope, envelope_of
from kittiwake.message.filebytes import FileBytes
from kittiwake.message.headers import Headers, parse_header_section, scan_header_section
from kittiwake.message.params import parse_content_type, parse_disposition, strip_comments

logger = get_logger("message")

DEFAULT_MAX_DEPTH = 100
DEFAULT_MAX_PARTS = 10000

# RFC 2045 §6.1: encodings that leave the bytes as they are, so an
# encapsulated message (RFC 2046 §5.2.1) can be parsed in place.
IDENTITY_ENCODINGS = frozenset({"7bit", "8bit", "binary"})
# RFC 2046 §5.2.1 and RFC 6532 §3.7: parts that hold a whole message.
MESSAGE_TYPES = frozenset({("message", "rfc822"), ("message", "global")})
# RFC 2046 §5.1.1: after "--" boundary: "--" (close delimiter), padding, CRLF.
_OBS_FROM = re.compile(rb"From[ \t]*:")
_DELIM_TAIL = re.compile(rb"(--)?[ \t]*(?:\r?\n|\Z)")


class Defect(enum.StrEnum):
    """What was wrong with a part; the tree is still usable."""

    NO_HEADER_SEPARATOR = "no-header-separator"  # header section ended by a non-header line
    TRUNCATED_HEADER = "truncated-header"  # no empty line before the end of the data
    INVALID_CONTENT_TYPE = "invalid-content-type"  # RFC 2045 §5.2: read as text/plain
    NO_BOUNDARY = "no-boundary"  # multipart without a boundary parameter
    BOUNDARY_NOT_FOUND = "boundary-not-found"  # no delimiter line in the body
    NO_CLOSE_DELIMITER = "no-close-delimiter"  # last part runs to the end
    DEPTH_LIMIT = "depth-limit"  # nested too deep: not split further
    PARTS_LIMIT = "parts-limit"  # too many parts: the rest are not split out
    ENCODED_MESSAGE = "encoded-message"  # message/* with base64/QP: not parsed inside
    MBOX_FROM_LINE = "mbox-from-line"  # RFC 4155 "From " line before the header: skipped
    PARSE_ERROR = "parse-error"  # a bug in this parser: the message is one opaque part


@dataclass(eq=False, slots=True)
class Part:
    """One MIME entity. Offsets index the data given to :func:`parse`.

    ``data[header_start:body_start]`` is the header section with its
    terminating empty line (BODY[...MIME], or BODY[HEADER] for a message);
    ``data[body_start:end]`` is the body (BODY[TEXT] / BODY[section]).
    """

    header_start: int
    body_start: int
    end: int
    type: str = "text"
    subtype: str = "plain"
    params: dict[str, str] = field(default_factory=dict)
    id: str | None = None
    description: str | None = None
    encoding: str = "7bit"
    disposition: str | None = None
    disposition_params: dict[str, str] = field(default_factory=dict)
    language: list[str] | None = None
    location: str | None = None
    md5: str | None = None
    lines: int = 0
    parts: list[Part] = field(default_factory=list)
    message: Part | None = None
    envelope: Envelope | None = None
    defects: list[str] = field(default_factory=list)
    headers: Headers = field(default_factory=Headers)

    @property
    def header_size(self) -> int:
        """Octets of the header section, including the empty line."""
        return self.body_start - self.header_start

    @property
    def body_size(self) -> int:
        """Octets of the body, as stored (still transfer-encoded)."""
        return self.end - self.body_start

    @property
    def media_type(self) -> str:
        """``type/subtype``, lowercased."""
        return f"{self.type}/{self.subtype}"

    @property
    def is_multipart(self) -> bool:
        return self.type == "multipart"

    @property
    def is_message(self) -> bool:
        """True for message/rfc822 and message/global parts."""
        return (self.type, self.subtype) in MESSAGE_TYPES

    @property
    def charset(self) -> str | None:
        """The charset parameter, lowercased, if any."""
        cs = self.params.get("charset")
        return cs.strip().lower() if cs else None

    @property
    def filename(self) -> str | None:
        """RFC 2183 §2.3 filename, or the older Content-Type name parameter."""
        return self.disposition_params.get("filename") or self.params.get("name")

    def header_bytes(self, data: bytes) -> bytes:
        return data[self.header_start : self.body_start]

    def body_bytes(self, data: bytes) -> bytes:
        return data[self.body_start : self.end]

    def walk(self) -> Iterator[Part]:
        """This part and all below it, depth first, encapsulated messages included."""
        stack = [self]
        while stack:
            p = stack.pop()
            yield p
            if p.message is not None:
                stack.append(p.message)
            stack.extend(reversed(p.parts))

    def section(self, spec: str | Sequence[int]) -> Part | None:
        """The part an IMAP section number names (RFC 9051 §6.4.5), from a message.

        ``"1.2"`` or ``[1, 2]``. For a non-multipart message, part 1 is the
        message itself (its body). A message/rfc822 part followed by more
        numbers continues in the encapsulated message. None if it does not exist.
        """
        if isinstance(spec, str):
            words = spec.split(".") if spec else []
            # RFC 9051 §9: section-part = nz-number *("." nz-number), ASCII digits
            # (int() alone would also take "٢", " 2" or "+2").
            if not all(w.isascii() and w.isdigit() for w in words):
                return None
            nums = [int(w) for w in words]
        else:
            nums = list(spec)
        cur: Part = self
        in_message = True
        for i, n in enumerate(nums):
            if i > 0:
                if cur.message is not None:
                    cur, in_message = cur.message, True
                else:
                    in_message = False
            if cur.is_multipart:
                if not 1 <= n <= len(cur.parts):
                    return None
                cur = cur.parts[n - 1]
            elif not (in_message and n == 1):
                return None
        return cur

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form of the tree (without header fields: re-read them from data)."""
        d: dict[str, Any] = {
            "o": [self.header_start, self.body_start, self.end],
            "t": [self.type, self.subtype],
            "lines": self.lines,
            "enc": self.encoding,
        }
        for key, value in (
            ("params", self.params), ("id", self.id), ("desc", self.description),
            ("disp", self.disposition), ("dparams", self.disposition_params),
            ("lang", self.language), ("loc", self.location), ("md5", self.md5),
            ("defects", self.defects),
        ):
            if value:
                d[key] = value
        if self.parts:
            d["parts"] = [p.to_dict() for p in self.parts]
        if self.message is not None:
            d["msg"] = self.message.to_dict()
        if self.envelope is not None:
            d["env"] = self.envelope.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], data: bytes | None = None) -> Part:
        """Rebuild a tree from :meth:`to_dict`; give ``data`` to re-read the header fields."""
        hs, bs, end = d["o"]
        p = cls(
            hs, bs, end, d["t"][0], d["t"][1], dict(d.get("params", {})), d.get("id"),
            d.get("desc"), d.get("enc", "7bit"), d.get("disp"), dict(d.get("dparams", {})),
            d.get("lang"), d.get("loc"), d.get("md5"), d.get("lines", 0),
            [cls.from_dict(c, data) for c in d.get("parts", ())],
            cls.from_dict(d["msg"], data) if "msg" in d else None,
            Envelope.from_dict(d["env"]) if "env" in d else None,
            list(d.get("defects", ())),
        )
        if data is not None:
            p.headers = parse_header_section(data, hs, bs)[0]
        return p


def _count_lines(data: bytes | FileBytes, start: int, end: int) -> int:
    """Text lines in ``data[start:end]``: line ends, plus an unterminated last line."""
    if end <= start:
        return 0
    n = data.count(b"\n", start, end)
    if data[end - 1] != 0x0A:
        n += 1
    return n


class _Parser:
    __slots__ = ("data", "max_depth", "max_parts", "nparts")

    def __init__(self, data: bytes | FileBytes, max_depth: int, max_parts: int) -> None:
        self.data = data
        self.max_depth = max_depth
        self.max_parts = max_parts
        self.nparts = 0

    def part(self, start: int, end: int, depth: int, digest: bool, message: bool) -> Part:
        data = self.data
        self.nparts += 1
        headers, body, how = scan_header_section(data, start, end)
        p = Part(start, body, end, headers=headers)
        if how == "line":
            p.defects.append(Defect.NO_HEADER_SEPARATOR)
        elif how == "end" and end > start:
            p.defects.append(Defect.TRUNCATED_HEADER)
        self._fields(p, headers, digest)
        if p.is_multipart:
            self._split(p, depth)
        elif p.is_message:
            if p.encoding not in IDENTITY_ENCODINGS:
                p.defects.append(Defect.ENCODED_MESSAGE)
            elif depth >= self.max_depth:
                p.defects.append(Defect.DEPTH_LIMIT)
            elif self.nparts >= self.max_parts:
                p.defects.append(Defect.PARTS_LIMIT)
            else:
                inner = self.part(p.body_start, p.end, depth + 1, False, True)
                p.message = inner
        if message:
            p.envelope = envelope_of(headers)
        p.lines = _count_lines(data, p.body_start, p.end)
        return p

    def _fields(self, p: Part, headers: Headers, digest: bool) -> None:
        ct = headers.get("Content-Type")
        mtype, subtype, params = parse_content_type(ct)
        if not mtype:
            if ct is not None:
                p.defects.append(Defect.INVALID_CONTENT_TYPE)
                mtype, subtype = "text", "plain"
            elif digest:  # RFC 2046 §5.1.5: the default in multipart/digest
                mtype, subtype = "message", "rfc822"
            else:  # RFC 2045 §5.2
                mtype, subtype = "text", "plain"
        p.type, p.subtype, p.params = mtype, subtype, params
        cte = headers.get("Content-Transfer-Encoding")
        if cte is not None:
            p.encoding = cte.split("(")[0].strip().strip('"').lower() or "7bit"
        p.id = headers.get("Content-ID")
        p.description = headers.get("Content-Description")
        disp = headers.get("Content-Disposition")
        if disp is not None:
            p.disposition, p.disposition_params = parse_disposition(disp)
        lang = headers.get("Content-Language")
        if lang is not None:  # RFC 3282 §2: a comma-separated list of language tags
            p.language = [t.strip() for t in strip_comments(lang).split(",") if t.strip()]
        p.location = headers.get("Content-Location")
        p.md5 = headers.get("Content-MD5")

    def _split(self, p: Part, depth: int) -> None:
        """RFC 2046 §5.1.1: split a multipart body at its boundary delimiter lines."""
        boundary = p.params.get("boundary")
        if not boundary:
            p.defects.append(Defect.NO_BOUNDARY)
            return
        if depth >= self.max_depth:
            p.defects.append(Defect.DEPTH_LIMIT)
            return
        data = self.data
        start, end = p.body_start, p.end
        needle = _boundary_bytes(boundary, data, start, end)
        digest = p.subtype == "digest"
        child_start = -1
        closed = False
        pos = start
        while True:
            i = data.find(needle, pos, end)
            if i < 0:
                break
            pos = i + 1
            # A delimiter line: at a line start, "--" boundary, "--" for the close
            # delimiter, transport padding, then the line end (or the end of the data).
            if i > start and data[i - 1] != 0x0A:
                continue
            m = _delim_tail(data, i + len(needle), end)
            if m is None:
                continue
            pos = m[0]
            if child_start >= 0:
                child_end = i
                if child_end > start and data[child_end - 1] == 0x0A:
                    child_end -= 1
                    if child_end > start and data[child_end - 1] == 0x0D:
                        child_end -= 1
                child_end = max(child_end, child_start)
                p.parts.append(self.part(child_start, child_end, depth + 1, digest, False))
            if m[1]:
                closed = True
                break
            if self.nparts >= self.max_parts:
                p.defects.append(Defect.PARTS_LIMIT)
                closed = True
                break
            child_start = m[0]
        if not closed and child_start >= 0:
            p.parts.append(self.part(child_start, end, depth + 1, digest, False))
        if not closed:
            p.defects.append(Defect.NO_CLOSE_DELIMITER if p.parts else Defect.BOUNDARY_NOT_FOUND)


def _delim_tail(data: bytes | FileBytes, pos: int, end: int) -> tuple[int, bool] | None:
    """After ``--boundary`` at ``pos``: where the delimiter line ends and whether it is
    the close delimiter (RFC 2046 §5.1.1), or None when it is no delimiter line. On a
    :class:`FileBytes` only the line's tail is read (longer while padding goes on)."""
    if isinstance(data, bytes):
        m = _DELIM_TAIL.match(data, pos, end)
        return None if m is None else (m.end(), bool(m.group(1)))
    size = 256
    while True:
        stop = min(end, pos + size)
        tail = data[pos:stop]
        m = _DELIM_TAIL.match(tail)
        if m is None:
            return None
        if m.end() < len(tail) or stop >= end:
            return pos + m.end(), bool(m.group(1))
        size *= 4  # the match ran to the window's end: padding may go on


def _boundary_bytes(boundary: str, data: bytes | FileBytes, start: int, end: int) -> bytes:
    """``--boundary`` as bytes in the body: UTF-8 (RFC 6532), else as a legacy header had it."""
    first = b""
    for codec in ("utf-8", "cp1252", "latin-1"):
        try:
            needle = b"--" + boundary.encode(codec)
        except UnicodeError:
            continue
        if data.find(needle, start, end) >= 0:
            return needle
        first = first or needle
    return first or b"--" + boundary.encode("utf-8", "replace")


def parse(
    data: bytes | FileBytes,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_parts: int = DEFAULT_MAX_PARTS,
) -> Part:
    """The part tree of the message in ``data``; never raises for any bytes.

    A leading mbox "From " line (RFC 4155) is skipped: the root's
    ``header_start`` is then after it. ``max_depth`` bounds nesting
    (multiparts and encapsulated messages), ``max_parts`` the number of
    parts; beyond them parts are not split further (their bytes are still
    in the enclosing part's body).
    """
    if not isinstance(data, bytes | FileBytes):
        data = bytes(data)
    parser = _Parser(data, max(0, max_depth), max(1, max_parts))
    try:
        start = 0
        # RFC 4155 mbox separator left in by an import (but not "From :" obs-syntax).
        if data.startswith(b"From ") and not _OBS_FROM.match(data[:64]):
            nl = data.find(b"\n")
            start = len(data) if nl < 0 else nl + 1
        root = parser.part(start, len(data), 0, False, True)
        if start:
            root.defects.append(Defect.MBOX_FROM_LINE)
        return root
    except RecursionError:  # only with a max_depth beyond the interpreter's stack
        pass
    except Exception:  # a bug here must not cost a message: log it, keep the bytes
        logger.exception("message parser failed", size=len(data))
    try:
        root = _Parser(data, 0, 1).part(0, len(data), 0, False, True)
    except Exception:
        root = Part(0, 0, len(data), "application", "octet-stream")
    root.defects.append(Defect.PARSE_ERROR)
    return root
