"""The Author Domain: the domain of the RFC5322.From address (RFC 7489 §6.6.1).

DMARC evaluates the domain of the single address in the single From header
field. Messages that do not have exactly that are outside DMARC proper;
:func:`from_domain` says which case applies, and the caller acts on it:

================================  =====================================================
``problem``                       what the caller should do (RFC 7489 §6.6.1 practice)
================================  =====================================================
None                              run :func:`kittiwake.dmarc.verify` on ``domain``
``no-from``                       reject the message (RFC 5322 §3.6 requires From);
                                  Authentication-Results ``dmarc=permerror``
``multiple-from``                 reject (RFC 5322 §3.6 allows one From); ``permerror``
``multiple-addresses``            reject ("typically rejected"); ``permerror``
``no-address``                    group syntax without addresses: "typically
                                  ignored": no DMARC, ``dmarc=none``
``invalid``                       no usable domain (bad syntax, address literal, bad
                                  IDNA): ``permerror``, reject
================================  =====================================================

For ``multiple-addresses`` §6.6.1 also allows checking each domain (the
``addresses`` field lists them) and applying the strictest failing policy.
:func:`AuthorDomain.dmarc_status` gives the Authentication-Results result
for a problem. The parser is a small, forgiving RFC 5322 §3.4 address-list
reader (with RFC 6532 UTF-8 and RFC 6854 groups in From); it never raises.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kittiwake.dns.names import to_ascii
from kittiwake.dns.types import InvalidName

__all__ = ["AuthorDomain", "FromProblem", "from_domain", "parse_addresses"]


class FromProblem(enum.StrEnum):
    """Why a message has no single Author Domain (RFC 7489 §6.6.1)."""

    NO_FROM = "no-from"
    MULTIPLE_FROM = "multiple-from"
    MULTIPLE_ADDRESSES = "multiple-addresses"
    NO_ADDRESS = "no-address"
    INVALID = "invalid"


@dataclass(frozen=True)
class AuthorDomain:
    """The outcome of extracting the RFC5322.From domain."""

    domain: str | None  # lower-case A-labels (§6.6.1: "converted to an A-label"); None on problems
    problem: FromProblem | None = None
    detail: str = ""
    addresses: tuple[str, ...] = ()  # the addr-specs found in the From field(s)

    @property
    def ok(self) -> bool:
        return self.domain is not None

    def dmarc_status(self) -> str:
        """The ``dmarc=`` result for Authentication-Results when there is a problem:
        ``none`` for an address-less group, else ``permerror``; ``""`` when ok."""
        if self.problem is None:
            return ""
        return "none" if self.problem is FromProblem.NO_ADDRESS else "permerror"


def from_domain(message_headers: Any) -> AuthorDomain:
    """Find the Author Domain of a message (RFC 7489 §6.6.1).

    ``message_headers`` is the raw header section (``bytes`` or ``str``; a
    whole message is fine, reading stops at the first empty line), or
    anything with ``.items()`` giving (name, value) pairs (such as
    :class:`email.message.Message`), or an iterable of (name, value) pairs.
    Never raises: unusable input gives ``problem=invalid``.
    """
    try:
        values = [v for n, v in _fields(message_headers) if n.strip(" \t").lower() == "from"]
        return _author(values)
    except Exception as exc:  # junk input must not escape (e.g. odd objects)
        return AuthorDomain(None, FromProblem.INVALID, f"unreadable headers: {type(exc).__name__}")


def _author(values: list[str]) -> AuthorDomain:
    if not values:
        return AuthorDomain(None, FromProblem.NO_FROM, "message has no From header field")
    if len(values) > 1:
        return AuthorDomain(None, FromProblem.MULTIPLE_FROM,
                            f"message has {len(values)} From header fields")
    addresses = parse_addresses(values[0])
    if not addresses:
        return AuthorDomain(None, FromProblem.NO_ADDRESS, "From has no address")
    if len(addresses) > 1:
        return AuthorDomain(None, FromProblem.MULTIPLE_ADDRESSES,
                            f"From has {len(addresses)} addresses", tuple(addresses))
    address = addresses[0]
    at = address.rfind("@")
    if at <= 0:
        return AuthorDomain(None, FromProblem.INVALID, f"From address {address[:80]!r} has no "
                            "local part and domain", (address,))
    domain = address[at + 1:]
    if domain.startswith("["):
        return AuthorDomain(None, FromProblem.INVALID,
                            "From address has an address literal, not a domain", (address,))
    try:
        ascii_domain = to_ascii(domain).lower()
    except InvalidName as exc:
        return AuthorDomain(None, FromProblem.INVALID, f"From domain: {exc}", (address,))
    if not _HOSTNAME.match(ascii_domain):
        # RFC 5322 dot-atoms allow "!#$%..." but a mail domain is letters,
        # digits and hyphens (RFC 5321 §4.1.2 Domain); "_" is tolerated.
        return AuthorDomain(None, FromProblem.INVALID,
                            f"From domain {ascii_domain[:80]!r} is not a host name", (address,))
    return AuthorDomain(ascii_domain, None, "", (address,))


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def _fields(headers: Any) -> Iterable[tuple[str, str]]:
    """(name, unfolded value) pairs from any supported header representation."""
    if isinstance(headers, bytes | bytearray | str):
        return _split_header_section(_text(_header_section(headers)))
    items = headers.items() if hasattr(headers, "items") else headers
    out = []
    for item in items:
        name, value = item
        out.append((_text(name), _unfold(_text(value))))
    return out


def _header_section(data: bytes | bytearray | str) -> bytes | bytearray | str:
    """Cut a whole message down to its header section before decoding it."""
    ends = [i for i in (data.find("\r\n\r\n" if isinstance(data, str) else b"\r\n\r\n"),
                        data.find("\n\n" if isinstance(data, str) else b"\n\n")) if i >= 0]
    return data[:min(ends) + 1] if ends else data


def _unfold(value: str) -> str:
    # RFC 5322 §2.2.3: unfolding removes CRLF before WSP.
    return value.replace("\r\n", "").replace("\n", "").replace("\r", "")


def _split_header_section(text: str) -> list[tuple[str, str]]:
    fields: list[list[str]] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line == "" or line == "\r":
            break  # end of the header section (RFC 5322 §2.1)
        if line[0] in " \t":
            if fields:
                fields[-1][1] += line  # continuation (folded) line
            continue
        name, colon, value = line.partition(":")
        if not colon:
            continue  # not a header field; skip junk
        fields.append([name, value])
    return [(n, v) for n, v in fields]


# --- RFC 5322 §3.4 address lists ------------------------------------------------

_SPECIALS = "<>,:;@"
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\Z")


def _tokens(value: str) -> list[tuple[str, str]]:
    """Lex into ("q", quoted text), ("l", [literal]), ("s", special), ("a", atom).

    Comments (RFC 5322 §3.2.2, nested) and whitespace are dropped; unbalanced
    quotes or comments run to the end of the field.
    """
    out: list[tuple[str, str]] = []
    i, n = 0, len(value)
    while i < n:
        c = value[i]
        if c in " \t\r\n":
            i += 1
        elif c == "(":
            depth = 0
            while i < n:
                if value[i] == "\\":
                    i += 2
                    continue
                if value[i] == "(":
                    depth += 1
                elif value[i] == ")":
                    depth -= 1
                    if depth == 0:
                        i += 1
                        break
                i += 1
        elif c == '"':
            i += 1
            buf = []
            while i < n and value[i] != '"':
                if value[i] == "\\" and i + 1 < n:
                    i += 1
                buf.append(value[i])
                i += 1
            i += 1
            out.append(("q", "".join(buf)))
        elif c == "[":
            end = value.find("]", i)
            end = n if end < 0 else end + 1
            out.append(("l", value[i:end]))
            i = end
        elif c in _SPECIALS:
            out.append(("s", c))
            i += 1
        else:
            # An atom; a stray ")" or "]" belongs to it. Always consume one char.
            start = i
            i += 1
            while i < n and value[i] not in ' \t\r\n("[' + _SPECIALS:
                i += 1
            out.append(("a", value[start:i]))
    return out


def _addr_spec(tokens: list[tuple[str, str]]) -> str | None:
    """The addr-spec in one mailbox: inside <...> when present, else all of it."""
    if ("s", "<") in tokens:
        start = tokens.index(("s", "<")) + 1
        end = tokens.index(("s", ">"), start) if ("s", ">") in tokens[start:] else len(tokens)
        inner = tokens[start:end]
        # RFC 5322 §4.4 obs-route "<@a,@b:user@host>": keep what follows the ":".
        colons = [i for i, t in enumerate(inner) if t == ("s", ":")]
        if colons:
            inner = inner[colons[-1] + 1:]
        tokens = inner
    if not tokens:
        return None
    parts = []
    for kind, text in tokens:
        if kind == "q":
            parts.append('"' + text + '"')
        else:
            parts.append(text)
    return "".join(parts)


def parse_addresses(value: str) -> list[str]:
    """The addr-specs in an address-list (RFC 5322 §3.4), groups flattened.

    Display names, comments and routes are dropped; empty list elements
    (RFC 5322 §4.4 obs-mbox-list) are skipped. Forgiving: never raises.
    """
    addresses: list[str] = []
    current: list[tuple[str, str]] = []
    angle = False

    def flush() -> None:
        spec = _addr_spec(current)
        if spec:
            addresses.append(spec)
        current.clear()

    for token in _tokens(value):
        if token == ("s", "<"):
            angle = True
        elif token == ("s", ">"):
            angle = False
        if angle or token[0] != "s" or token[1] in "<>@":
            current.append(token)
        elif token[1] == ",":
            flush()
        elif token[1] == ":":
            current.clear()  # group display-name (RFC 5322 §3.4 group)
        elif token[1] == ";":
            flush()  # end of group
    flush()
    return addresses
