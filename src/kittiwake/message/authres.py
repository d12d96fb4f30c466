"""The Authentication-Results header field (RFC 8601): compose, and read its authserv-id.

:class:`MethodResult` holds one method's verdict (SPF, DKIM, DMARC, iprev,
...) as RFC 8601 §2.2 spells it; :func:`authentication_results` formats the
field with each result on its own folded line, quoting values that are not
tokens. :func:`authserv_id_of` lets an MTA find and remove fields that claim
its own authserv-id before adding its own (RFC 8601 §5).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from kittiwake.message.headers import fold_header
from kittiwake.message.params import comment_text, needs_quoting, quote_string, strip_comments

# RFC 8601 §2.2: pvalue may be an (optionally @-prefixed) address or domain unquoted.
_ADDR_PVALUE = re.compile(
    r"(?:[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*)?@?"
    r"[\w-]+(?:\.[\w-]+)*\.?"
)
_NOT_KEYWORD = re.compile(r"[^A-Za-z0-9-]")


@dataclass(frozen=True, slots=True)
class MethodResult:
    """One resinfo (RFC 8601 §2.2): ``method=result (comment) reason="..." ptype.prop=value``.

    ``properties`` are ``(ptype, property, value)`` triples, e.g.
    ``("smtp", "mailfrom", "user@example.org")`` or ``("header", "d", "example.org")``.
    """

    method: str
    result: str
    reason: str | None = None
    properties: Sequence[tuple[str, str, str]] = field(default_factory=tuple)
    comment: str | None = None


@lru_cache(maxsize=512)
def _keyword(text: str) -> str:
    """A Keyword (RFC 8601 §2.2, from RFC 5321), with anything else replaced by "-".
    Cached: the method, result and property names are a small set."""
    cleaned = _NOT_KEYWORD.sub("-", text).strip("-")
    return cleaned or "unknown"


@lru_cache(maxsize=128)
def _method(text: str) -> str:
    name, slash, version = text.partition("/")  # method = Keyword [ "/" method-version ]
    out = _keyword(name)
    if slash and version.strip().isascii() and version.strip().isdigit():
        out += "/" + version.strip()
    return out


def _value(text: str) -> str:
    """RFC 2045 value: a token, else a quoted-string."""
    return quote_string(text) if needs_quoting(text) else text


@lru_cache(maxsize=1024)
def _pvalue(text: str) -> str:
    """A property value (RFC 8601 §2.2); cached: the same senders' addresses, domains
    and selectors come again and again."""
    if _ADDR_PVALUE.fullmatch(text):
        return text
    return _value(text)


def _comment(text: str) -> str:
    return "(" + comment_text(text) + ")"


def _resinfo(r: MethodResult) -> str:
    out = f"{_method(r.method)}={_keyword(r.result)}"
    if r.comment:
        out += " " + _comment(r.comment)
    if r.reason is not None:
        out += f" reason={_value(r.reason)}"
    for ptype, prop, value in r.properties:
        out += f" {_keyword(ptype)}.{_keyword(prop)}={_pvalue(value)}"
    return out


def authentication_results(
    authserv_id: str, results: Sequence[MethodResult], *, version: int | None = None
) -> str:
    """A complete, folded ``Authentication-Results: ...\\r\\n`` field.

    RFC 8601 §2.2: ``authserv-id [version] ; resinfo ; resinfo`` or, with no
    results, ``authserv-id; none``. Each resinfo starts a continuation line.
    """
    head = _value(authserv_id.strip()) if authserv_id.strip() else "unknown"
    if version is not None and version != 1:
        head += f" {int(version)}"
    if not results:
        return fold_header("Authentication-Results", f"{head}; none")
    value = head + ";" + ";".join("\r\n\t" + _resinfo(r) for r in results)
    return fold_header("Authentication-Results", value)


_AUTHSERV = re.compile(r'\s*("(?:[^"\\]|\\.)*+"|[^\s;()"]+)')


def authserv_id_of(value: str) -> str | None:
    """The authserv-id of an Authentication-Results value, or None if there is none."""
    m = _AUTHSERV.match(strip_comments(value))
    if m is None:
        return None
    ident = m.group(1)
    if ident.startswith('"'):
        ident = re.sub(r"\\(.)", r"\1", ident[1:-1])
    return ident or None
