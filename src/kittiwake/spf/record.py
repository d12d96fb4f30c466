"""Parsing and selecting SPF records (RFC 7208 §4.5, §4.6, §5, §6 and the ABNF of §12).

:func:`parse_record` checks the whole record, macros included, and returns a
:class:`Record` of typed terms, or raises :class:`RecordSyntaxError`: RFC 7208
§4.6 says a syntax error anywhere in the record is a "permerror" before any
term is evaluated. :func:`select_record` picks the one "v=spf1" record among
a name's TXT records (§4.5).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from kittiwake.spf.macro import MacroString, parse_domain_spec, parse_macro_string
from kittiwake.spf.status import MultipleRecords, Qualifier, RecordSyntaxError

VERSION = "v=spf1"

MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
# RFC 7208 §4.6.4: the terms that cause DNS queries and count against the limit of 10.
DNS_MECHANISMS = frozenset({"include", "a", "mx", "ptr", "exists"})

# RFC 7208 §12: name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )
_NAME = r"[A-Za-z][A-Za-z0-9_.\-]*"
_MODIFIER = re.compile(rf"({_NAME})=(.*)\Z", re.DOTALL)
_DIRECTIVE = re.compile(rf"([+\-?~]?)({_NAME})(.*)\Z", re.DOTALL)
# RFC 7208 §5.6: qnum = DIGIT / %x31-39 DIGIT / "1" 2DIGIT / "2" %x30-34 DIGIT / "25" %x30-35
_QNUM = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_IP4_NETWORK = re.compile(rf"{_QNUM}(?:\.{_QNUM}){{3}}\Z")
# RFC 7208 §5.6: ip4-cidr-length = "/" ("0" / %x31-39 0*1DIGIT); ip6: 0*2DIGIT.
_CIDR_NUMBER = re.compile(r"(?:0|[1-9][0-9]*)\Z")
_DUAL_CIDR = re.compile(r"(?:/([0-9]+))?(?://([0-9]+))?\Z")


@dataclass(frozen=True)
class Mechanism:
    """A directive: qualifier and mechanism (RFC 7208 §4.6.2, §5)."""

    qualifier: Qualifier
    kind: str  # one of MECHANISMS, lower case
    domain_spec: MacroString | None = None  # include, a, mx, ptr, exists
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None  # ip4, ip6
    ip4_cidr: int = 32  # a, mx: dual-cidr-length (§5.3)
    ip6_cidr: int = 128
    text: str = ""  # the term as written

    def __str__(self) -> str:
        return self.text

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "mechanism", "text": self.text,
                               "qualifier": str(self.qualifier), "mechanism": self.kind}
        if self.domain_spec is not None:
            out["domain_spec"] = self.domain_spec.text
        if self.network is not None:
            out["network"] = str(self.network)
        if self.kind in ("a", "mx"):
            out["ip4_cidr"] = self.ip4_cidr
            out["ip6_cidr"] = self.ip6_cidr
        return out


@dataclass(frozen=True)
class Modifier:
    """A modifier: redirect=, exp= or one that is ignored (RFC 7208 §6, §4.6.1)."""

    name: str  # lower case
    value: MacroString
    text: str = ""

    def __str__(self) -> str:
        return self.text

    @property
    def known(self) -> bool:
        return self.name in ("redirect", "exp")

    def to_json(self) -> dict[str, Any]:
        return {"type": "modifier", "text": self.text, "modifier": self.name,
                "value": self.value.text, "known": self.known}


@dataclass(frozen=True)
class Record:
    """A parsed "v=spf1" record."""

    text: str
    terms: tuple[Mechanism | Modifier, ...]
    mechanisms: tuple[Mechanism, ...]
    redirect: MacroString | None = None
    exp: MacroString | None = None

    @property
    def dns_terms(self) -> int:
        """How many terms would query DNS (RFC 7208 §4.6.4), not counting includes' terms."""
        count = sum(1 for m in self.mechanisms if m.kind in DNS_MECHANISMS)
        return count + (1 if self.redirect is not None else 0)

    def __str__(self) -> str:
        return self.text

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "terms": [t.to_json() for t in self.terms]}


def is_spf_record(text: str) -> bool:
    """RFC 7208 §4.5: the record starts with exactly "v=spf1", then SP or its end."""
    head = text[: len(VERSION)]
    return head.lower() == VERSION and (len(text) == len(VERSION) or text[len(VERSION)] == " ")


def select_record(texts: list[str] | tuple[str, ...]) -> str | None:
    """Pick the SPF record among a name's TXT records (RFC 7208 §4.5).

    Returns None when there is none; raises :class:`MultipleRecords` for more than one.
    """
    records = [t for t in texts if is_spf_record(t)]
    if len(records) > 1:
        raise MultipleRecords(f"{len(records)} SPF records found, at most one is allowed")
    return records[0] if records else None


@functools.lru_cache(maxsize=1024)
def parse_record(text: str) -> Record:
    """Parse a whole record (RFC 7208 §12); raises :class:`RecordSyntaxError`.

    Cached (records are immutable values): the mail of one sender brings the
    same few records again and again."""
    if not is_spf_record(text):
        raise RecordSyntaxError(f"record does not start with {VERSION!r}")
    terms: list[Mechanism | Modifier] = []
    redirect: MacroString | None = None
    exp: MacroString | None = None
    # RFC 7208 §4.6.1 / §12: terms = *( 1*SP ( directive / modifier ) ); only SP separates.
    for word in text[len(VERSION) :].split(" "):
        if not word:
            continue
        term = parse_term(word)
        if isinstance(term, Modifier):
            # RFC 7208 §6: 'The "redirect" and "exp" modifiers MUST NOT appear in a record
            # more than once each. If they do, then check_host() exits with a result of
            # "permerror".'
            if term.name == "redirect":
                if redirect is not None:
                    raise RecordSyntaxError("more than one redirect= modifier")
                redirect = term.value
            elif term.name == "exp":
                if exp is not None:
                    raise RecordSyntaxError("more than one exp= modifier")
                exp = term.value
        terms.append(term)
    mechanisms = tuple(t for t in terms if isinstance(t, Mechanism))
    return Record(text, tuple(terms), mechanisms, redirect, exp)


