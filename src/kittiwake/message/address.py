"""Address lists in From/Sender/Reply-To/To/Cc/Bcc (RFC 5322 §3.4, §4.4).

:func:`parse_address_list` reads mailboxes and groups with display names,
quoted strings, comments, routes and other obsolete syntax (RFC 5322 §4.4),
RFC 2047 encoded display names and raw UTF-8 (RFC 6532). It never raises:
whatever is not understood is skipped or kept as best it can be.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kittiwake.dns.names import InvalidName, mail_domain
from kittiwake.message.rfc2047 import decode_words

_TOKENS = re.compile(
    r"""
    (?P<ws>[ \t\r\n]+)
  | (?P<qs>"(?P<qtext>(?:[^"\\]|\\.)*+)"?)
  | (?P<comment>\()
  | (?P<dl>\[(?:[^\]\\]|\\.?)*+\]?)
  | (?P<special>[,:;@<>)])
  | (?P<atom>[^ \t\r\n"(),:;@<>\[]+)
    """,
    re.S | re.X,
)
_QP = re.compile(r"\\(.)", re.S)
_PLAIN_PHRASE = re.compile(r"[\w!#$%&'*+/=?^`{|}~.-]+(?: [\w!#$%&'*+/=?^`{|}~.-]+)*")
_PARENS = re.compile(r"\\.|[()]", re.S)


@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox: display name (decoded, "" if none), local part and domain as written.

    ``domain`` is "" when the address had no ``@`` (IMAP then sends NIL).
    """

    name: str
    localpart: str
    domain: str

    @property
    def addr(self) -> str:
        """``localpart@domain`` (or just the local part without a domain)."""
        return f"{self.localpart}@{self.domain}" if self.domain else self.localpart

    @property
    def ascii_domain(self) -> str:
        """The domain as A-labels (IDNA 2008, UTS #46); as written if that fails."""
        return _idna(self.domain, encode=True)

    @property
    def unicode_domain(self) -> str:
        """The domain as U-labels; as written if that fails."""
        return _idna(self.domain, encode=False)

    def __str__(self) -> str:
        if not self.name:
            return f"<{self.addr}>" if self.domain else self.addr
        return f"{_display(self.name)} <{self.addr}>"


@dataclass(frozen=True, slots=True)
class Group:
    """An RFC 5322 §3.4 group: ``name: member, member;`` (possibly empty)."""

    name: str
    members: tuple[Address, ...] = field(default_factory=tuple)

    def __str__(self) -> str:
        return f"{_display(self.name)}: " + ", ".join(str(a) for a in self.members) + ";"


AddressList = list[Address | Group]


def _idna(domain: str, *, encode: bool) -> str:
    # The one mail-domain normaliser; an address literal or a name IDNA 2008
    # refuses (an invisible U+200B, say) stays as written.
    if not domain or domain.startswith("["):
        return domain
    try:
        forms = mail_domain(domain)
    except InvalidName:
        return domain
    return forms.ascii if encode else forms.unicode


def _display(name: str) -> str:
    # Unquoted only if the name is atoms separated by single spaces (RFC 5322 §3.2.5).
    if _PLAIN_PHRASE.fullmatch(name) and not name.startswith("."):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _comment_end(text: str, pos: int) -> int:
    """The offset after the comment opening at ``pos`` (nested, RFC 5322 §3.2.2)."""
    depth = 0
    for m in _PARENS.finditer(text, pos):
        c = m.group(0)
        if c[0] == "\\":
            continue
        depth += 1 if c == "(" else -1
        if depth == 0:
            return m.end()
    return len(text)


def _tokens(text: str) -> list[tuple[str, str]]:
    """``(kind, text)`` pairs; quoted strings and comments come unquoted."""
    out: list[tuple[str, str]] = []
    pos = 0
    n = len(text)
    while pos < n:
        m = _TOKENS.match(text, pos)
        if m is None:  # cannot happen with these alternatives; stay safe
            pos += 1
            continue
        kind = m.lastgroup or "atom"
        if kind == "comment":
            end = _comment_end(text, pos)
            inner = text[pos + 1 : end - 1 if text[end - 1 : end] == ")" else end]
            out.append(("comment", _QP.sub(r"\1", inner)))
            pos = end
            continue
        if kind == "qs":
            out.append(("qs", _QP.sub(r"\1", m.group("qtext"))))
        elif kind != "ws":
            out.append((kind, m.group(0)))
        else:
            out.append(("ws", " "))
        pos = m.end()
    return out


def _phrase(words: list[tuple[str, str]]) -> str:
    """A display name from its words: adjacent words joined with a space, then 2047-decoded."""
    parts: list[str] = []
    for kind, text in words:
        if kind == "ws":
            if parts and parts[-1] != " ":
                parts.append(" ")
        elif kind in ("atom", "qs", "dl") or (kind == "special" and text not in ",;:<>"):
            parts.append(text)
    return decode_words("".join(parts).strip())


def _addr_spec(toks: list[tuple[str, str]]) -> tuple[str, str] | None:
    """``(localpart, domain)`` from addr-spec tokens (comments and white space dropped)."""
    words = [(k, t) for k, t in toks if k not in ("ws", "comment")]
    if not words:
        return None
    at = max((i for i, (k, t) in enumerate(words) if k == "special" and t == "@"), default=-1)
    if at < 0:
        local_toks, dom_toks = words, []
    else:
        local_toks, dom_toks = words[:at], words[at + 1 :]
    local = "".join(_quote_local(t) if k == "qs" else t for k, t in local_toks if k != "special"
                    or t not in "@<>")
    domain = "".join(t for k, t in dom_toks if k in ("atom", "dl"))
    if not local and not domain:
        return None
    return local, domain


def _quote_local(text: str) -> str:
    """A quoted local part stays quoted unless it is a valid dot-atom (RFC 5322 §3.4.1)."""
    if re.fullmatch(r"[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*", text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _mailbox(toks: list[tuple[str, str]]) -> Address | None:
    """One mailbox from its tokens: ``phrase <addr>`` or ``addr (comment)``."""
    lt = next((i for i, (k, t) in enumerate(toks) if k == "special" and t == "<"), -1)
    if lt >= 0:
        gt = next(
            (i for i, (k, t) in enumerate(toks) if i > lt and k == "special" and t == ">"),
            len(toks),
        )
        inner = toks[lt + 1 : gt]
        # RFC 5322 §4.4 obs-route: "@a,@b:" before the address is ignored.
        colon = max((i for i, (k, t) in enumerate(inner) if k == "special" and t == ":"),
                    default=-1)
        if colon >= 0:
            inner = inner[colon + 1 :]
        spec = _addr_spec(inner)
        name = _phrase(toks[:lt])
        if spec is None:
            return Address(name, "", "") if name else None
        return Address(name, spec[0], spec[1])
    spec = _addr_spec(toks)
    if spec is None:
        return None
    comments = [t for k, t in toks if k == "comment" and t.strip()]
    name = decode_words(comments[-1].strip()) if comments else ""
    return Address(name, spec[0], spec[1])


def parse_address_list(value: str | None) -> AddressList:
    """Mailboxes and groups in an address header value (RFC 5322 §3.4); never raises."""
    if not value:
        return []
    # The same values recur (a message's envelope and its search text read the
    # same fields; a mailbox has few correspondents). Results are immutable.
    cached = _cache.get(value)
    if cached is None:
        try:
            cached = tuple(_parse(_tokens(value)))
        except (ValueError, IndexError, RecursionError):  # defensive: bad input gives nothing
            cached = ()
        if len(_cache) >= _CACHE_SIZE:
            _cache.clear()
        if len(value) <= _CACHE_VALUE_MAX:
            _cache[value] = cached
    return list(cached)


_CACHE_SIZE = 512
_CACHE_VALUE_MAX = 2000
_cache: dict[str, tuple[Address | Group, ...]] = {}


def _parse(toks: list[tuple[str, str]]) -> AddressList:
    out: AddressList = []
    cur: list[tuple[str, str]] = []
    group: str | None = None
    members: list[Address] = []
    in_angle = False

    def finish() -> None:
        mb = _mailbox(cur)
        if mb is not None:
            (members if group is not None else out).append(mb)
        cur.clear()

    for kind, text in toks:
        if kind == "special":
            if text == "<":
                in_angle = True
            elif text == ">":
                in_angle = False
            elif text == "," and not in_angle:
                finish()
                continue
            elif text == ":" and not in_angle and group is None:
                group = _phrase(cur)
                cur.clear()
                continue
            elif text == ";" and not in_angle and group is not None:
                finish()
                out.append(Group(group, tuple(members)))
                group, members = None, []
                continue
        cur.append((kind, text))
    finish()
    if group is not None:  # unterminated group
        out.append(Group(group, tuple(members)))
    return out


def parse_addresses(value: str | None) -> list[Address]:
    """All mailboxes in ``value``, group members included, groups flattened."""
    return flatten(parse_address_list(value))


def flatten(items: AddressList) -> list[Address]:
    """Mailboxes of an address list with groups replaced by their members."""
    out: list[Address] = []
    for item in items:
        if isinstance(item, Group):
            out.extend(item.members)
        else:
            out.append(item)
    return out
