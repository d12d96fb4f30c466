"""Checks shared by the message tests: a part tree's offsets are sane."""

from __future__ import annotations

from kittiwake.message import Defect, Part


def check_tree(root: Part, data: bytes) -> int:
    """Assert the offset invariants of every part; return the number of parts."""
    n = 0
    stack = [root]
    while stack:
        p = stack.pop()
        n += 1
        assert Defect.PARSE_ERROR not in p.defects  # the parser's safety net was not needed
        assert 0 <= p.header_start <= p.body_start <= p.end <= len(data), p
        assert p.header_size == p.body_start - p.header_start
        assert p.body_size == p.end - p.body_start
        assert p.lines >= 0
        assert p.lines <= p.body_size
        prev = p.body_start
        for c in p.parts:
            assert prev <= c.header_start, (p, c)  # children are ordered, disjoint
            assert c.end <= p.end
            prev = c.end
        if p.message is not None:
            assert p.message.header_start == p.body_start
            assert p.message.end == p.end
            assert p.message.envelope is not None
            stack.append(p.message)
        stack.extend(p.parts)
    return n


def check_results(root: Part, data: bytes) -> None:
    """Assert what the functions built on a parse give back, for any input.

    - the root covers the data to its end (only an mbox ``From `` line may precede it);
    - a body decodes to its raw bytes for identity encodings (RFC 2045 §6.2) and to
      at most 3/4 (base64, §6.8) or all (quoted-printable, §6.7) of them otherwise;
    - every text a user or the search index sees is valid Unicode (encodable as UTF-8);
    - the stored form (``to_dict``) survives JSON and rebuilds the same tree;
    - the Received count agrees with the parsed header fields.
    """
    import json

    from kittiwake.message import (
        count_received,
        decode_body,
        searchable_text,
        text_of,
    )

    assert root.end == len(data)
    assert root.header_start == 0 or data.startswith(b"From "), root
    for p in root.walk():
        raw = data[p.body_start:p.end]
        body = decode_body(p, data)
        encoding = p.encoding.lower()
        if encoding == "base64":
            assert len(body) <= len(raw) * 3 // 4 + 3, (p, len(body), len(raw))
        elif encoding == "quoted-printable":
            assert len(body) <= len(raw), (p, len(body), len(raw))
        else:
            assert body == raw, p
        text_of(p, data).encode("utf-8")  # no lone surrogates
        if p.envelope is not None:
            subject = p.envelope.decoded_subject
            assert subject is None or isinstance(subject, str)
            (subject or "").encode("utf-8")
            date = p.envelope.parsed_date
            assert date is None or date.tzinfo is not None, date
    headers, body_text = searchable_text(root, data)
    headers.encode("utf-8")
    body_text.encode("utf-8")
    # The budget counts the texts, not the blank lines joining them.
    assert len(searchable_text(root, data, max_chars=10)[1].replace("\n\n", "")) <= 10
    stored = json.loads(json.dumps(root.to_dict()))
    assert Part.from_dict(stored, data).to_dict() == root.to_dict()
    assert count_received(data) == root.headers.count("Received")
