"""named_fields (the fast look-up of a few header fields) agrees with the full scan."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kittiwake.message.headers import named_fields, scan_header_section

NAMES = ("message-id", "in-reply-to", "references", "subject")

LINES = st.sampled_from([
    b"Subject: hello\r\n", b"subject:x\r\n", b"SUBJECT \t: spaced\r\n", b"Subject-X: no\r\n",
    b"Message-ID: <a@b>\r\n", b"References: <r1@x>\r\n", b"  <r2@x>\r\n", b"\tfolded\r\n",
    b"In-Reply-To: <p@q>\n", b"From: a@b\r\n", b"X-Sub: Subject: inner\r\n", b"\r\n", b"\n",
    b"\r\r\n", b"not a field\r\n", b" starts blank\r\n", b"Subject: no end", b"body\r\n",
    b":colon first\r\n", b"Subject:\r\n",
])


@given(st.lists(LINES, max_size=12))
def test_the_fields_found_are_those_of_the_full_scan(lines: list[bytes]) -> None:
    data = b"".join(lines)
    fast = named_fields(data, NAMES)
    full, body, how = scan_header_section(data)
    if fast is None:  # declined: only where the full scan did not end at a plain CRLF/LF
        blank = data[data.rfind(b"\n", 0, body - 1) + 1:body]
        assert how != "blank" or blank not in (b"\r\n", b"\n")
        return
    headers, fast_how = fast
    assert fast_how == how
    for name in NAMES:
        assert [h.raw for h in headers.fields(name)] == [h.raw for h in full.fields(name)]
        assert headers.get(name) == full.get(name)


def test_a_plain_section_is_read_fast_and_an_odd_one_is_left_to_the_scan() -> None:
    plain = b"From: a@b\r\nSubject: one\r\n two\r\nSubject: second\r\n\r\nbody\r\n"
    found = named_fields(plain, NAMES)
    assert found is not None
    headers, how = found
    assert (headers.get("subject"), how, len(headers)) == ("one two", "blank", 2)
    assert named_fields(b"Subject: x\r\nnot a field\r\n\r\n", NAMES) is None
