"""SPF macros (RFC 7208 §7): parsing macro-strings and expanding them.

A macro-string is parsed once, when its record is parsed, so that a macro
syntax error anywhere in a record is a "permerror" before anything is
evaluated (RFC 7208 §4.6). Expansion is asynchronous only because the "p"
macro needs DNS; its lookups are done by the caller through a callback.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from kittiwake.spf.status import MacroSyntaxError, PermError

# RFC 7208 §7.1: macro-letter = "s" / "l" / "o" / "d" / "i" / "p" / "h" / "c" / "r" / "t" / "v"
MACRO_LETTERS = frozenset("slodiphcrtv")
# RFC 7208 §7.3: 'The "c", "r", and "t" macro-letters MUST NOT be used except in "exp" text.'
EXP_ONLY_LETTERS = frozenset("crt")
# RFC 7208 §7.1: delimiter = "." / "-" / "+" / "," / "/" / "_" / "="
DELIMITERS = frozenset(".-+,/_=")
# RFC 3986 §2.3 unreserved characters stay as they are when URL-escaping (RFC 7208 §7.3).
_UNRESERVED = "-._~"
# A bound on one expansion, so that a record cannot make us build megabytes of text
# from many macros; a domain name is cut to 253 characters anyway (RFC 7208 §7.3).
MAX_EXPANSION = 8192

# RFC 7208 §7.1: toplabel = ( *alphanum ALPHA *alphanum ) /
#                           ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
_TOPLABEL = re.compile(
    r"(?:[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9]+-[A-Za-z0-9-]*[A-Za-z0-9])\Z"
)


@dataclass(frozen=True)
class MacroExpand:
    """One ``%{...}`` macro: letter, transformers and delimiters (RFC 7208 §7.1)."""

    letter: str  # lower case
    digits: int | None = None  # keep this many right-hand parts
    reverse: bool = False
    delimiters: str = ""  # "" means "." (RFC 7208 §7.3)
    escape: bool = False  # upper-case letter: URL-escape the value (§7.3)

    def __str__(self) -> str:
        letter = self.letter.upper() if self.escape else self.letter
        digits = "" if self.digits is None else str(self.digits)
        return f"%{{{letter}{digits}{'r' if self.reverse else ''}{self.delimiters}}}"


@dataclass(frozen=True)
class MacroString:
    """A parsed macro-string: literal text and :class:`MacroExpand` parts in order."""

    text: str
    parts: tuple[str | MacroExpand, ...] = ()
    # Whether the string ends with a macro-expand ("%{..}", "%%", "%_" or "%-"),
    # and the literal text after the last one: for the domain-end rule (§7.1).
    ends_with_macro: bool = False
    tail: str = ""

    @property
    def has_macros(self) -> bool:
        return any(isinstance(p, MacroExpand) for p in self.parts)

    def __str__(self) -> str:
        return self.text


@dataclass
class MacroContext:
    """The values macros expand to (RFC 7208 §7.3)."""

    sender: str  # <sender>, with "postmaster" local-part when it had none (§4.3)
    local: str  # local-part of <sender>
    sender_domain: str  # domain of <sender>
    domain: str  # <domain> of the current check_host()
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    helo: str = ""
    receiver: str = "unknown"
    timestamp: int = 0
    # The "p" macro: the validated domain name of <ip> (§7.3), looked up on use.
    validated_name: Callable[[], Awaitable[str]] | None = field(default=None, repr=False)


def parse_macro_string(text: str, *, explain: bool = False) -> MacroString:
    """Parse a macro-string (or, with ``explain``, an explain-string) of RFC 7208 §7.1.

    Raises :class:`MacroSyntaxError` with the reason. Runs in linear time.
    """
    parts: list[str | MacroExpand] = []
    literal: list[str] = []
    ends_with_macro = False
    tail_start = 0
    i, n = 0, len(text)

    def flush() -> None:
        if literal:
            parts.append("".join(literal))
            literal.clear()

    while i < n:
        ch = text[i]
        if ch == "%":
            nxt = text[i + 1] if i + 1 < n else ""
            if nxt in ("%", "_", "-"):
                # RFC 7208 §7.1: "%%" is "%", "%_" a space, "%-" the URL-encoded space.
                literal.append({"%": "%", "_": " ", "-": "%20"}[nxt])
                i += 2
            elif nxt == "{":
                end = text.find("}", i + 2)
                if end < 0:
                    raise MacroSyntaxError(f"unterminated macro in {text!r}")
                flush()
                parts.append(_parse_expand(text[i + 2 : end], text, explain))
                i = end + 1
            else:
                # RFC 7208 §7.1: 'A "%" character not followed by a "{", "%", "-", or
                # "_" character is a syntax error.'
                raise MacroSyntaxError(
                    f"'%' not followed by '{{', '%', '_' or '-' in {text!r}"
                )
            ends_with_macro = True
            tail_start = i
            continue
        # RFC 7208 §7.1: macro-literal = %x21-24 / %x26-7E; explain-string also allows SP.
        if not ("\x21" <= ch <= "\x7e" or (explain and ch == " ")):
            raise MacroSyntaxError(f"character {ch!r} is not allowed in {text!r}")
        literal.append(ch)
        ends_with_macro = False
        i += 1
    flush()
    return MacroString(text, tuple(parts), ends_with_macro, text[tail_start:])


def _parse_expand(body: str, text: str, explain: bool) -> MacroExpand:
    """Parse the inside of ``%{...}``: macro-letter transformers *delimiter."""
    if not body or body[0].lower() not in MACRO_LETTERS:
        raise MacroSyntaxError(f"unknown macro letter in '%{{{body}}}' in {text!r}")
    letter = body[0].lower()
    if letter in EXP_ONLY_LETTERS and not explain:
        raise MacroSyntaxError(
            f"macro '%{{{body}}}' is allowed only in exp= text (RFC 7208 §7.3)"
        )
    j = 1
    while j < len(body) and body[j].isascii() and body[j].isdigit():
        j += 1
    digits: int | None = None
    if j > 1:
        digits = int(body[1:j])
        if digits == 0:
            # RFC 7208 §7.3: "If a DIGIT is specified, the value MUST be nonzero."
            raise MacroSyntaxError(f"macro '%{{{body}}}' keeps zero parts in {text!r}")
    reverse = False
    if j < len(body) and body[j] in "rR":
        reverse = True
        j += 1
    delimiters = body[j:]
    if any(d not in DELIMITERS for d in delimiters):
        raise MacroSyntaxError(f"bad transformer or delimiter in '%{{{body}}}' in {text!r}")
    return MacroExpand(letter, digits, reverse, delimiters, escape=body[0].isupper())


def parse_domain_spec(text: str) -> MacroString:
    """Parse a domain-spec: a macro-string ending in a domain-end (RFC 7208 §7.1).

    domain-end = ( "." toplabel [ "." ] ) / macro-expand
    """
    spec = parse_macro_string(text)
    if not text:
        raise MacroSyntaxError("empty domain-spec")
    if spec.ends_with_macro:
        return spec
    tail = spec.tail[:-1] if spec.tail.endswith(".") else spec.tail
    dot = tail.rfind(".")
    if dot < 0 or not _TOPLABEL.match(tail, dot + 1):
        raise MacroSyntaxError(
            f"domain-spec {text!r} must end in '.' and a top-level label or in a macro"
        )
    return spec


def ip_letter(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """The "i" macro (RFC 7208 §7.3): dotted quad, or dot-separated nibbles for IPv6."""
    if ip.version == 4:
        return str(ip)
    return ".".join(ip.exploded.replace(":", ""))


async def expand(spec: MacroString, ctx: MacroContext) -> str:
    """Expand a parsed macro-string with the values in ``ctx`` (RFC 7208 §7.3)."""
    out: list[str] = []
    size = 0
    for part in spec.parts:
        piece = part if isinstance(part, str) else _transform(part, await _value(part.letter, ctx))
        out.append(piece)
        size += len(piece)
        if size > MAX_EXPANSION:
            raise PermError(f"expansion of {spec.text[:60]!r} is longer than {MAX_EXPANSION}")
    return "".join(out)


async def _value(letter: str, ctx: MacroContext) -> str:
    match letter:
        case "s":
            return ctx.sender
        case "l":
            return ctx.local
        case "o":
            return ctx.sender_domain
        case "d":
            return ctx.domain
        case "i":
            return ip_letter(ctx.ip)
        case "v":
            return "in-addr" if ctx.ip.version == 4 else "ip6"
        case "h":
            return ctx.helo
        case "c":
            # RFC 7208 §7.3: dotted quad, or an RFC 5952 §4 form for IPv6.
            return str(ctx.ip)
        case "r":
            return ctx.receiver or "unknown"
        case "t":
            return str(ctx.timestamp)
        case "p":
            return await ctx.validated_name() if ctx.validated_name else "unknown"
    raise AssertionError(letter)


def _transform(macro: MacroExpand, value: str) -> str:
    """Split, reverse, keep right-hand parts, join with "." (RFC 7208 §7.3), then escape."""
    if macro.digits is not None or macro.reverse or macro.delimiters:
        delimiters = macro.delimiters or "."
        if delimiters == ".":
            pieces = value.split(".")
        else:
            pieces = re.split("[" + re.escape(delimiters) + "]", value)
        if macro.reverse:
            pieces.reverse()
        if macro.digits is not None and macro.digits < len(pieces):
            pieces = pieces[len(pieces) - macro.digits :]
        value = ".".join(pieces)
    if macro.escape:
        # RFC 7208 §7.3: upper-case macros are URL-escaped, keeping RFC 3986 unreserved.
        value = urllib.parse.quote(value, safe=_UNRESERVED)
    return value
