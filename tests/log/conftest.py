"""Fixtures for the logging tests: capture what kittiwake writes to its log stream."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from kittiwake import log

_PAIR = re.compile(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)')
_UNESCAPE = {'"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t"}


def unquote(value: str) -> str:
    """Decode one logfmt value as written by kittiwake."""
    if not value.startswith('"'):
        return value
    body, out, i = value[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _UNESCAPE:
            out.append(_UNESCAPE[nxt])
            i += 2
        elif nxt == "u":
            out.append(chr(int(body[i + 2:i + 6], 16)))
            i += 6
        elif nxt == "U":
            out.append(chr(int(body[i + 2:i + 10], 16)))
            i += 10
        else:
            raise AssertionError(f"bad escape in {value!r}")
    return "".join(out)


def parse_logfmt(line: str) -> dict[str, str]:
    """One logfmt line to a dict; asserts the whole line is key=value pairs."""
    pos, out = 0, {}
    for m in _PAIR.finditer(line):
        assert line[pos:m.start()].strip() == "", f"junk in {line!r}"
        out[m.group(1)] = unquote(m.group(2))
        pos = m.end()
    assert line[pos:].strip() == "", f"junk at end of {line!r}"
    return out


class Capture:
    """Sets up kittiwake logging to a string stream and reads it back."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.format = "logfmt"

    def setup(self, level: str = "info", packages: Mapping[str, str] | None = None,
              format: str = "logfmt") -> Capture:
        self.stream = io.StringIO()
        self.format = format
        log.setup(level, packages, format=format, stream=self.stream)
        return self

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def records(self) -> list[dict[str, Any]]:
        lines = self.text.splitlines()
        if self.format == "json":
            return [json.loads(line) for line in lines]
        return [parse_logfmt(line) for line in lines]


@pytest.fixture
def logs() -> Iterator[Capture]:
    yield Capture()
    log.reset()
