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
