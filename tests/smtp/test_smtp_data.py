"""DATA stream decoding (RFC 5321 §4.5.2) and dot-stuffing for clients."""

from __future__ import annotations

import pytest

from kittiwake.smtp import DATA_TERMINATOR, DataDecoder, DataError, dot_stuff


def decode(data: bytes, step: int = 0, **kw: int | None) -> tuple[bytes, int, DataError | None]:
    """Decode, feeding `step` bytes at a time (0: all at once); returns (msg, used, error)."""
    dec = DataDecoder(**kw)  # type: ignore[arg-type]
    buf = bytearray()
    out = []
    used = 0
    pos = 0
    while True:
        if step:
            buf += data[pos : pos + step]
            pos += step
        else:
            buf += data[pos:]
            pos = len(data)
        while True:
            payload, consumed, done = dec.feed(buf)
            del buf[:consumed]
            used += consumed
            out.append(payload)
            if done:
                return b"".join(out), used, dec.error
            if consumed == 0:
                break
        if pos >= len(data):
            return b"".join(out), -1, dec.error


@pytest.mark.parametrize("step", [0, 1, 2, 3, 5, 7])
def test_unstuffing_any_split(step: int) -> None:
    wire = b"..leading\r\nmid\r\n...two\r\n.\r\nNEXT"
    assert decode(wire, step) == (b".leading\r\nmid\r\n..two\r\n", len(wire) - 4, None)


def test_empty_message() -> None:
    assert decode(b".\r\n") == (b"", 3, None)


@pytest.mark.parametrize(
    "fake_end", [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\n.\r", b"\r\n.\r"])
def test_smuggling_sequences_do_not_end_data(fake_end: bytes) -> None:
    wire = b"a" + fake_end + b"MAIL FROM:<evil@example.com>\r\n.\r\nRSET\r\n"
    msg, used, error = decode(wire)
    assert used == len(wire) - len(b"RSET\r\n")
    assert error == DataError.BARE_LINE_ENDING
    assert msg == b""


def test_bare_lf_detected_across_splits() -> None:
    wire = b"ok line\r\nbad\nline\r\n.\r\n"
    for step in (1, 2, 3, 4):
        assert decode(wire, step)[2] == DataError.BARE_LINE_ENDING


def test_bare_cr_at_segment_end_detected() -> None:
    wire = b"abc\rdef\r\n.\r\n"
    for step in (1, 2, 4):
        assert decode(wire, step)[2] == DataError.BARE_LINE_ENDING


def test_line_limit_counts_crlf() -> None:
    ok = b"x" * 998 + b"\r\n.\r\n"
    assert decode(ok, max_line=1000)[2] is None
    bad = b"x" * 999 + b"\r\n.\r\n"
    assert decode(bad, max_line=1000)[2] == DataError.LINE_TOO_LONG
    # Detected also when the long line is in the middle and split across reads.
    mid = b"short\r\n" * 50 + b"y" * 1500 + b"\r\n" + b"short\r\n" * 50 + b".\r\n"
    for step in (0, 100, 999, 1001):
        assert decode(mid, step, max_line=1000)[2] == DataError.LINE_TOO_LONG
    assert decode(mid, max_line=None)[2] is None


def test_size_limit() -> None:
    wire = b"x" * 100 + b"\r\n.\r\n"
    assert decode(wire, max_size=102)[2] is None
    msg, used, error = decode(wire, max_size=101)
    assert (error, used, msg) == (DataError.TOO_BIG, len(wire), b"")


def test_dot_stuff_roundtrip() -> None:
    body = b".starts with dot\r\nplain\r\n.\r\n..two"
    stuffed = dot_stuff(body)
    assert stuffed == b"..starts with dot\r\nplain\r\n..\r\n...two\r\n"
    assert decode(stuffed + DATA_TERMINATOR) == (body + b"\r\n", len(stuffed) + 3, None)
    assert dot_stuff(b"") == b""
