"""Python's email package as an oracle: messages it generates, both parsers agree
on the tree shape, the content types and the decoded bodies."""

from __future__ import annotations

import email
import email.policy
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msg_invariants import check_tree

from kittiwake.message import Part, decode_body, parse, text_of

_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="\r")
    | st.sampled_from("\n\t "),
    max_size=200,
)
_charset = st.sampled_from(["utf-8", "us-ascii", "iso-8859-1"])


@st.composite
def _text_part(draw: st.DrawFn) -> MIMEBase:
    charset = draw(_charset)
    text = draw(_text)
    try:
        text.encode("ascii" if charset == "us-ascii" else charset)
    except UnicodeEncodeError:
        charset = "utf-8"
    return MIMEText(text, draw(st.sampled_from(["plain", "html"])), charset)


def _binary_part(data: bytes) -> MIMEBase:
    return MIMEApplication(data)


_leaf = st.one_of(_text_part(), st.binary(max_size=300).map(_binary_part))


def _multipart(children: list[MIMEBase], subtype: str) -> MIMEBase:
    return MIMEMultipart(subtype, _subparts=children)


def _rfc822(inner: MIMEBase) -> MIMEBase:
    inner["Subject"] = "inner"
    return MIMEMessage(inner)


_tree = st.recursive(
    _leaf,
    lambda kids: st.one_of(
        st.builds(_multipart, st.lists(kids, min_size=1, max_size=4),
                  st.sampled_from(["mixed", "alternative", "related"])),
        kids.map(_rfc822),
    ),
    max_leaves=8,
)


def _compare(ours: Part, theirs: Message, data: bytes) -> None:
    assert ours.media_type == theirs.get_content_type()
    if ours.is_multipart:
        kids = theirs.get_payload()
        assert isinstance(kids, list)
        assert len(ours.parts) == len(kids)
        for a, b in zip(ours.parts, kids, strict=True):
            _compare(a, b, data)
    elif ours.is_message:
        inner = theirs.get_payload()
        assert isinstance(inner, list) and len(inner) == 1
        assert ours.message is not None
        _compare(ours.message, inner[0], data)
    else:
        expected = theirs.get_payload(decode=True)
        assert decode_body(ours, data) == expected
        if ours.type == "text":
            cs = theirs.get_content_charset() or "us-ascii"
            assert text_of(ours, data) == expected.decode(cs)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(_tree, st.sampled_from(["\r\n", "\n"]))
def test_same_tree_as_stdlib(msg: MIMEBase, linesep: str) -> None:
    msg["Subject"] = "oracle"
    msg["From"] = "Oracle <oracle@example.org>"
    data = msg.as_bytes(policy=email.policy.compat32.clone(linesep=linesep))
    root = parse(data)
    check_tree(root, data)
    assert root.defects == []
    _compare(root, email.message_from_bytes(data), data)
    assert root.envelope is not None and root.envelope.subject == "oracle"


@settings(max_examples=30)
@given(_tree)
def test_each_part_parses_alone_the_same(msg: MIMEBase) -> None:
    data = msg.as_bytes(policy=email.policy.SMTP)
    root = parse(data)
    for p in root.walk():
        alone = parse(data[p.header_start : p.end])
        shift = p.header_start
        for a, b in zip(p.walk(), alone.walk(), strict=True):
            assert (a.media_type, a.header_start - shift, a.body_start - shift, a.end - shift) == (
                b.media_type, b.header_start, b.body_start, b.end)
            assert a.lines == b.lines
