"""The MIME part tree: structure, byte offsets, line counts, defects, limits."""

from __future__ import annotations

import json

import pytest
from msg_invariants import check_results, check_tree

from kittiwake.message import Defect, Part, parse

NESTED = (
    b"From: Nathaniel Borenstein <nsb@bellcore.com>\r\n"
    b"To: Ned Freed <ned@innosoft.com>\r\n"
    b"Subject: Sample message\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-type: multipart/mixed; boundary="simple boundary"\r\n'
    b"\r\n"
    b"This is the preamble.\r\n"
    b"--simple boundary\r\n"
    b"\r\n"
    b"This is implicitly typed plain US-ASCII text.\r\n"
    b"It does NOT end with a linebreak.\r\n"
    b"--simple boundary\r\n"
    b"Content-type: text/plain; charset=us-ascii\r\n"
    b"\r\n"
    b"This is explicitly typed plain US-ASCII text.\r\n"
    b"It DOES end with a linebreak.\r\n"
    b"\r\n"
    b"--simple boundary\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"Content-Description: forwarded\r\n"
    b"\r\n"
    b"From: Inner <inner@example.org>\r\n"
    b"Subject: inner subject\r\n"
    b"Content-Type: multipart/alternative; boundary=alt\r\n"
    b"\r\n"
    b"--alt\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"caf=C3=A9\r\n"
    b"--alt\r\n"
    b"Content-Type: text/html\r\n"
    b"\r\n"
    b"<p>caf&eacute;</p>\r\n"
    b"--alt--\r\n"
    b"--simple boundary--\r\n"
    b"This is the epilogue.\r\n"
)


def body(p: Part, data: bytes) -> bytes:
    return data[p.body_start : p.end]


def mime(p: Part, data: bytes) -> bytes:
    return data[p.header_start : p.body_start]


def test_rfc2046_example_tree_and_offsets() -> None:
    root = parse(NESTED)
    check_tree(root, NESTED)
    assert root.media_type == "multipart/mixed"
    assert root.params == {"boundary": "simple boundary"}
    assert mime(root, NESTED).startswith(b"From: Nathaniel")
    assert mime(root, NESTED).endswith(b'boundary="simple boundary"\r\n\r\n')
    assert [c.media_type for c in root.parts] == ["text/plain", "text/plain", "message/rfc822"]
    one, two, three = root.parts
    # RFC 2046 §5.1.1: the CRLF before a delimiter belongs to the delimiter.
    assert mime(one, NESTED) == b"\r\n"
    assert body(one, NESTED) == (
        b"This is implicitly typed plain US-ASCII text.\r\nIt does NOT end with a linebreak."
    )
    assert one.lines == 2
    assert mime(two, NESTED) == b"Content-type: text/plain; charset=us-ascii\r\n\r\n"
    assert body(two, NESTED).endswith(b"It DOES end with a linebreak.\r\n")
    assert two.lines == 2  # the empty line's CRLF belongs to the delimiter
    assert two.charset == "us-ascii"
    assert three.description == "forwarded"
    inner = three.message
    assert inner is not None and inner.envelope is not None
    assert inner.envelope.subject == "inner subject"
    assert mime(inner, NESTED).startswith(b"From: Inner")
    assert [c.media_type for c in inner.parts] == ["text/plain", "text/html"]
    assert body(inner.parts[0], NESTED) == b"caf=C3=A9"
    assert inner.parts[0].encoding == "quoted-printable"
    assert body(inner.parts[1], NESTED) == b"<p>caf&eacute;</p>"
    # The epilogue and preamble are not in any child.
    assert b"epilogue" not in b"".join(NESTED[c.header_start : c.end] for c in root.parts)
    # The last line of the encapsulated message ("--alt--") has no line end of its own.
    assert body(three, NESTED).endswith(b"--alt--")
    assert three.lines == NESTED.count(b"\n", three.body_start, three.end) + 1 == 14


def test_root_envelope_and_lines() -> None:
    root = parse(NESTED)
    env = root.envelope
    assert env is not None
    assert env.subject == "Sample message"
    assert env.from_ is not None and env.from_[0].addr == "nsb@bellcore.com"
    assert env.sender is None and env.cc is None
    assert root.lines == NESTED[root.body_start :].count(b"\n")


def test_imap_sections() -> None:
    root = parse(NESTED)
    assert root.section("1") is root.parts[0]
    assert root.section("3") is root.parts[2]
    inner = root.parts[2].message
    assert inner is not None
    assert root.section("3.1") is inner.parts[0]
    assert root.section([3, 2]) is inner.parts[1]
    for bad in ("4", "0", "1.1", "3.3", "x", "3.1.1"):
        assert root.section(bad) is None, bad
    single = parse(b"Subject: x\r\n\r\nhello\r\n")
    assert single.section("1") is single
    assert single.section("2") is None


def test_section_into_single_part_inner_message() -> None:
    data = (
        b"Content-Type: message/rfc822\r\n\r\n"
        b"Subject: inner\r\n\r\ninner body\r\n"
    )
    root = parse(data)
    assert root.section("1") is root
    inner = root.section("1.1")
    assert inner is root.message and inner is not None
    assert data[inner.body_start : inner.end] == b"inner body\r\n"


