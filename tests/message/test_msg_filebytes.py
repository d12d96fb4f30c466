"""The part tree of a message read from its file a window at a time
(:class:`~kittiwake.message.filebytes.FileBytes`) equals the tree of the same
octets in memory, for any message, prefix split and window size, and the view
behaves like ``bytes`` for what the parser asks of it."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from test_msg_fuzz import SAMPLE, _mutated

from kittiwake.message import parse
from kittiwake.message.filebytes import FileBytes


def _tree(data: bytes | FileBytes) -> dict[str, object]:
    root = parse(data)
    out = root.to_dict()
    out["headers"] = [(h.name, h.raw) for h in root.headers]  # type: ignore[attr-defined]
    return out


def _view(directory: Path, data: bytes, split: int, window: int) -> FileBytes:
    split = min(split, len(data))
    path = directory / "message"
    path.write_bytes(data[split:])
    return FileBytes(path, data[:split], window=window)


@settings(max_examples=300, deadline=None)
@given(_mutated(), st.integers(0, 300), st.integers(16, 200))
def test_tree_from_the_file_equals_the_tree_in_memory(data: bytes, split: int,
                                                      window: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, _view(Path(tmp), data, split, window) as view:
        assert _tree(view) == _tree(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.integers(0, 50), st.integers(16, 64),
       st.binary(min_size=1, max_size=5), st.integers(-20, 700), st.integers(-20, 700))
def test_bytes_operations(data: bytes, split: int, window: int, sub: bytes, start: int,
                          end: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, _view(Path(tmp), data, split, window) as view:
        assert len(view) == len(data)
        assert view.find(sub, start, end) == data.find(sub, start, end)
        assert view.count(sub, start, end) == data.count(sub, start, end)
        assert view.count(b"\n", start, end) == data.count(b"\n", start, end)
        assert view[start:end] == data[start:end]
        assert view.startswith(data[:7]) and view.startswith(sub) == data.startswith(sub)
        for i in (0, len(data) // 2, len(data) - 1):
            if 0 <= i < len(data):
                assert view[i] == data[i] and view[-1] == data[-1]


def test_a_large_message_is_parsed_without_reading_it_whole(tmp_path: Path) -> None:
    """A 20 MiB attachment: the tree is right and no read was larger than the window
    (plus the delimiter tails)."""
    body = b"A" * (20 * 1024 * 1024)
    data = SAMPLE.replace(b"JVBERi0xLjQK", body)
    path = tmp_path / "big"
    path.write_bytes(data)
    reads: list[int] = []
    view = FileBytes(path, window=64 * 1024)
    real = view._read

    def counting(start: int, end: int) -> bytes:
        out = real(start, end)
        reads.append(len(out))
        return out

    view._read = counting  # type: ignore[method-assign]
    with view:
        assert _tree(view) == _tree(data)
    assert max(reads) <= 64 * 1024


def test_index_text_of_a_large_message_reads_only_what_the_index_takes(
        tmp_path: Path, monkeypatch: object) -> None:
    """A 20 MiB message: its text part is longer than the substring index takes, so
    the message is not indexed (SEARCH decodes such a message) and the part is not
    read through, nor is the attachment."""
    import json

    from kittiwake.message import searchtext
    from kittiwake.message.searchtext import IndexJob, index_text

    text = b"kittiwakestart " + b"word " * (4 * 1024 * 1024)  # 20 MiB of text/plain
    data = (b"Subject: big\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
            b"--b\r\nContent-Type: text/plain\r\n\r\n" + text + b"\r\n"
            b"--b\r\nContent-Type: application/octet-stream\r\n\r\n" + b"\0" * 1024 + b"\r\n"
            b"--b--\r\n")
    path = tmp_path / "msg"
    path.write_bytes(data)
    summary = json.dumps({"part": parse(data).to_dict()})
    largest: list[int] = []
    real = FileBytes._read

    def counting(self: FileBytes, start: int, end: int) -> bytes:
        out = real(self, start, end)
        largest.append(len(out))
        return out

    monkeypatch.setattr(FileBytes, "_read", counting)  # type: ignore[attr-defined]
    result = index_text(IndexJob(1, str(path), b"", summary, 1_000_000))
    assert result.error == ""
    assert result.search_headers is None and result.search_body is None
    assert sum(largest) < len(data) // 8, largest  # windows near part starts, not the text
    assert len(data) > searchtext.LARGE_MESSAGE


def test_index_text_of_a_large_message_with_small_text_equals_the_whole_read(
        tmp_path: Path, monkeypatch: object) -> None:
    """Small text beside a 10 MiB attachment: read through the window, the index text
    is what reading the message whole gives."""
    import json

    from kittiwake.message import searchtext
    from kittiwake.message.searchtext import IndexJob, index_text

    data = SAMPLE.replace(b"JVBERi0xLjQK", b"QUFB\r\n" * (10 * 1024 * 1024 // 6))
    path = tmp_path / "msg"
    path.write_bytes(data[100:])
    summary = json.dumps({"part": parse(data).to_dict()})
    job = IndexJob(7, str(path), data[:100], summary, 1_000_000)
    windowed = index_text(job)
    monkeypatch.setattr(searchtext, "LARGE_MESSAGE", len(data) + 1)  # type: ignore[attr-defined]
    whole = index_text(job)
    assert windowed == whole and whole.search_body is not None and "café" in whole.search_body
