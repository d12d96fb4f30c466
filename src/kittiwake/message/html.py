"""Reduce HTML mail bodies to plain text, for search and previews.

A small converter on the standard library's HTMLParser: script, style and
head contents are dropped, block elements become line breaks, entities are
decoded, runs of white space collapse as a browser would show them.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

_SKIP = frozenset({"script", "style", "head", "title", "template", "noscript", "svg", "object"})
_BLOCK = frozenset({
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "fieldset",
    "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
    "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tr", "ul", "body",
    "html", "caption", "tbody", "thead", "tfoot",
})
_PARAGRAPH = frozenset({
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table", "ul", "ol", "dl", "pre",
    "hr", "figure",
})
_CELL = frozenset({"td", "th"})
_WS = re.compile(r"[ \t\r\n\f\u200b]+")
_BLANKS = re.compile(r"\n{3,}")
_TAGS = re.compile(r"<[^>]*>")
_TAG = re.compile(r"</?[A-Za-z][^<>]*>|<![^<>]*>|<\?[^<>]*>")


def _tidy(source: str) -> str:
    """Drop comments and escape every "<" that does not start a complete tag.

    HTMLParser rescans unfinished constructs (``<a <a <a ...``, an unclosed
    ``<!--``) and becomes quadratic; after this linear pass it only sees
    complete tags.
    """
    out: list[str] = []
    pos = 0
    n = len(source)
    while pos < n:
        i = source.find("<", pos)
        if i < 0:
            out.append(source[pos:])
            break
        out.append(source[pos:i])
        if source.startswith("<!--", i):
            j = source.find("-->", i + 4)
            pos = n if j < 0 else j + 3
            continue
        m = _TAG.match(source, i)
        if m is None:
            out.append("&lt;")
            pos = i + 1
        else:
            out.append(m.group(0))
            pos = m.end()
    return "".join(out)


class _Break(int):
    """A pending line break: 1 for a new line, 2 for a paragraph break."""


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str | _Break] = []
        self.skip = 0
        self.pre = 0

    def brk(self, tag: str) -> None:
        level = _Break(2 if tag in _PARAGRAPH else 1)
        if self.out and isinstance(self.out[-1], _Break):
            self.out[-1] = _Break(max(self.out[-1], level))
        else:
            self.out.append(level)

    def text(self) -> str:
        return "".join("\n" * x if isinstance(x, _Break) else x for x in self.out)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip += 1
        elif tag in _BLOCK:
            self.brk(tag)
            if tag == "pre":
                self.pre += 1
        elif tag in _CELL:
            self.out.append(" ")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt and not self.skip:
                self.out.append(alt)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            return  # <script/> opens nothing
        self.handle_starttag(tag, attrs)
        if tag == "pre":
            self.pre = max(0, self.pre - 1)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK:
            self.brk(tag)
            if tag == "pre":
                self.pre = max(0, self.pre - 1)
        elif tag in _CELL:
            self.out.append(" ")

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if not self.pre:
            data = _WS.sub(" ", data)
            if data == " " and (not self.out or isinstance(self.out[-1], _Break)):
                return
        self.out.append(data)


def html_to_text(source: str) -> str:
    """The readable text of an HTML document; never raises."""
    parser = _Text()
    try:
        parser.feed(_tidy(source))
        parser.close()
        text = parser.text()
    except Exception:  # HTMLParser can fail on odd markup; fall back to stripping tags
        text = html.unescape(_TAGS.sub(" ", source))
    lines = [" ".join(line.split()) if line.strip() else "" for line in text.split("\n")]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()
