"""The client's reply reader with its cache answers as the general reply parser.

For any sequence of server lines (good and bad, single and multi-line, CRLF or
LF, long) cut into reads anywhere, :class:`ReplyReader` returns the same
replies per read as :class:`kittiwake.smtp.ReplyParser`, and raises
MalformedReply at the same read.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from kittiwake.smtp import MalformedReply, ReplyParser
from kittiwake.smtpclient.replycache import ReplyReader

LINES = st.one_of(
    st.sampled_from([b"250 2.0.0 Ok", b"250 2.1.5 Ok", b"354 End data with <CR><LF>.<CR><LF>",
                     b"250-mx.test", b"250-PIPELINING", b"250 SIZE 1000", b"250", b"451 4.3.0 x",
                     b"550-5.7.1 no", b"550 5.7.1 really", b"220 ready", b"", b"25", b"abc",
                     b"999 out of range", b"250 caf\xc3\xa9", b"250 \xff\xfe", b"250 a\rb",
                     b"250 " + b"x" * 300, b"250-" + b"y" * 300]),
    st.binary(max_size=12))
ENDS = st.sampled_from([b"\r\n", b"\n"])


def run(reader: object, reads: list[bytes]) -> list[object]:
    out: list[object] = []
    for data in reads:
        try:
            out.append(reader.feed(data))  # type: ignore[attr-defined]
        except MalformedReply:
            out.append(MalformedReply)
            break
    return out


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.tuples(LINES, ENDS), max_size=8), st.lists(st.integers(0, 400), max_size=6))
@example([(b"250 2.1.0 Ok", b"\r\n"), (b"250 2.1.5 Ok", b"\r\n"), (b"354 go", b"\r\n")], [])
@example([(b"250-a", b"\r\n"), (b"250 b", b"\r\n"), (b"250 c", b"\r\n")], [])
@example([(b"250 a", b"\r\n"), (b"250-b", b"\r\n"), (b"250 c", b"\r\n")], [5])
def test_reader_answers_as_the_parser(lines: list[tuple[bytes, bytes]],
                                      cuts: list[int]) -> None:
    wire = b"".join(line + end for line, end in lines)
    points = sorted({min(c, len(wire)) for c in cuts})
    reads = [wire[a:b] for a, b in zip([0, *points], [*points, len(wire)], strict=True)]
    reads = [r for r in reads if r]
    assert run(ReplyReader(), reads) == run(ReplyParser(), reads)


def test_pending_follows_a_cut_reply() -> None:
    reader = ReplyReader()
    [ok] = reader.feed(b"250 ok\r\n250-a\r\n")
    assert ok.code == 250 and reader.pending
    [multi] = reader.feed(b"250 b\r\n")
    assert multi.lines == ("a", "b") and not reader.pending
