"""Streamed sending: prefix + file range, DATA dot-stuffed chunk by chunk, BDAT from the file,
RSET pipelined in front of a reused session's next transaction."""

from __future__ import annotations

import hashlib
import random
import tracemalloc
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.smtpclient.sink import SinkServer

from kittiwake.smtp import Reply, dot_stuff
from kittiwake.smtpclient import (
    Client,
    DotStuffer,
    FileRange,
    MessageSource,
    Outcome,
    Stage,
    Transaction,
)
from kittiwake.smtpclient.stream import CHUNK_SIZE, all_crlf, crlf

TRICKY = (b"Subject: dots\r\n\r\n.leading dot\r\nbare lf\nbare cr\rmixed\r\r\n..two\r\n"
          b"\r\n.\r\nend without crlf.")


def reference(data: bytes) -> bytes:
    """DATA body by the whole-message helpers of kittiwake.smtp (the old path)."""
    return dot_stuff(crlf(data)) + b".\r\n"


def test_stuffer_matches_whole_message_stuffing_at_every_split() -> None:
    want = reference(TRICKY)
    for cut in range(len(TRICKY) + 1):
        s = DotStuffer()
        assert s.feed(TRICKY[:cut]) + s.feed(TRICKY[cut:]) + s.finish() == want, cut
    rng = random.Random(5)
    for _ in range(200):
        data = bytes(rng.choice(b".\r\nab") for _ in range(rng.randrange(0, 40)))
        s = DotStuffer()
        out, i = b"", 0
        while i < len(data):
            n = rng.randrange(1, 6)
            out += s.feed(data[i:i + n])
            i += n
        assert out + s.finish() == reference(data), data
    assert DotStuffer.stuff(b"") == b".\r\n"


def test_transaction_hands_the_file_to_the_driver(tmp_path: Path) -> None:
    body = tmp_path / "m"
    body.write_bytes(b"Subject: x\r\n\r\nhello\r\n")
    source = MessageSource(b"Received: by us\r\n", FileRange(body, 0, body.stat().st_size))
    tx = Transaction("MAIL FROM:<a@b.test>", [(0, "c@d.test", "RCPT TO:<c@d.test>")], source,
                     pipelining=True, bdat=False)
    assert tx.to_send() is not None
    for reply in (Reply.ok(), Reply.ok(), Reply(354, None, ("go",))):
        tx.receive(reply)
    send = tx.to_send()
    assert send is not None and send.stream is source and send.stuff and send.data == b""
    bdat = Transaction("MAIL FROM:<a@b.test>", [(0, "c@d.test", "RCPT TO:<c@d.test>")],
                       source, pipelining=True, bdat=True)
    assert bdat.to_send() is not None
    bdat.receive(Reply.ok())
    bdat.receive(Reply.ok())
    send = bdat.to_send()
    assert send is not None and send.stream is source and not send.stuff
    assert send.data == f"BDAT {source.size} LAST\r\n".encode()


def test_refused_rset_makes_the_transaction_temporary() -> None:
    tx = Transaction("MAIL FROM:<>", [(0, "b@x.test", "RCPT TO:<b@x.test>")], b"x\r\n",
                     pipelining=True, bdat=False, reset=True)
    first = tx.to_send()
    assert first is not None and first.commands == ("RSET", "MAIL FROM:<>",
                                                    "RCPT TO:<b@x.test>", "DATA")
    tx.receive(Reply(421, "4.3.0", ("confused",)))
    tx.receive(Reply.ok())
    tx.receive(Reply.ok())
    tx.receive(Reply(354, None, ("go",)))
    end = tx.to_send()
    assert end is not None and end.data == b".\r\n"  # no message after a failed RSET
    tx.receive(Reply.ok())
    [(_, r)] = tx.results()
    assert r.outcome is Outcome.TEMPORARY and r.stage is Stage.RSET


