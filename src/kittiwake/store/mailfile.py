"""Reading and writing mbox and Maildir, with flags and keywords.

mbox (RFC 4155): messages start at "From " lines; quoted ">From " lines are
unquoted one level (mboxrd). Flags come from the Status (R: \\Seen), X-Status
(A: \\Answered, F: \\Flagged, T: \\Draft, D: \\Deleted) and X-Keywords
headers, which are removed from the stored message and written back on export.

Maildir: files in cur/ and new/; the info suffix ``:2,FLAGS`` gives P
($Forwarded), R (\\Answered), S (\\Seen), T (\\Deleted), D (\\Draft),
F (\\Flagged), and lower-case letters index Dovecot's ``dovecot-keywords``.

Stored messages use CRLF line endings; files on disk use LF.
"""

from __future__ import annotations

import email.utils
import io
import mmap
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from kittiwake.store.model import Flags

MBOX_STATUS_HEADERS = (b"status", b"x-status", b"x-keywords")
_FROM_QUOTED = re.compile(rb"^>(>*From )", re.M)
_FROM_LINE = re.compile(rb"^(>*From )", re.M)

MAILDIR_FLAGS = {"P": "$Forwarded", "R": "\\Answered", "S": "\\Seen", "T": "\\Deleted",
                 "D": "\\Draft", "F": "\\Flagged"}
MAILDIR_LETTERS = {v.lower(): k for k, v in MAILDIR_FLAGS.items()}


@dataclass
class MailItem:
    """One message read from a mail file, ready to store."""

    data: bytes
    flags: Flags = field(default_factory=Flags)
    received: int = 0  # milliseconds since the epoch; 0 = now
    source: str = ""  # where it came from, for messages about skipped items


def to_crlf(data: bytes) -> bytes:
    """Bare LF to CRLF (existing CRLF kept; bare CR left alone)."""
    if b"\n" not in data:
        return data
    if b"\r" not in data:  # the usual case for mbox: one pass instead of two
        return data.replace(b"\n", b"\r\n")
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def to_lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


def _split_headers(data: bytes) -> tuple[list[bytes], bytes]:
    """Header lines (with continuation lines attached) and the rest."""
    end = data.find(b"\n\n")
    if end < 0:
        end = len(data)
        rest = b""
    else:
        rest = data[end + 1:]
    lines: list[bytes] = []
    for line in data[:end].split(b"\n"):
        if line[:1] in (b" ", b"\t") and lines:
            lines[-1] += b"\n" + line
        else:
            lines.append(line)
    return lines, rest


def _mbox_flags(data: bytes) -> tuple[bytes, Flags]:
    """Remove Status/X-Status/X-Keywords headers and turn them into flags."""
    lines, rest = _split_headers(data)
    names: list[str] = []
    kept: list[bytes] = []
    for line in lines:
        name, _, value = line.partition(b":")
        key = name.strip().lower()
        if key not in MBOX_STATUS_HEADERS:
            kept.append(line)
            continue
        text = value.decode("utf-8", "replace").strip()
        if key == b"status":
            if "R" in text:
                names.append("\\Seen")
        elif key == b"x-status":
            names += [flag for letter, flag in (("A", "\\Answered"), ("F", "\\Flagged"),
                                                ("T", "\\Draft"), ("D", "\\Deleted"))
                      if letter in text]
        else:
            names += [k for k in re.split(r"[,\s]+", text) if k]
    if not names and len(kept) == len(lines):
        return data, Flags()
    head = b"\n".join(kept)
    return head + (b"\n" + rest if rest or data.endswith(b"\n\n") else b""), Flags.parse(names)


_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_ASCTIME = re.compile(r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ([A-Z][a-z]{2}) (\d{1,2})"
                      r" (\d{1,2}):(\d{2}):(\d{2}) (\d{4})\Z")


