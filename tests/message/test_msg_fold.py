"""fold_header against the earlier regex-based implementation, kept here as the reference."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from kittiwake.message import fold_header, parse_header_section

_REF_TOKEN = re.compile(r'[ \t]*(?:(?>"(?:[^"\\]|\\.?)*+"?)|[^ \t"])++|[ \t]+\Z')


def reference_fold(name: str, value: str, width: int = 78) -> str:
    """The regex-based fold_header this module replaced (output kept byte for byte)."""
    lines = re.split(r"\r?\n(?=[ \t])", value.strip(" \t\r\n"))
    out: list[str] = []
    for i, text in enumerate(lines):
        text = text.replace("\r", " ").replace("\n", " ").rstrip(" \t")
        line = f"{name}: " if i == 0 else ""
        for tok in _REF_TOKEN.findall(text):
            if line.strip(" \t") and len(line) + len(tok) > width and tok[0] in " \t":
                out.append(line)
                line = tok
            else:
                line += tok
        out.append(line)
    return "\r\n".join(out) + "\r\n"


def reference_without_blank_lines(name: str, value: str, width: int = 78) -> str:
    """The reference, less the empty continuation lines it wrote for blank folds."""
    lines = reference_fold(name, value, width).split("\r\n")[:-1]
    return "\r\n".join([lines[0], *(line for line in lines[1:] if line)]) + "\r\n"


# Values built from the pieces that matter to folding: white space, quotes,
# backslashes, explicit folds, bare CR and LF, short and long words.
_PIECES = st.sampled_from([
    " ", "  ", "\t", " \t", '"', "\\", "\r\n ", "\r\n\t", "\n ", "\r", "\n", "\r\n",
    "a", "bc", "word", "x" * 30, "y" * 90, ";", "(c)", "é", "=", '"q s"', '\\"',
])
_VALUES = st.lists(_PIECES, max_size=60).map("".join)
_NAMES = st.sampled_from(["X", "Subject", "Authentication-Results", "Received", "N" * 80])


@settings(max_examples=3000, deadline=None)
@given(_NAMES, _VALUES, st.integers(min_value=1, max_value=120))
def test_fold_equals_reference(name: str, value: str, width: int) -> None:
    assert fold_header(name, value, width) == reference_without_blank_lines(name, value, width)


@settings(max_examples=500, deadline=None)
@given(_NAMES, st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=300))
def test_fold_equals_reference_on_any_text(name: str, value: str) -> None:
    assert fold_header(name, value) == reference_without_blank_lines(name, value)


@settings(max_examples=1000, deadline=None)
@given(_NAMES, _VALUES, st.integers(min_value=1, max_value=120))
def test_fold_equals_reference_without_blank_folds(name: str, value: str, width: int) -> None:
    # Where no explicit fold leaves a blank continuation, the output is exactly the old one.
    pieces = re.split(r"\r?\n(?=[ \t])", value.strip(" \t\r\n"))
    if any(not p.replace("\r", " ").replace("\n", " ").strip(" \t") for p in pieces[1:]):
        return
    assert fold_header(name, value, width) == reference_fold(name, value, width)


def test_fold_examples() -> None:
    long = " ".join(["word"] * 30)
    for value in ("", "a", long, f'"{long}" {long}', "a\r\n\tb", "x" * 100 + " y",
                  '"unterminated ' + long, 'a\\" b "c\\" d" ' + long):
        assert fold_header("Subject", value) == reference_fold("Subject", value)


def test_fold_drops_blank_continuation_lines() -> None:
    # A blank line inside the field would end the header section (RFC 5322 §2.2.3).
    assert fold_header("X", "a\r\n\t\r\n\tb") == "X: a\r\n\tb\r\n"
    assert fold_header("X", "a\r\n \t\r\r\n b") == "X: a\r\n b\r\n"
    out = fold_header("X", "a\r\n\t\r\n\tb")
    headers, body = parse_header_section(out.encode() + b"\r\nbody")
    assert [h.name for h in headers] == ["X"]
    assert out.encode() + b"\r\nbody" == headers.raw() + b"\r\nbody"
    assert body == len(out) + 2
