"""Property tests: no message the parser can read makes a FETCH function raise,
and every value serialises into well-formed IMAP that reads back."""

from __future__ import annotations

from fetch_corpus import CORPUS
from hypothesis import given, settings
from hypothesis import strategies as st
from imap_read import read_value

from kittiwake.imap.binary import UnknownCTE, binary_bytes, binary_size, binary_value
from kittiwake.imap.bodystructure import body, bodystructure
from kittiwake.imap.encode import encode, encode_bytes
from kittiwake.imap.envelope import envelope_of_part
from kittiwake.imap.preview import PREVIEW_CHARS, preview
from kittiwake.imap.section import Partial, Section, SectionText
from kittiwake.imap.sections import fetch_value, section_bytes
from kittiwake.message import Part, parse

SEED = b"".join(CORPUS[n] for n in ("mixed-alternative", "nested-rfc822", "params-rfc2231"))


def _numbers(root: Part, limit: int = 40) -> list[tuple[int, ...]]:
    out: list[tuple[int, ...]] = [()]

    def walk(m: Part, prefix: tuple[int, ...]) -> None:
        kids = m.parts if m.is_multipart else [m]
        for i, c in enumerate(kids, 1):
            if len(out) >= limit:
                return
            nums = (*prefix, i)
            out.append(nums)
            if c.is_multipart and c is not m:
                walk(c, nums)
            elif c.message is not None and c is not m:
                walk(c.message, nums)

    walk(root, ())
    return [*out, (1, 1, 1), (9,)]


def _exercise(data: bytes) -> None:
    root = parse(data)
    read = lambda s: data[s.offset : s.end]  # noqa: E731
    for utf8 in (False, True):
        for value in (list(envelope_of_part(root, utf8)), bodystructure(root, utf8),
                      body(root, utf8)):
            out = encode_bytes(value, utf8)
            assert isinstance(read_value(out), list)
            assert b"\0" not in out  # not even in a literal (RFC 9051 §4.3 CHAR8)
    # The stored form (no header fields) gives the same answers.
    stored = Part.from_dict(root.to_dict())
    assert encode_bytes(bodystructure(stored)) == encode_bytes(bodystructure(root))
    for nums in _numbers(root):
        for text in (None, *SectionText):
            s = Section(nums, text, ("FROM", "X") if text and "FIELDS" in text else ())
            got = section_bytes(root, s, data, Partial(1, 50))
            assert isinstance(got, bytes)
            encode(fetch_value(root, s, "/m", None, read))
        b = binary_bytes(root, nums, data)
        size = binary_size(root, nums, read)
        assert isinstance(b, UnknownCTE) == isinstance(size, UnknownCTE)
        if not isinstance(b, UnknownCTE):
            assert len(b) == size
        binary_value(root, nums, "/m", Partial(0, 10), read)
    assert len(preview(root, read)) <= PREVIEW_CHARS


@given(st.binary(max_size=1500))
def test_arbitrary_bytes(data: bytes) -> None:
    _exercise(data)


_PIECES = st.sampled_from([
    b"\r\n", b"\n", b"\r", b"--outer", b"--inner--", b"--b1\r\n", b"\x00", b"\xff",
    b"Content-Type: multipart/mixed; boundary=outer\r\n", b"Content-Type: message/rfc822\r\n",
    b"Content-Transfer-Encoding: base64\r\n", b"Content-Transfer-Encoding: x-weird\r\n",
    b": ", b"=?utf-8?b?", b"?=", b"\"", b"(", b"<", b"@", b";", b" ", b"\xc3\xa9", b":;",
])


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(SEED)
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["delete", "insert", "duplicate", "piece"]))
        i = draw(st.integers(0, len(data)))
        j = draw(st.integers(i, min(len(data), i + 120)))
        if op == "delete":
            del data[i:j]
        elif op == "insert":
            data[i:i] = draw(st.binary(max_size=20))
        elif op == "duplicate":
            data[i:i] = data[i:j]
        else:
            data[i:i] = draw(_PIECES)
    return bytes(data)


@settings(max_examples=250, deadline=None)
@given(_mutated())
def test_mutated_messages(data: bytes) -> None:
    _exercise(data)


def test_corpus() -> None:
    for data in CORPUS.values():
        _exercise(data)


def test_deep_nesting_at_the_parser_limit() -> None:
    depth = 100  # kittiwake.message.part.DEFAULT_MAX_DEPTH
    data = b"".join(b"Content-Type: message/rfc822\r\n\r\n" for _ in range(depth + 5)) + b"x"
    _exercise(data)
    data = b"".join(b"Content-Type: multipart/mixed; boundary=%d\r\n\r\n--%d\r\n" % (i, i)
                    for i in range(depth + 5)) + b"\r\nx"
    _exercise(data)