def _from_line_date(line: bytes) -> int:
    """The date of an mbox "From sender date" line, in milliseconds (0 if unreadable)."""
    parts = line.decode("latin-1").split(None, 2)
    if len(parts) < 3:
        return 0
    text = " ".join(parts[2].split()[:5])
    m = _ASCTIME.match(text)  # the usual asctime form, without strptime's cost
    if m and m[1] in _MONTHS and 1 <= int(m[2]) <= 28 and int(m[3]) <= 23 \
            and int(m[4]) <= 59 and int(m[5]) <= 59 and int(m[6]) >= 1900:
        fields = (int(m[6]), _MONTHS[m[1]], int(m[2]), int(m[3]), int(m[4]), int(m[5]),
                  0, 1, -1)
        try:
            return int(time.mktime(fields) - time.timezone) * 1000
        except (OverflowError, ValueError):
            return 0
    try:
        parsed = time.strptime(text, "%a %b %d %H:%M:%S %Y")
        return int(time.mktime(parsed) - time.timezone) * 1000
    except (OverflowError, ValueError):
        return 0


def read_mbox(stream: BinaryIO, source: str = "mbox") -> Iterator[MailItem]:
    """Messages of an mbox file.

    A message starts at a "From " line at the start of the file or after an
    empty line (RFC 4155 §2). Regular files are memory-mapped and scanned
    with ``find``; other streams (archive members) are read line by line.
    """
    try:
        fileno = stream.fileno()
        size = os.fstat(fileno).st_size
    except (AttributeError, OSError, io.UnsupportedOperation):
        size = -1
    if size == 0:
        return
    if size > 0:
        with mmap.mmap(fileno, 0, access=mmap.ACCESS_READ) as mapped:
            yield from _split_mbox(mapped, source)
        return
    yield from _split_mbox(stream.read(), source)


def mbox_spans(data: bytes | mmap.mmap) -> Iterator[tuple[int, int, int]]:
    """(from line start, body start, body end) of each message, without copying.

    RFC 4155 §2: a message starts at a "From " line at the start of the data
    or after an empty line; the body ends before the blank line that precedes
    the next "From " line (kept here, removed by :func:`mbox_item`).
    """
    pos = 0 if data[:5] == b"From " else -1
    if pos < 0:
        start = data.find(b"\n\nFrom ")
        if start < 0:
            return
        pos = start + 2
    end_of_data = len(data)
    while pos < end_of_data:
        line_end = data.find(b"\n", pos)
        if line_end < 0:
            return
        body_start = line_end + 1
        nxt = data.find(b"\n\nFrom ", body_start - 1)
        if nxt < 0:
            yield pos, body_start, end_of_data
            return
        yield pos, body_start, nxt + 1
        pos = nxt + 2


def mbox_item(data: bytes | mmap.mmap, span: tuple[int, int, int], source: str) -> MailItem:
    """The message at ``span`` (from :func:`mbox_spans`), unquoted, with its flags."""
    start, body_start, end = span
    return _mbox_item(bytes(data[body_start:end]), bytes(data[start:body_start - 1]), source)


def _split_mbox(data: bytes | mmap.mmap, source: str) -> Iterator[MailItem]:
    for index, span in enumerate(mbox_spans(data), 1):
        yield mbox_item(data, span, f"{source} #{index}")


def _mbox_item(raw: bytes, from_line: bytes, source: str) -> MailItem:
    if raw.endswith(b"\n\n"):
        raw = raw[:-1]  # the blank line before the next From line is mbox framing
    if b">From " in raw:
        raw = _FROM_QUOTED.sub(rb"\1", raw)
    raw, flags = _mbox_flags(raw)
    return MailItem(to_crlf(raw), flags, _from_line_date(from_line), source)


