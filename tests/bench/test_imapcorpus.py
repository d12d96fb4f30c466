"""The IMAP benchmark's corpus: deterministic, and its planted marker is where it says."""

from __future__ import annotations

import pytest
from bench.imapcorpus import MARKER, MAX_SIZE, MIN_SIZE, Corpus, Place

from kittiwake.message import Part, parse, text_of
from kittiwake.message.html import html_to_text

COUNT, HITS = 400, 60


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return Corpus(COUNT, seed=11, hits=HITS)


def where_marker_is(data: bytes) -> set[str]:
    """Every place a reader decoding the message finds the marker, found independently."""
    marker = MARKER.lower()
    root = parse(data)
    found: set[str] = set()
    if marker.encode() in data.lower():
        found.add("raw")
    subject = root.headers.decoded("Subject") or ""
    if marker in subject.lower():
        found.add("subject")
    if marker in (root.headers.decoded("From") or "").lower():
        found.add("from")
    others = [h.decoded for h in root.headers if h.key not in ("subject", "from")]
    if any(marker in v.lower() for v in others):
        found.add("other header")

    def leaves(part: Part) -> list[Part]:
        if part.is_multipart:
            return [leaf for p in part.parts for leaf in leaves(p)]
        if part.is_message and part.message is not None:
            return leaves(part.message)
        return [part]

    for leaf in leaves(root):
        if leaf.type != "text":
            body = leaf.body_bytes(data)  # attachments: raw base64 and its decoding
            if marker.encode() in body.lower():
                found.add("attachment")
            continue
        text = text_of(leaf, data)
        if leaf.subtype == "html":
            text = html_to_text(text)
        if marker in text.lower():
            found.add(f"{leaf.subtype} {leaf.encoding}")
    return found


def test_same_seed_same_bytes_other_seed_other_bytes(corpus: Corpus) -> None:
    again = Corpus(COUNT, seed=11, hits=HITS)
    assert again.planted == corpus.planted
    assert again.expected == corpus.expected
    for i in (0, 1, 57, COUNT - 1):
        assert again.message(i) == corpus.message(i)
    other = Corpus(COUNT, seed=12, hits=HITS)
    assert other.message(57) != corpus.message(57)


def test_expected_hit_sets(corpus: Corpus) -> None:
    assert len(corpus.planted) == HITS
    assert corpus.expected["TEXT"] == frozenset(corpus.planted)
    assert corpus.expected["SUBJECT"] == {i for i, p in corpus.planted.items()
                                          if p is Place.SUBJECT}
    assert corpus.expected["FROM"] == {i for i, p in corpus.planted.items() if p is Place.FROM}
    counts = {p: sum(1 for q in corpus.planted.values() if q is p) for p in Place}
    assert counts == {Place.SUBJECT: 12, Place.BASE64: 12, Place.FROM: 12, Place.TEXT: 24}


def test_marker_only_where_planted(corpus: Corpus) -> None:
    for i in range(COUNT):
        data = corpus.message(i)
        found = where_marker_is(data)
        place = corpus.planted.get(i)
        if place is None:
            assert found == set(), i
        elif place is Place.SUBJECT:
            assert found == {"subject"}, (i, found)  # encoded: not in the raw bytes
        elif place is Place.FROM:
            assert found - {"raw"} == {"from"}, (i, found)
        elif place is Place.BASE64:
            assert found == {"plain base64"}, (i, found)
        else:
            assert "raw" in found and found - {"raw", "html quoted-printable"} in (
                {"plain 7bit"}, {"plain 8bit"}, {"plain quoted-printable"}), (i, found)


def test_varied_like_real_mail(corpus: Corpus) -> None:
    sizes, types, encodings = [], set(), set()
    encoded_headers = 0
    threaded = 0
    for i in range(COUNT):
        data = corpus.message(i)
        sizes.append(len(data))
        root = parse(data)
        assert Corpus.index_of(root.headers.get("Message-ID") or "") == i
        types.update(p.media_type for p in root.walk())
        encodings.update(p.encoding for p in root.walk())
        head = root.header_bytes(data)
        encoded_headers += b"=?utf-8?" in head or b"=?iso-8859-1?" in head
        threaded += "References" in root.headers
    assert min(sizes) >= MIN_SIZE and max(sizes) <= MAX_SIZE
    sizes.sort()
    assert sizes[COUNT // 2] < 16 * 1024 and sizes[-COUNT // 50] > 40 * 1024  # small, long tail
    assert {"text/plain", "text/html", "multipart/alternative", "multipart/mixed",
            "message/rfc822", "application/pdf"} <= types
    assert {"7bit", "8bit", "quoted-printable", "base64"} <= encodings
    assert encoded_headers > COUNT // 4 and threaded > COUNT // 10


def test_maildir_in_delivery_order(corpus: Corpus, tmp_path) -> None:  # type: ignore[no-untyped-def]
    small = Corpus(30, seed=11, hits=5)
    total = small.write_maildir(tmp_path / "box")
    names = sorted(p.name for p in (tmp_path / "box" / "new").iterdir())
    assert names == [Corpus.maildir_name(i) for i in range(30)]
    assert total == sum(len(small.message(i)) for i in range(30))
    assert (tmp_path / "box" / "new" / names[7]).read_bytes() == small.message(7)
