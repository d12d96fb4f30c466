"""Property tests: no input makes the message functions raise, the part tree's
offsets always stay inside the data, nested and in order, and what is built on
the tree (decoded bodies, texts, the stored form) keeps its invariants
(msg_invariants.py)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from msg_invariants import check_results, check_tree

from kittiwake.message import (
    authserv_id_of,
    decode_transfer,
    decode_words,
    fold_header,
    html_to_text,
    parse,
    parse_address_list,
    parse_content_type,
    parse_date,
    parse_msgids,
    searchable_text,
)

SAMPLE = (
    b"Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    b"From: =?utf-8?q?J=C3=B6rg?= <j@example.de>\r\n"
    b"To: group: a@b.example, \"q\\\"x\" <c@d.example>;\r\n"
    b"Subject: =?iso-8859-1?b?Y2Fm6Q==?=\r\n"
    b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
    b"preamble\r\n"
    b"--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n"
    b"--inner\r\nContent-Type: text/plain; charset*=utf-8''x\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9=\r\n\r\n"
    b"--inner\r\nContent-Type: text/html\r\n\r\n<p>x<script>y</script></p>\r\n--inner--\r\n"
    b"--outer\r\nContent-Type: message/rfc822\r\n\r\n"
    b"Subject: inner\r\nContent-Type: multipart/digest; boundary=d\r\n\r\n"
    b"--d\r\n\r\nSubject: digest\r\n\r\nx\r\n--d--\r\n"
    b"--outer\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
    b"Content-Disposition: attachment; filename*0*=utf-8''a%C3; filename*1*=%A9\r\n\r\n"
    b"JVBERi0xLjQK\r\n--outer--\r\nepilogue\r\n"
)


def _exercise(data: bytes, **limits: int) -> None:
    root = parse(data, **limits)
    check_tree(root, data)
    check_results(root, data)
    for p in root.walk():
        assert p.filename is None or isinstance(p.filename, str)
        assert p.charset is None or isinstance(p.charset, str)


def test_sample_is_well_formed() -> None:
    root = parse(SAMPLE)
    assert check_tree(root, SAMPLE) == 9
    assert all(not p.defects for p in root.walk())


@given(st.binary(max_size=2000))
def test_arbitrary_bytes(data: bytes) -> None:
    _exercise(data)


_pieces = st.sampled_from([
    b"\r\n", b"\n", b"\r", b"--outer", b"--inner--", b"--d\r\n", b"\x00", b"\xff",
    b"Content-Type: multipart/mixed; boundary=outer\r\n", b"Content-Type: message/rfc822\r\n",
    b": ", b"=?utf-8?b?", b"?=", b"\"", b"(", b"<", b"@", b";", b" ",
])


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(SAMPLE)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["delete", "insert", "duplicate", "piece"]))
        i = draw(st.integers(0, len(data)))
        j = draw(st.integers(i, min(len(data), i + 80)))
        if op == "delete":
            del data[i:j]
        elif op == "insert":
            data[i:i] = draw(st.binary(max_size=20))
        elif op == "duplicate":
            data[i:i] = data[i:j]
        else:
            data[i:i] = draw(_pieces)
    return bytes(data)


@settings(max_examples=300)
@given(_mutated())
def test_mutated_messages(data: bytes) -> None:
    _exercise(data)


@settings(max_examples=100)
@given(_mutated(), st.integers(0, 4), st.integers(1, 6))
def test_mutated_messages_with_limits(data: bytes, depth: int, parts: int) -> None:
    root = parse(data, max_depth=depth, max_parts=parts)
    assert check_tree(root, data) <= parts + 1
    _exercise(data, max_depth=depth, max_parts=parts)


@given(st.integers(0, len(SAMPLE)))
def test_truncated_anywhere(n: int) -> None:
    _exercise(SAMPLE[:n])


def test_hostile_repetitions_stay_linear() -> None:
    # Inputs that make naive regexes or HTMLParser quadratic. Each call here
    # takes milliseconds; a quadratic regression takes minutes (pytest-timeout).
    n = 100_000
    for unit in ('"\\', "(\\", "[\\", "<a ", "<!--", "=?a?q?", '"(', "a@b, ", " "):
        text = unit * (n // len(unit))
        parse_content_type("a/b; " + text)
        parse_address_list(text)
        parse_msgids(text)
        parse_date(text)
        authserv_id_of(text)
        decode_words(text)
        html_to_text(text)
        fold_header("X", text)
        raw = text.encode()
        data = (
            b"Content-Language: " + raw + b"\r\nContent-Type: text/html; x=" + raw
            + b"\r\n\r\n" + raw
        )
        check_tree(parse(data), data)
        searchable_text(parse(data), data)
    assert decode_transfer(b" " * n + b"x", "quoted-printable").endswith(b"x")
