"""FETCH PREVIEW (RFC 8970): unit cases, and a comparison with Dovecot's PREVIEW."""

from __future__ import annotations

import base64

import pytest
from fetch_corpus import CORPUS
from imap_read import read_fetch
from tests.integration.dovecot import Dovecot

from kittiwake.imap.preview import PREVIEW_CHARS, preview
from kittiwake.message import parse


def _crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


LONG = " ".join(f"word{i}" for i in range(100))
PREVIEWS: dict[str, bytes] = {
    "reply": _crlf("From: a@x.test\n\nSounds good.\n\nOn Monday Bob wrote:\n> the old text\n"
                   "> more old text\nThanks\n-- \nAlice, signature\n"),
    "html": _crlf("From: a@x.test\nContent-Type: text/html; charset=utf-8\n\n<html><head>"
                  "<style>p {color: red}</style><title>T</title></head><body><p>Hello&nbsp;"
                  "<b>world</b></p><p>second &amp; para</p></body></html>\n"),
    "alternative-html-first": _crlf(
        "From: a@x.test\nContent-Type: multipart/alternative; boundary=a\n\n--a\n"
        "Content-Type: text/html\n\n<p>html version</p>\n--a\nContent-Type: text/plain\n\n"
        "plain version\n--a--\n"),
    "long": _crlf(f"From: a@x.test\n\n{LONG}\n"),
    "latin1": b"From: a@x.test\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
              b"Content-Transfer-Encoding: 8bit\r\n\r\ncaf\xe9 cr\xe8me\r\n",
    "base64-utf8": b"From: a@x.test\r\nContent-Type: text/plain; charset=utf-8\r\n"
                   b"Content-Transfer-Encoding: base64\r\n\r\n"
                   + base64.encodebytes("Grüße aus Köln".encode()).replace(b"\n", b"\r\n"),
    "attachment-only": _crlf("From: a@x.test\nContent-Type: multipart/mixed; boundary=m\n\n"
                             "--m\nContent-Type: application/pdf\n\nPDF\n--m--\n"),
    "whitespace": _crlf("From: a@x.test\n\n   lots   of\n\n\n\tspace   \n"),
}


def pv(data: bytes) -> str:
    return preview(parse(data), lambda s: data[s.offset : s.end])


def test_quoted_text_and_signature_are_left_out() -> None:
    assert pv(PREVIEWS["reply"]) == "Sounds good. On Monday Bob wrote: Thanks"


def test_html_is_reduced_to_text() -> None:
    assert pv(PREVIEWS["html"]) == "Hello world second & para"


def test_plain_alternative_is_preferred() -> None:
    assert pv(PREVIEWS["alternative-html-first"]) == "plain version"


def test_alternative_without_plain_takes_the_last_readable_version() -> None:
    data = _crlf("From: a@x.test\nContent-Type: multipart/alternative; boundary=a\n\n--a\n"
                 "Content-Type: text/html\n\n<p>the html</p>\n--a\n"
                 "Content-Type: text/calendar\n\nBEGIN:VCALENDAR\n--a--\n")
    assert pv(data) == "the html"


def test_at_most_200_characters() -> None:
    out = pv(PREVIEWS["long"])
    assert len(out) <= PREVIEW_CHARS and LONG.startswith(out)


def test_charsets_and_encodings_are_decoded() -> None:
    assert pv(PREVIEWS["latin1"]) == "café crème"
    assert pv(PREVIEWS["base64-utf8"]) == "Grüße aus Köln"


def test_no_text_is_the_empty_string() -> None:  # RFC 8970: "a zero-length string"
    assert pv(PREVIEWS["attachment-only"]) == ""
    assert pv(CORPUS["empty-body"]) == ""


def test_a_large_body_is_read_only_in_part() -> None:
    data = b"From: a@x.test\r\n\r\n" + b"x" * 10 + b"\r\n" + b"y" * 10_000_000
    spans = []

    def read(s):
        spans.append(s)
        return data[s.offset : s.end]

    assert preview(parse(data), read) == "xxxxxxxxxx"  # the cut-off last line is left out
    assert all(s.length <= 32 * 1024 for s in spans)


# Where our preview differs from Dovecot's on purpose (RFC 8970 leaves the
# algorithm to the server):
# - reply: Dovecot keeps the signature; we drop it (RFC 8970 suggests it);
# - html: Dovecot includes the <title> of <head> and keeps &nbsp; as U+00A0;
# - corpus-bad-content-type: Dovecot sends "" for an invalid Content-Type; it is
#   text/plain (RFC 2045 §5.2), so we preview it;
# - corpus-digest: Dovecot previews the header lines of the digest's first message;
# - corpus-deep-messages, -rfc822-nonmultipart, -message-global, -message-8bit: Dovecot does not
#   look inside a message that is only an encapsulated message; we do (its text is
#   what the reader will see);
# - corpus-text-with-name-no-charset: Dovecot previews an attached text/csv; we
#   take only text/plain and text/html that is not an attachment.
DIFFERENT = {"reply", "html", "corpus-bad-content-type", "corpus-digest",
             "corpus-deep-messages", "corpus-rfc822-nonmultipart", "corpus-message-global",
             "corpus-message-8bit", "corpus-text-with-name-no-charset"}


@pytest.mark.integration
def test_preview_matches_dovecot() -> None:
    messages = {**PREVIEWS, **{f"corpus-{k}": v for k, v in CORPUS.items()}}
    names = list(messages)
    with Dovecot([messages[n] for n in names]) as dc, dc.client() as imap:
        imap.login()
        imap.select_inbox(dc.messages)
        untagged, status = imap.command("FETCH 1:* (PREVIEW)")
    assert b" OK " in status
    theirs = [read_fetch(r)[b"PREVIEW"] for r in untagged if b" FETCH " in r]
    differ = []
    for name, want in zip(names, theirs, strict=True):
        assert isinstance(want, bytes)
        ours = pv(messages[name])
        same = ours == want.decode("utf-8", "replace")
        if same == (name in DIFFERENT):
            differ.append((name, ours, want))
    assert not differ  # equal everywhere except the listed cases, which do differ