def big_file(path: Path, megabytes: int, prefix: bytes) -> tuple[str, str]:
    """Write a message of ``megabytes`` MiB with dot lines and bare LFs; the sha256 of
    prefix + file as stored (BDAT sends it so) and as DATA sends it (CRLF line ends)."""
    line = b"..a line that starts with dots and has a bare lf\n" + b"x" * 70 + b"\r\n"
    block = line * (CHUNK_SIZE // len(line) + 1)
    head = b"Subject: big\r\n\r\n"
    stored, sent = hashlib.sha256(prefix + head), hashlib.sha256(prefix + head)
    with path.open("wb") as f:
        f.write(head)
        written = 0
        while written < megabytes << 20:
            f.write(block)
            stored.update(block)
            sent.update(crlf(block))  # blocks end in CRLF: no CR/LF pair is split
            written += len(block)
    return stored.hexdigest(), sent.hexdigest()


async def _send(sink: SinkServer, source: MessageSource, chunking: bool) -> None:
    async with await Client.connect("127.0.0.1", sink.port, local_hostname="client.test") as c:
        result = await c.deliver("a@client.test", ["b@sink.test"], source, chunking=chunking)
    assert [r.outcome for r in result.recipients] == [Outcome.DELIVERED]


async def test_large_message_streams_with_bounded_memory(tmp_path: Path) -> None:
    """A 24 MiB message goes out by DATA and by BDAT while the process's Python
    allocations stay under 4 MiB: the client never holds the message."""
    path = tmp_path / "big"
    prefix = b"Received: from x by y; Tue, 1 Dec 2026 10:00:00 +0000\r\n"
    stored, sent = big_file(path, 24, prefix)
    source = MessageSource(prefix, FileRange(path, 0, path.stat().st_size))
    sink = await SinkServer().start()
    try:
        tracemalloc.start()
        try:
            await _send(sink, source, chunking=False)
            _, peak_data = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            await _send(sink, source, chunking=True)
            _, peak_bdat = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    finally:
        await sink.close()
    data_msg, bdat_msg = sink.messages
    assert data_msg.sha256 == sent  # unstuffed by the sink: the message, CRLF line ends
    assert bdat_msg.sha256 == stored and bdat_msg.size == source.size  # as stored
    assert peak_data < 4 << 20, peak_data
    assert peak_bdat < 4 << 20, peak_bdat


async def test_reused_session_pipelines_rset(tmp_path: Path) -> None:
    sink = await SinkServer().start()
    try:
        async with await Client.connect("127.0.0.1", sink.port,
                                        local_hostname="client.test") as c:
            for i in range(3):
                result = await c.deliver("a@client.test", [f"b{i}@sink.test"],
                                         f"Subject: {i}\r\n\r\nhi\r\n".encode())
                assert result.delivered
    finally:
        await sink.close()
    [session] = sink.sessions
    verbs = [line.split(" ", 1)[0].split(":", 1)[0] for line in session]
    assert verbs == ["EHLO", "MAIL", "RCPT", "DATA", "RSET", "MAIL", "RCPT", "DATA",
                     "RSET", "MAIL", "RCPT", "DATA", "QUIT"]
    assert len(sink.messages) == 3


def _open_fds() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


async def test_file_ranges_around_one_chunk_arrive_whole_and_leave_no_file_open(
        tmp_path: Path) -> None:
    """A file range of one chunk (read with the open, the file closed at once), of
    exactly one chunk and of one byte more (read on from the open file) arrives as
    stored by BDAT and CRLF-normalised by DATA, and no file stays open."""
    rng = random.Random(5)
    prefix = b"Received: by test; Tue, 1 Dec 2026 10:00:00 +0000\r\n"
    sink = await SinkServer().start()
    expected = []
    try:
        before = _open_fds()
        for length in (10 * 1024, CHUNK_SIZE, CHUNK_SIZE + 1):
            offset = 7
            body = bytes(rng.choice(b"ab.\r\n") for _ in range(offset + length + 5))
            path = tmp_path / f"m{length}"
            path.write_bytes(body)
            part = body[offset:offset + length]
            source = MessageSource(prefix, FileRange(path, offset, length))
            await _send(sink, source, chunking=False)
            await _send(sink, source, chunking=True)
            stored = prefix + part
            data = crlf(stored)
            if not data.endswith(b"\r\n"):
                data += b"\r\n"  # DATA ends the message's last line (RFC 5321 §4.1.1.4)
            expected += [(hashlib.sha256(data).hexdigest(), len(data)),
                         (hashlib.sha256(stored).hexdigest(), len(stored))]
        assert _open_fds() == before
    finally:
        await sink.close()
    assert [(m.sha256, m.size) for m in sink.messages] == expected


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=40) | st.text("\r\n.a", max_size=40).map(str.encode))
def test_all_crlf_says_what_counting_the_line_ends_says(data: bytes) -> None:
    """The one-pass check against its definition: as many CR, LF and CRLF."""
    assert all_crlf(data) is (data.count(b"\n") == data.count(b"\r\n") == data.count(b"\r"))
    if all_crlf(data):
        assert crlf(data) is data
    else:
        assert b"\r" not in crlf(data).replace(b"\r\n", b"")
        assert b"\n" not in crlf(data).replace(b"\r\n", b"")
