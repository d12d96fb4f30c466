"""FieldPicker (one regular expression) picks the same field lines as header_fields
(a parse), for every header section it is used on (regular_header)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kittiwake.imap.sections import FieldPicker, header_fields, regular_header

_LINES = st.sampled_from([
    b"From: a@example.org", b"from:b", b"FROM :  c", b"Subject: hi", b"subject:\t",
    b"To: x", b"Date: Tue, 1 Dec 2026", b"X-From: no", b"From-X: no", b"Keywords: k",
    b" folded", b"\tfolded", b"", b"Received: by x", b"From\t: tab", b"Sub ject: no",
    b"\xc3\xa9: no", b"From: \x00nul", b"From: \r cr", b"Cc:",
])
_ENDS = st.sampled_from([b"\r\n", b"\n", b"\r\r\n"])
_FIELDS = st.lists(st.sampled_from(["FROM", "Subject", "to", "X-NOPE", "KEYWORDS",
                                    "\u212aEYWORDS", "SUB JECT", "RECEIVED", "cc", "é"]),
                   min_size=1, max_size=4).map(tuple)


@st.composite
def _headers(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(st.tuples(_LINES, _ENDS), max_size=12))
    out = b"".join(text + end for text, end in lines)
    if draw(st.booleans()):
        out += draw(_ENDS)  # the empty line after the header
    if draw(st.booleans()) and out:
        out = out[:draw(st.integers(0, len(out)))]  # truncated anywhere
    return out


@settings(max_examples=400, deadline=None)
@given(_headers(), _FIELDS, st.booleans())
def test_same_lines_as_header_fields(header: bytes, fields: tuple[str, ...],
                                     blank: bool) -> None:
    if not regular_header(header):
        return
    assert FieldPicker(fields).pick(header, blank) == header_fields(header, fields, False, blank)


def test_examples() -> None:
    header = (b"From: a\r\n b\r\nX-From: no\r\nsubject :yes\r\nFROM: again\r\n\r\n")
    assert regular_header(header)
    assert FieldPicker(("from", "SUBJECT")).pick(header) == \
        b"From: a\r\n b\r\nsubject :yes\r\nFROM: again\r\n\r\n"
    # A line that is no field ends the header: such a header is not regular.
    assert not regular_header(b"From: a\r\nnot a field\r\n\r\n")
    assert FieldPicker(("x y",)).pick(header) == b"\r\n"
