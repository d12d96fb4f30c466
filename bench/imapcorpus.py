"""A deterministic mailbox for the IMAP benchmark (``bench.imap``), with planted search hits.

``Corpus(count, seed)`` describes ``count`` varied messages; ``corpus.message(i)``
builds message ``i`` from ``(seed, i)`` alone, so the same arguments give the
same bytes on every run and machine, and a large corpus is streamed to disk
(:meth:`Corpus.write_maildir`) without being held in memory.

What varies, roughly like real mail:

- size: 1-200 KiB, log-normal around 6 KiB with a tail of large ones
  (attachments);
- structure (RFC 2045/2046): text/plain, text/html, multipart/alternative
  with an HTML version, multipart/mixed with base64 attachments (some with
  a nested alternative), and forwarded message/rfc822 parts;
- transfer encodings: 7bit, 8bit, quoted-printable, base64; charsets
  us-ascii, utf-8 and iso-8859-1;
- headers: RFC 2047 encoded subjects and display names (utf-8 and
  iso-8859-1, B and Q encodings) next to plain ASCII ones, Cc, Date in
  several zones, and Message-ID / In-Reply-To / References threads.

The marker word :data:`MARKER` (matched case-insensitively, as IMAP SEARCH
does, RFC 9051 §6.4.4) occurs in exactly ``hits`` messages and nowhere else,
each in one place only (:class:`Place`):

- ``SUBJECT``: only in an encoded Subject (B encoding, or Q with every
  octet as ``=XX``), so the raw header bytes do not contain it;
- ``BASE64``: only inside a base64-encoded text/plain body;
- ``FROM``: only in the From display name (plain or B-encoded);
- ``TEXT``: only in a plain (7bit, 8bit or quoted-printable) text/plain
  body, and its HTML twin in an alternative.

:attr:`Corpus.expected` gives the exact answer sets (message indices) for
``SEARCH TEXT``, ``SEARCH SUBJECT`` and ``SEARCH FROM`` with the marker.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import hashlib
import math
import random
from collections.abc import Iterator
from email.utils import format_datetime
from pathlib import Path

MARKER = "kittiwakebench"
"""The planted word; no generated text contains it except where planted."""

HITS = 200
"""Messages holding the marker in a full-size corpus."""

MIN_SIZE = 1024
MAX_SIZE = 200 * 1024

ASCII_WORDS = (
    "meeting", "report", "budget", "invoice", "quarterly", "schedule", "project", "release",
    "travel", "dinner", "contract", "review", "draft", "update", "deadline", "holiday",
    "garden", "recipe", "seabird", "harbour", "lighthouse", "tide", "storm", "ferry", "island",
    "cliff", "colony", "nesting", "feather", "survey", "volunteer", "weekend", "picnic",
    "agenda", "minutes", "notes", "estimate", "shipment", "warehouse", "ticket", "support",
    "customer", "account", "payment", "reminder", "question", "answer", "thanks", "regards",
    "tomorrow", "friday",
)
ACCENTED_WORDS = (
    "réunion", "café", "naïve", "déjà", "façade", "über", "straße", "größe", "smörgåsbord",
    "fjørd", "señor", "mañana", "crème", "brûlée", "été", "garçon", "zürich",
)

NAMES = (
    "Alice Archer", "Bob Baker", "Carol Cooper", "Dave Dawson", "Erin Ellis",
    "Frank Fisher", "Grace Gordon", "Heidi Hughes", "Ivan Irving", "Judy Jones",
    "José Müller", "Søren Kierkegård", "Françoise Lefèvre", "Zoë Ångström",
    "Björn Åkesson", "Renée Dubois", "Jürgen Groß", "Mária Szabó",
)
DOMAINS = ("example.net", "example.com", "mail.example.org", "lists.example.net")
ZONES = (0, 60, 120, -300, -480, 330, 540)
ATTACHMENTS = (
    ("application", "pdf", "report.pdf"), ("image", "png", "photo.png"),
    ("application", "zip", "archive.zip"), ("image", "jpeg", "scan.jpg"),
    ("application", "octet-stream", "data.bin"),
)


class Place(enum.StrEnum):
    """Where the marker sits in a planted message."""

    SUBJECT = "encoded subject"
    BASE64 = "base64 body"
    FROM = "from display name"
    TEXT = "plain text body"


# Share of the planted messages per place; TEXT takes the rest.
_SHARES = ((Place.SUBJECT, 0.2), (Place.BASE64, 0.2), (Place.FROM, 0.2))

# IMAP SEARCH keys and the places each must find (RFC 9051 §6.4.4: SUBJECT and
# FROM look in that header field, TEXT in the header and body of the message).
QUERY_PLACES: dict[str, frozenset[Place]] = {
    "TEXT": frozenset(Place),
    "SUBJECT": frozenset({Place.SUBJECT}),
    "FROM": frozenset({Place.FROM}),
}


FOLD = "\r\n "
"""Folding white space between encoded words (RFC 5322 §2.2.3; ignored by RFC 2047 §6.2)."""


# --- RFC 2047 encoded words, RFC 2045 quoted-printable -------------------------------

def b_word(text: str, charset: str) -> str:
    """``text`` as RFC 2047 §4.1 "B" encoded word(s), folded between words.

    Each word holds at most 45 octets (75 characters with its charset, RFC
    2047 §2) and is split only between characters.
    """
    words: list[str] = []
    chunk = b""
    for ch in text:
        octets = ch.encode(charset)
        if len(chunk) + len(octets) > 45 - len(charset):
            words.append(f"=?{charset}?B?{base64.b64encode(chunk).decode()}?=")
            chunk = b""
        chunk += octets
    words.append(f"=?{charset}?B?{base64.b64encode(chunk).decode()}?=")
    return FOLD.join(words)


def q_word(text: str, charset: str, *, hex_all: bool = False) -> str:
    """``text`` as RFC 2047 §4.2 "Q" encoded word(s); ``hex_all`` writes every octet as =XX.

    Words are split so none exceeds 75 characters (RFC 2047 §2), never inside
    a character's octets, and folded between words.
    """
    words: list[str] = []
    prefix, chunk = f"=?{charset}?Q?", ""
    for ch in text:
        enc = ""
        for octet in ch.encode(charset):
            c = chr(octet)
            if not hex_all and (c.isascii() and c.isalnum()):
                enc += c
            elif not hex_all and c == " ":
                enc += "_"
            else:
                enc += f"={octet:02X}"
        if len(prefix) + len(chunk) + len(enc) + 2 > 75:
            words.append(f"{prefix}{chunk}?=")
            chunk = ""
        chunk += enc
    words.append(f"{prefix}{chunk}?=")
    return FOLD.join(words)


def quoted_printable(text: str, charset: str) -> str:
    """RFC 2045 §6.7 quoted-printable of ``text``: soft breaks only after spaces, lines ≤ 76."""
    out: list[str] = []
    for line in text.split("\r\n"):
        encoded = []
        for octet in line.encode(charset):
            c = chr(octet)
            if c == "=" or octet > 126 or (octet < 32 and c != "\t"):
                encoded.append(f"={octet:02X}")
            else:
                encoded.append(c)
        if encoded and encoded[-1] in (" ", "\t"):
            encoded[-1] = f"={ord(encoded[-1]):02X}"  # rule 3: no trailing white space
        current = ""
        for token in encoded:
            if len(current) + len(token) > 75 and current.endswith(" "):
                out.append(current + "=")  # soft line break after a space: no word is split
                current = ""
            current += token
        out.append(current)
    return "\r\n".join(out)


def base64_lines(data: bytes) -> str:
    """RFC 2045 §6.8 base64 in lines of 76 characters, CRLF-terminated."""
    text = base64.b64encode(data).decode()
    return "".join(text[i:i + 76] + "\r\n" for i in range(0, len(text), 76))


# --- the corpus ------------------------------------------------------------------------

class Corpus:
    """``count`` messages from ``seed``, ``hits`` of them holding :data:`MARKER`."""

    def __init__(self, count: int, seed: int = 1, hits: int = HITS) -> None:
        if not 0 <= hits <= count:
            raise ValueError(f"hits={hits}: expected 0..count ({count})")
        self.count = count
        self.seed = seed
        self.hits = hits
        rng = random.Random(f"{seed}:plant")
        chosen = rng.sample(range(count), hits)
        self.planted: dict[int, Place] = {}
        start = 0
        for place, share in _SHARES:
            n = round(hits * share)
            for index in chosen[start:start + n]:
                self.planted[index] = place
            start += n
        for index in chosen[start:]:
            self.planted[index] = Place.TEXT
        self.expected: dict[str, frozenset[int]] = {
            key: frozenset(i for i, p in self.planted.items() if p in places)
            for key, places in QUERY_PLACES.items()
        }
        lines_rng = random.Random(f"{seed}:lines")
        self._ascii_lines = [self._line(lines_rng, accented=False) for _ in range(1500)]
        self._accented_lines = [self._line(lines_rng, accented=True) for _ in range(500)]

    # Identity and threads

    def message_id(self, index: int) -> str:
        """Message-ID of message ``index`` (its number is in it, for mapping UIDs back)."""
        token = hashlib.sha256(f"{self.seed}:{index}".encode()).hexdigest()[:12]
        return f"<bench.{index}.{token}@{DOMAINS[index % len(DOMAINS)]}>"

    @staticmethod
    def index_of(message_id: str) -> int | None:
        """The corpus index in a Message-ID made by :meth:`message_id`, else None."""
        parts = message_id.strip().strip("<>").split(".")
        if len(parts) >= 3 and parts[0] == "bench" and parts[1].isdigit():
            return int(parts[1])
        return None

    # Text

    @staticmethod
    def _line(rng: random.Random, accented: bool) -> str:
        words = [rng.choice(ASCII_WORDS) for _ in range(rng.randint(6, 13))]
        if accented:
            for _ in range(rng.randint(1, 3)):
                words[rng.randrange(len(words))] = rng.choice(ACCENTED_WORDS)
        words[0] = words[0].capitalize()
        return " ".join(words) + rng.choice((".", ".", ",", "?", "!"))

    def _text(self, rng: random.Random, size: int, accented: bool, marker: str | None) -> str:
        pool = self._accented_lines if accented else self._ascii_lines
        lines: list[str] = []
        n = 0
        while n < size:
            line = rng.choice(pool)
            lines.append(line)
            n += len(line) + 2
            if rng.random() < 0.08:
                lines.append("")
        if marker is not None:
            at = rng.randrange(len(lines))
            words = (lines[at] or rng.choice(pool)).split(" ")
            words.insert(rng.randrange(1, len(words) + 1), marker)
            lines[at] = " ".join(words)
        return "\r\n".join(lines) + "\r\n"

    @staticmethod
    def _html(text: str) -> str:
        paras = [p for p in text.split("\r\n") if p]
        body = "\r\n".join(f"<p>{p.replace('&', '&amp;')}</p>" for p in paras)
        return (f"<!DOCTYPE html>\r\n<html><head><meta charset=\"utf-8\"><title>mail</title>"
                f"</head>\r\n<body style=\"font-family: sans-serif\">\r\n{body}\r\n"
                f"</body></html>\r\n")

    @staticmethod
    def _marker_spelling(rng: random.Random) -> str:
        return rng.choice((MARKER, MARKER, MARKER.capitalize(), MARKER.upper()))

    # Headers

    def _address(self, rng: random.Random, name_marker: str | None) -> str:
        name = rng.choice(NAMES)
        local = name.split()[0].lower().encode("ascii", "ignore").decode() or "someone"
        addr = f"{local}{rng.randint(1, 99)}@{rng.choice(DOMAINS)}"
        if name_marker is not None:
            name = f"{name.split()[0]} {name_marker}"
        elif rng.random() < 0.1:
            return addr
        if name.isascii():
            return f'"{name}" <{addr}>' if rng.random() < 0.3 else f"{name} <{addr}>"
        charset = "utf-8" if rng.random() < 0.6 or not _latin1(name) else "iso-8859-1"
        word = b_word(name, charset) if rng.random() < 0.5 else q_word(name, charset)
        return f"{word} <{addr}>"

    def _subject(self, rng: random.Random, index: int, marker: str | None) -> str:
        words = [rng.choice(ASCII_WORDS) for _ in range(rng.randint(2, 6))]
        if marker is not None:
            words.insert(rng.randrange(len(words) + 1), marker)
            words.insert(rng.randrange(len(words) + 1), rng.choice(ACCENTED_WORDS))
            text = _sentence(words) + f" #{index}"
            charset = rng.choice(("utf-8", "iso-8859-1"))
            if rng.random() < 0.5:
                return b_word(text, charset)
            return q_word(text, charset, hex_all=True)  # =XX for every octet: no raw marker
        prefix = rng.choice(("", "", "", "Re: ", "Fwd: ", "[list] "))
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words) + 1), rng.choice(ACCENTED_WORDS))
            text = prefix + _sentence(words) + f" #{index}"
            charset = "utf-8" if rng.random() < 0.6 else "iso-8859-1"
            word = b_word(text, charset) if rng.random() < 0.5 else q_word(text, charset)
            return word
        return prefix + _sentence(words) + f" #{index}"

    def _date(self, rng: random.Random, index: int) -> str:
        base = dt.datetime(2025, 1, 6, 8, 0, tzinfo=dt.UTC)
        moment = base + dt.timedelta(minutes=index * 17 + rng.randint(0, 16))
        zone = dt.timezone(dt.timedelta(minutes=rng.choice(ZONES)))
        return format_datetime(moment.astimezone(zone))

    def _head(self, rng: random.Random, index: int, place: Place | None) -> list[str]:
        marker = self._marker_spelling(rng) if place is not None else None
        head = [
            f"From: {self._address(rng, marker if place is Place.FROM else None)}",
            "To: Bench User <bench@example.org>",
        ]
        if rng.random() < 0.2:
            head.append("Cc: " + ", ".join(self._address(rng, None)
                                            for _ in range(rng.randint(1, 3))))
        subject = self._subject(rng, index, marker if place is Place.SUBJECT else None)
        head.append(f"Subject: {subject}")
        head.append(f"Date: {self._date(rng, index)}")
        head.append(f"Message-ID: {self.message_id(index)}")
        if index > 0 and rng.random() < 0.3:
            parent = index - rng.randint(1, min(index, 40))
            refs = [self.message_id(parent)]
            if parent > 0 and rng.random() < 0.5:
                refs.insert(0, self.message_id(parent - rng.randint(1, min(parent, 40))))
            head.append(f"In-Reply-To: {refs[-1]}")
            head.append("References: " + "\r\n ".join(refs))
        head.append("MIME-Version: 1.0")
        return head

    # Bodies

    def _text_part(self, rng: random.Random, size: int, place: Place | None,
                   marker: str | None) -> tuple[list[str], str]:
        """Headers and body of a text/plain part; the marker goes in when planted here."""
        if place is Place.BASE64:
            text = self._text(rng, size, accented=rng.random() < 0.4, marker=marker)
            return (["Content-Type: text/plain; charset=utf-8",
                     "Content-Transfer-Encoding: base64"], base64_lines(text.encode()))
        put = marker if place is Place.TEXT else None
        roll = rng.random()
        if roll < 0.4:
            text = self._text(rng, size, accented=False, marker=put)
            cs = rng.choice(("us-ascii", "utf-8"))
            return ([f"Content-Type: text/plain; charset={cs}",
                     "Content-Transfer-Encoding: 7bit"], text)
        if roll < 0.65:
            text = self._text(rng, size, accented=True, marker=put)
            return (["Content-Type: text/plain; charset=utf-8",
                     "Content-Transfer-Encoding: 8bit"], text)
        text = self._text(rng, size, accented=True, marker=put)
        cs = "iso-8859-1" if roll < 0.85 else "utf-8"
        return ([f"Content-Type: text/plain; charset={cs}",
                 "Content-Transfer-Encoding: quoted-printable"], quoted_printable(text, cs))

    @staticmethod
    def _part(headers: list[str], body: str) -> str:
        return "\r\n".join(headers) + "\r\n\r\n" + body

    def _multipart(self, rng: random.Random, subtype: str, parts: list[str]) -> tuple[str, str]:
        boundary = f"=_{subtype[:3]}_{rng.getrandbits(48):012x}"
        body = "This is a multi-part message in MIME format.\r\n"
        for p in parts:
            body += f"\r\n--{boundary}\r\n{p}"
        body += f"\r\n--{boundary}--\r\n"
        return f'Content-Type: multipart/{subtype}; boundary="{boundary}"', body

    def _alternative(self, rng: random.Random, size: int, place: Place | None,
                     marker: str | None) -> tuple[str, str]:
        headers, body = self._text_part(rng, size // 2, place, marker)
        if place is Place.BASE64:
            # The HTML twin stays free of the marker: only the base64 part holds it.
            html = self._html(self._text(rng, size // 2, accented=False, marker=None))
        else:
            html = self._html(_plain_of(headers, body))
        html_part = self._part(["Content-Type: text/html; charset=utf-8",
                                "Content-Transfer-Encoding: quoted-printable"],
                               quoted_printable(html, "utf-8"))
        return self._multipart(rng, "alternative", [self._part(headers, body), html_part])

    def _attachment(self, rng: random.Random, size: int) -> str:
        major, minor, name = rng.choice(ATTACHMENTS)
        if rng.random() < 0.2:
            name = q_word("Übersicht " + name, "utf-8")
        headers = [f'Content-Type: {major}/{minor}; name="{name}"',
                   "Content-Transfer-Encoding: base64",
                   f'Content-Disposition: attachment; filename="{name}"']
        return self._part(headers, base64_lines(rng.randbytes(max(size * 3 // 4, 64))))

    def _forwarded(self, rng: random.Random, index: int, size: int) -> str:
        inner = [f"From: {self._address(rng, None)}", "To: someone@example.com",
                 f"Subject: {self._subject(rng, index, None)}",
                 f"Date: {self._date(rng, max(index - 100, 0))}",
                 "Content-Type: text/plain; charset=utf-8", ""]
        text = self._text(rng, size, accented=True, marker=None)
        return self._part(["Content-Type: message/rfc822",
                           'Content-Disposition: inline; filename="forwarded.eml"'],
                          "\r\n".join(inner) + "\r\n" + text)

    def _size(self, rng: random.Random) -> int:
        if rng.random() < 0.03:
            return rng.randint(50 * 1024, MAX_SIZE)
        size = int(math.exp(rng.gauss(math.log(6000), 1.0)))
        return max(MIN_SIZE, min(MAX_SIZE, size))

    def message(self, index: int) -> bytes:
        """Message ``index`` (0-based), CRLF line ends, 1-200 KiB.

        Built from ``(seed, index)`` alone. Encodings grow text by different
        factors (8bit UTF-8, quoted-printable, base64, HTML), so the body is
        rebuilt, same structure, with its room rescaled until the size fits.
        """
        size = self._size(random.Random(f"{self.seed}:{index}:size"))
        target = min(max(size, MIN_SIZE + 256), MAX_SIZE - 4096)
        scale = 1.0
        for _ in range(8):
            data = self._build(index, size, scale)
            if MIN_SIZE <= len(data) <= MAX_SIZE:
                break
            scale *= target / len(data)
        return data

    def _build(self, index: int, size: int, scale: float) -> bytes:
        rng = random.Random(f"{self.seed}:{index}")
        place = self.planted.get(index)
        head = self._head(rng, index, place)
        marker = self._marker_spelling(rng) if place in (Place.BASE64, Place.TEXT) else None
        overhead = sum(len(h) + 2 for h in head) + 200
        room = max(int((size - overhead) * scale), 300)
        kind = rng.random()
        if place is not None and kind >= 0.35 and kind < 0.45:
            kind = 0.2  # HTML-only bodies hold no text/plain part to plant in
        if kind < 0.35:
            part_headers, body = self._text_part(rng, room, place, marker)
            content = "\r\n".join(part_headers)
        elif kind < 0.45:
            html = self._html(self._text(rng, room, accented=rng.random() < 0.5, marker=None))
            content = "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit"
            body = html
        elif kind < 0.75:
            content, body = self._alternative(rng, room, place, marker)
        else:
            text_size = min(room, rng.randint(300, 3000))
            attach_room = max(room - text_size, 256) * 3 // 4
            if rng.random() < 0.3:
                first_ct, first_body = self._alternative(rng, text_size, place, marker)
                first = f"{first_ct}\r\n\r\n{first_body}"
            else:
                first = self._part(*self._text_part(rng, text_size, place, marker))
            parts = [first]
            if kind > 0.95:
                parts.append(self._forwarded(rng, index, min(attach_room, 8000)))
            else:
                n = 1 if rng.random() < 0.7 else rng.randint(2, 3)
                parts += [self._attachment(rng, attach_room // n) for _ in range(n)]
            content, body = self._multipart(rng, "mixed", parts)
        return ("\r\n".join(head) + "\r\n" + content + "\r\n\r\n" + body).encode("utf-8")

    def messages(self) -> Iterator[bytes]:
        for i in range(self.count):
            yield self.message(i)

    # Maildir

    @staticmethod
    def maildir_name(index: int) -> str:
        """Maildir file name (``new/``): unique, its time part fixing the delivery order."""
        return f"{1_700_000_000 + index}.M{index}P1.bench"

    def write_maildir(self, directory: Path) -> int:
        """Write the corpus as a Maildir (cur/, new/, tmp/) in ``directory``; total bytes."""
        for sub in ("cur", "new", "tmp"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        total = 0
        for i in range(self.count):
            data = self.message(i)
            (directory / "new" / self.maildir_name(i)).write_bytes(data)
            total += len(data)
        return total


def _sentence(words: list[str]) -> str:
    return " ".join([words[0][:1].upper() + words[0][1:], *words[1:]])


def _latin1(text: str) -> bool:
    try:
        text.encode("iso-8859-1")
    except UnicodeEncodeError:
        return False
    return True


def _plain_of(headers: list[str], body: str) -> str:
    """The text of a part built by ``_text_part`` (for its HTML twin)."""
    if "Content-Transfer-Encoding: quoted-printable" in headers:
        charset = "iso-8859-1" if any("iso-8859-1" in h for h in headers) else "utf-8"
        return binascii.a2b_qp(body.encode("ascii")).decode(charset)
    return body