def parse_term(word: str) -> Mechanism | Modifier:
    """Parse one term: a directive or a modifier (RFC 7208 §4.6.1)."""
    modifier = _MODIFIER.match(word)
    if modifier:
        name, value = modifier.group(1).lower(), modifier.group(2)
        if name in ("redirect", "exp"):
            # RFC 7208 §6.1, §6.2: redirect = "redirect" "=" domain-spec, and the same for
            # exp; an empty domain-spec is a syntax error (erratum to §6.2).
            spec = _domain_spec(value, word)
        else:
            # RFC 7208 §12: unknown-modifier = name "=" macro-string; ignored but checked.
            spec = _macro_string(value, word)
        return Modifier(name, spec, word)
    directive = _DIRECTIVE.match(word)
    if not directive:
        raise RecordSyntaxError(f"cannot parse term {word!r}")
    qualifier = Qualifier(directive.group(1) or "+")
    kind, rest = directive.group(2).lower(), directive.group(3)
    if kind not in MECHANISMS:
        raise RecordSyntaxError(f"unknown mechanism {directive.group(2)!r} in {word!r}")
    if rest and rest[0] not in ":/":
        raise RecordSyntaxError(f"unknown mechanism or bad syntax in {word!r}")
    match kind:
        case "all":
            if rest:
                raise RecordSyntaxError(f"'all' takes no argument: {word!r}")
            return Mechanism(qualifier, kind, text=word)
        case "include" | "exists":
            if not rest.startswith(":") or len(rest) == 1:
                raise RecordSyntaxError(f"{kind!r} needs ':' and a domain: {word!r}")
            return Mechanism(qualifier, kind, _domain_spec(rest[1:], word), text=word)
        case "ptr":
            spec = _domain_spec(rest[1:], word) if rest.startswith(":") else None
            if rest and spec is None:
                raise RecordSyntaxError(f"'ptr' takes no CIDR length: {word!r}")
            return Mechanism(qualifier, kind, spec, text=word)
        case "a" | "mx":
            return _parse_a_mx(qualifier, kind, rest, word)
        case "ip4" | "ip6":
            return _parse_ip(qualifier, kind, rest, word)
    raise AssertionError(kind)


def _parse_a_mx(qualifier: Qualifier, kind: str, rest: str, word: str) -> Mechanism:
    """RFC 7208 §5.3, §5.4: "a"/"mx" [ ":" domain-spec ] [ dual-cidr-length ]."""
    cidr = _DUAL_CIDR.search(rest)
    assert cidr is not None  # the pattern matches the empty string at the end
    ip4 = _cidr_length(cidr.group(1), 32, word)
    ip6 = _cidr_length(cidr.group(2), 128, word)
    head = rest[: cidr.start()]
    spec = None
    if head:
        if not head.startswith(":") or len(head) == 1:
            raise RecordSyntaxError(f"bad domain or CIDR length in {word!r}")
        spec = _domain_spec(head[1:], word)
    return Mechanism(qualifier, kind, spec, ip4_cidr=ip4, ip6_cidr=ip6, text=word)


def _parse_ip(qualifier: Qualifier, kind: str, rest: str, word: str) -> Mechanism:
    """RFC 7208 §5.6: "ip4" ":" ip4-network [ ip4-cidr-length ], and the same for ip6."""
    if not rest.startswith(":"):
        raise RecordSyntaxError(f"{kind!r} needs ':' and an address: {word!r}")
    address, slash, length_text = rest[1:].partition("/")
    bits = 32 if kind == "ip4" else 128
    length = _cidr_length(length_text if slash else None, bits, word)
    try:
        if kind == "ip4":
            if not _IP4_NETWORK.match(address):
                raise ValueError
            ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv4Address(address)
        else:
            # RFC 7208 §5.6: ip6-network = <as per Section 2.2 of [RFC4291]>; no zone index.
            if "%" in address or not address.isascii():
                raise ValueError
            ip = ipaddress.IPv6Address(address)
    except ValueError:
        raise RecordSyntaxError(f"bad {kind} address {address!r} in {word!r}") from None
    network = ipaddress.ip_network(f"{ip}/{length}", strict=False)
    return Mechanism(qualifier, kind, network=network, text=word)


def _cidr_length(text: str | None, maximum: int, word: str) -> int:
    if text is None:
        return maximum
    if not _CIDR_NUMBER.match(text) or int(text) > maximum:
        raise RecordSyntaxError(f"bad CIDR length /{text} in {word!r} (0 to {maximum})")
    return int(text)


def _domain_spec(text: str, word: str) -> MacroString:
    try:
        return parse_domain_spec(text)
    except RecordSyntaxError as exc:
        raise type(exc)(f"{exc} in term {word!r}") from None


def _macro_string(text: str, word: str) -> MacroString:
    try:
        return parse_macro_string(text)
    except RecordSyntaxError as exc:
        raise type(exc)(f"{exc} in term {word!r}") from None