def write_mbox(out: BinaryIO, data: bytes, flags: Flags, received_ms: int) -> None:
    """Append one message to an mbox file (mboxrd quoting, status headers)."""
    when = time.asctime(time.gmtime((received_ms or time.time() * 1000) / 1000))
    out.write(f"From MAILER-DAEMON {when}\n".encode())
    status = []
    names = set(flags.names())
    if "\\Seen" in names:
        status.append(b"Status: RO\n")
    else:
        status.append(b"Status: O\n")
    xs = "".join(letter for letter, flag in (("A", "\\Answered"), ("F", "\\Flagged"),
                                             ("T", "\\Draft"), ("D", "\\Deleted"))
                 if flag in names)
    if xs:
        status.append(f"X-Status: {xs}\n".encode())
    if flags.keywords:
        status.append(f"X-Keywords: {', '.join(flags.keywords)}\n".encode())
    body = _FROM_LINE.sub(rb">\1", to_lf(data))
    out.write(b"".join(status))
    out.write(body)
    if not body.endswith(b"\n"):
        out.write(b"\n")
    out.write(b"\n")


def read_dovecot_keywords(maildir: Path) -> dict[str, str]:
    """letter -> keyword from a dovecot-keywords file ("0 $Junk" = letter a)."""
    path = maildir / "dovecot-keywords"
    out: dict[str, str] = {}
    try:
        text = path.read_text("utf-8", "replace")
    except OSError:
        return out
    for line in text.splitlines():
        num, _, name = line.partition(" ")
        if num.isdigit() and int(num) < 26 and name:
            out[chr(ord("a") + int(num))] = name.strip()
    return out


def read_maildir(maildir: Path) -> Iterator[MailItem]:
    """Messages of one Maildir (cur/ and new/), oldest first."""
    keywords = read_dovecot_keywords(maildir)
    entries: list[tuple[int, Path, str]] = []
    for sub in ("new", "cur"):
        directory = maildir / sub
        if not directory.is_dir():
            continue
        for path in directory.iterdir():
            if not path.is_file() or path.name.startswith("."):
                continue
            base, _, info = path.name.partition(":2,")
            stamp = base.split(".", 1)[0]
            when = int(stamp) * 1000 if stamp.isdigit() else int(path.stat().st_mtime * 1000)
            entries.append((when, path, info if sub == "cur" else ""))
    entries.sort(key=lambda e: (e[0], e[1].name))
    for when, path, info in entries:
        names = [MAILDIR_FLAGS[c] for c in info if c in MAILDIR_FLAGS]
        names += [keywords[c] for c in info if c in keywords]
        yield MailItem(to_crlf(path.read_bytes()), Flags.parse(names), when, str(path))


def write_maildir(maildir: Path, data: bytes, flags: Flags, received_ms: int, unique: str,
                  keyword_letters: dict[str, str]) -> Path:
    """Write one message into cur/ with its flags; keywords get letters as needed."""
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    letters = [MAILDIR_LETTERS[n.lower()] for n in flags.names() if n.lower() in MAILDIR_LETTERS]
    for keyword in flags.keywords:
        if keyword.lower() in MAILDIR_LETTERS:
            continue
        letter = keyword_letters.get(keyword)
        if letter is None and len(keyword_letters) < 26:
            letter = chr(ord("a") + len(keyword_letters))
            keyword_letters[keyword] = letter
        if letter:
            letters.append(letter)
    seconds = (received_ms or int(time.time() * 1000)) // 1000
    name = f"{seconds}.{unique}.kittiwake:2,{''.join(sorted(letters))}"
    path = maildir / "cur" / name
    path.write_bytes(to_lf(data))
    os.utime(path, (seconds, seconds))
    return path


def write_dovecot_keywords(maildir: Path, keyword_letters: dict[str, str]) -> None:
    if not keyword_letters:
        return
    lines = [f"{ord(letter) - ord('a')} {kw}" for kw, letter in
             sorted(keyword_letters.items(), key=lambda kv: kv[1])]
    (maildir / "dovecot-keywords").write_text("\n".join(lines) + "\n")


def format_date(ms: int) -> str:
    return email.utils.formatdate(ms / 1000, usegmt=True)