def test_bare_lf_and_missing_close_delimiter() -> None:
    data = (
        b"Content-Type: multipart/mixed; boundary=b\n\n"
        b"--b\nContent-Type: text/plain\n\nfirst\n"
        b"--b\nContent-Type: text/html\n\n<i>second</i>\n"
    )
    root = parse(data)
    check_tree(root, data)
    assert [body(c, data) for c in root.parts] == [b"first", b"<i>second</i>\n"]
    assert Defect.NO_CLOSE_DELIMITER in root.defects


def test_boundary_not_found_and_missing_boundary() -> None:
    nothing = b"Content-Type: multipart/mixed; boundary=zzz\r\n\r\njust text\r\n"
    root = parse(nothing)
    assert root.parts == [] and Defect.BOUNDARY_NOT_FOUND in root.defects
    noparam = b"Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\nhi\r\n--x--\r\n"
    root = parse(noparam)
    assert root.parts == [] and Defect.NO_BOUNDARY in root.defects
    assert body(root, noparam).startswith(b"--x")


def test_delimiter_must_start_a_line_and_match_whole() -> None:
    data = (
        b"Content-Type: multipart/mixed; boundary=ab\r\n\r\n"
        b"--ab\r\n\r\ntext with --ab inside and\r\n--abc not a delimiter\r\n"
        b"--ab  \r\n\r\nsecond\r\n--ab--"
    )
    root = parse(data)
    assert [body(c, data) for c in root.parts] == [
        b"text with --ab inside and\r\n--abc not a delimiter",
        b"second",
    ]
    assert root.defects == []


def test_nested_boundary_prefix_of_outer() -> None:
    data = (
        b"Content-Type: multipart/mixed; boundary=outer\r\n\r\n"
        b"--outer\r\nContent-Type: multipart/alternative; boundary=outer-inner\r\n\r\n"
        b"--outer-inner\r\n\r\na\r\n--outer-inner\r\n\r\nb\r\n--outer-inner--\r\n"
        b"--outer\r\n\r\nc\r\n--outer--\r\n"
    )
    root = parse(data)
    check_tree(root, data)
    alt, c = root.parts
    assert [body(p, data) for p in alt.parts] == [b"a", b"b"]
    assert body(c, data) == b"c"


def test_empty_and_header_only_parts() -> None:
    data = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\n--b\r\nContent-Type: text/plain\r\n--b\r\nX-Header: 1\r\n\r\n--b--\r\n"
    )
    root = parse(data)
    check_tree(root, data)
    assert len(root.parts) == 3
    assert [p.body_size for p in root.parts] == [0, 0, 0]
    assert root.parts[1].headers.get("content-type") == "text/plain"
    assert Defect.TRUNCATED_HEADER in root.parts[1].defects


def test_non_header_line_starts_body() -> None:
    data = b"Subject: x\r\nthis is not a header\r\nmore\r\n"
    root = parse(data)
    assert root.headers.get("subject") == "x"
    assert body(root, data) == b"this is not a header\r\nmore\r\n"
    assert Defect.NO_HEADER_SEPARATOR in root.defects


def test_mbox_from_line_is_skipped() -> None:
    data = b"From MAILER-DAEMON Fri Apr 06 16:46:09 2001\nSubject: x\n\nbody\n"
    root = parse(data)
    assert data[root.header_start : root.body_start] == b"Subject: x\n\n"
    assert Defect.MBOX_FROM_LINE in root.defects
    obs = b"From : someone@example.org\r\n\r\nbody"  # RFC 5322 §4.5 obsolete syntax
    root = parse(obs)
    assert root.header_start == 0 and root.headers.get("from") == "someone@example.org"


def test_truncated_message() -> None:
    data = b"Subject: cut\r\nContent-Type: multipart/mixed; bound"
    root = parse(data)
    check_tree(root, data)
    assert root.body_size == 0 and Defect.TRUNCATED_HEADER in root.defects


def test_digest_default_type_and_encoded_message() -> None:
    data = (
        b"Content-Type: multipart/digest; boundary=d\r\n\r\n"
        b"--d\r\n\r\nSubject: one\r\n\r\nbody one\r\n"
        b"--d\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"U3ViamVjdDogdHdvDQoNCmJvZHk=\r\n--d--\r\n"
    )
    root = parse(data)
    first, second = root.parts
    assert first.media_type == "message/rfc822"  # RFC 2046 §5.1.5
    assert first.message is not None and first.message.envelope is not None
    assert first.message.envelope.subject == "one"
    assert second.message is None and Defect.ENCODED_MESSAGE in second.defects


def test_message_global_is_parsed() -> None:
    data = (
        b"Content-Type: message/global\r\n\r\n"
        + "Subject: Grüße\r\nFrom: Jörg <jörg@exämple.de>\r\n\r\nHallo\r\n".encode()
    )
    root = parse(data)
    assert root.message is not None and root.message.envelope is not None
    env = root.message.envelope
    assert env.subject == "Grüße"
    assert env.from_ is not None and env.from_[0].domain == "exämple.de"


def test_part_fields() -> None:
    data = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b'Content-Type: Application/PDF; name="r.pdf"\r\n'
        b"Content-Transfer-Encoding: BASE64\r\n"
        b"Content-ID: <part1@example.org>\r\n"
        b"Content-Description: The report\r\n"
        b"Content-Disposition: attachment;\r\n filename*=UTF-8''%E2%82%AC%20report.pdf; size=3\r\n"
        b"Content-Language: en, de (German)\r\n"
        b"Content-Location: http://example.org/r.pdf\r\n"
        b"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n\r\n"
        b"JVBE\r\n--b--\r\n"
    )
    p = parse(data).parts[0]
    assert (p.type, p.subtype) == ("application", "pdf")
    assert p.params == {"name": "r.pdf"}
    assert p.encoding == "base64"
    assert p.id == "<part1@example.org>"
    assert p.description == "The report"
    assert p.disposition == "attachment"
    assert p.disposition_params == {"filename": "€ report.pdf", "size": "3"}
    assert p.filename == "€ report.pdf"
    assert p.language == ["en", "de"]
    assert p.location == "http://example.org/r.pdf"
    assert p.md5 == "Q2hlY2sgSW50ZWdyaXR5IQ=="


def test_invalid_content_type_defaults_to_text_plain() -> None:
    root = parse(b"Content-Type: garbage\r\n\r\nx")
    assert root.media_type == "text/plain"
    assert Defect.INVALID_CONTENT_TYPE in root.defects


def _deep(levels: int) -> bytes:
    data = b"leaf\r\n"
    for i in range(levels):
        b = f"b{i}".encode()
        data = (
            b"Content-Type: multipart/mixed; boundary=" + b + b"\r\n\r\n--" + b + b"\r\n"
            + data + b"\r\n--" + b + b"--\r\n"
        )
    return data


def test_depth_limit() -> None:
    data = _deep(30)
    root = parse(data, max_depth=10)
    check_tree(root, data)
    depth, p = 0, root
    while p.parts:
        p, depth = p.parts[0], depth + 1
    assert depth == 10
    assert Defect.DEPTH_LIMIT in p.defects
    assert b"leaf" in data[p.body_start : p.end]  # still served as bytes
    full = parse(data)
    assert sum(1 for _ in full.walk()) == 31


def test_deep_nesting_default_limit_does_not_overflow() -> None:
    data = _deep(400)
    root = parse(data)
    assert check_tree(root, data) == 101


def test_parts_limit() -> None:
    data = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + b"--b\r\n\r\nx\r\n" * 50
    root = parse(data, max_parts=11)
    check_tree(root, data)
    assert len(root.parts) == 10
    assert Defect.PARTS_LIMIT in root.defects
    assert len(parse(data).parts) == 50


def test_to_dict_roundtrip_through_json() -> None:
    root = parse(NESTED)
    stored = json.loads(json.dumps(root.to_dict()))
    again = Part.from_dict(stored, NESTED)
    assert again.to_dict() == root.to_dict()
    assert [p.media_type for p in again.walk()] == [p.media_type for p in root.walk()]
    assert again.headers.get("Subject") == "Sample message"
    inner = again.section("3")
    assert inner is not None and inner.message is not None
    assert inner.message.envelope == root.parts[2].message.envelope  # type: ignore[union-attr]
    assert len(Part.from_dict(stored).headers) == 0


def test_never_raises_on_odd_inputs() -> None:
    for data in (
        b"", b"\x00" * 10, b"\r\n\r\n", b"\n", b":", b" x: y", b"\xff\xfe: \xff\r\n\r\n\xff",
        b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n--\r\n",
        b"Content-Type: message/rfc822\r\n\r\n",
        b"Content-Type: multipart/mixed; boundary=\xff\xfe\r\n\r\n--\xff\xfe\r\n\r\nx",
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a--",
    ):
        root = parse(data)
        check_tree(root, data)
        check_results(root, data)


def test_internal_error_keeps_the_message(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import kittiwake.message.part as part_module

    def broken(*args: object, **kwargs: object) -> object:
        raise ValueError("injected bug")

    monkeypatch.setattr(part_module, "parse_content_type", broken)
    root = parse(NESTED)
    assert Defect.PARSE_ERROR in root.defects
    assert (root.header_start, root.end) == (0, len(NESTED))
    assert "message parser failed" in caplog.text


def test_eight_bit_boundary_in_legacy_header() -> None:
    data = (
        b"Content-Type: multipart/mixed; boundary=\"b\xff\"\r\n\r\n"
        b"--b\xff\r\n\r\none\r\n--b\xff\r\n\r\ntwo\r\n--b\xff--\r\n"
    )
    root = parse(data)
    assert [body(p, data) for p in root.parts] == [b"one", b"two"]
    utf8 = "Content-Type: multipart/mixed; boundary=\"bé\"\r\n\r\n--bé\r\n\r\nx\r\n--bé--".encode()
    assert [body(p, utf8) for p in parse(utf8).parts] == [b"x"]
