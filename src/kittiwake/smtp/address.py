"""SMTP mailbox addresses and reverse/forward paths (RFC 5321 §4.1.2, RFC 6531, RFC 5890/5891).

Parses what appears between the angle brackets of ``MAIL FROM:<...>`` and
``RCPT TO:<...>``: the null reverse-path ``<>``, the special ``<postmaster>``,
source routes (accepted and stripped, RFC 5321 Appendix C), quoted local-parts,
address literals (``[192.0.2.1]``, ``[IPv6:2001:db8::1]``) and, only when the
client asked for SMTPUTF8 (RFC 6531 §3.3), UTF-8 local-parts and U-label
domains. Domains are kept in both their A-label (ASCII, for DNS) and U-label
(unicode, for people) forms (RFC 5890 §2.3.2.1).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from kittiwake.dns.names import DisallowedName, InvalidName, mail_domain

__all__ = [
    "MAX_DOMAIN",
    "MAX_LOCALPART",
    "MAX_PATH",
    "Address",
    "AddressError",
    "AddressSyntaxError",
    "AddressTooLong",
    "DisallowedDomain",
    "NonASCIIAddress",
    "domain_forms",
    "format_path",
    "parse_address",
    "parse_path",
    "quote_localpart",
]

# RFC 5321 §4.5.3.1.1-3: size limits, in octets.
MAX_LOCALPART = 64
MAX_DOMAIN = 255
MAX_PATH = 256

# RFC 5322 §3.2.3 atext, as used by RFC 5321 §4.1.2 Atom.
_ATEXT = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
)
_LDH = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")


class AddressError(ValueError):
    """A path or address that cannot be accepted."""


class AddressSyntaxError(AddressError):
    """RFC 5321 §4.1.2 syntax violated."""


class AddressTooLong(AddressError):
    """RFC 5321 §4.5.3.1: local-part, domain or path longer than allowed."""


class DisallowedDomain(AddressSyntaxError):
    """A domain IDNA 2008 refuses (RFC 5891 §5.4): disallowed or invisible code
    points, a contextual rule or the Bidi rule broken, a bad A-label."""


class NonASCIIAddress(AddressError):
    """RFC 6531 §3.3: UTF-8 in an address without the SMTPUTF8 parameter."""


def _is_utf8_char(c: str) -> bool:
    # RFC 6531 §3.3: atext and qtextSMTP are extended with UTF8-non-ascii.
    # Control characters (C1) are not printable text and stay excluded.
    return ord(c) >= 0xA0


@dataclass(frozen=True, slots=True)
class Address:
    """A mailbox: local-part plus domain.

    ``localpart`` is the decoded local-part (quotes and quoted-pairs removed).
    ``domain`` is the A-label (ASCII, lower case) form, or an address literal
    such as ``[192.0.2.1]``; ``unicode_domain`` is the U-label form. Both are
    empty for the bare ``<postmaster>`` recipient (RFC 5321 §4.1.1.3).
    """

    localpart: str
    domain: str
    unicode_domain: str

    @property
    def is_postmaster(self) -> bool:
        """The RFC 5321 §4.1.1.3 domain-less ``<postmaster>`` recipient."""
        return self.domain == "" and self.localpart.lower() == "postmaster"

    @property
    def is_ascii(self) -> bool:
        """Whether the address can be used without SMTPUTF8 (domain as A-label)."""
        return self.localpart.isascii()

    @property
    def ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """The IP of an address-literal domain, else None."""
        if not self.domain.startswith("["):
            return None
        inner = self.domain[1:-1]
        if inner[:5].lower() == "ipv6:":
            return ipaddress.IPv6Address(inner[5:])
        return ipaddress.IPv4Address(inner)

    def quoted_localpart(self) -> str:
        """The local-part as it must be written in SMTP: dot-string or quoted-string."""
        return quote_localpart(self.localpart)

    def __str__(self) -> str:
        """Human form: quoted local-part if needed, ``@``, U-label domain."""
        if not self.domain:
            return self.quoted_localpart()
        return f"{self.quoted_localpart()}@{self.unicode_domain}"

    @property
    def ascii_form(self) -> str:
        """Form with the A-label domain (what goes to a non-SMTPUTF8 server)."""
        if not self.domain:
            return self.quoted_localpart()
        return f"{self.quoted_localpart()}@{self.domain}"

    @property
    def canonical(self) -> str:
        """Comparison key: local-part unchanged (RFC 5321 §2.4: case-sensitive),
        domain as lower-case A-label; equal for U-label and A-label spellings."""
        return self.ascii_form


def quote_localpart(localpart: str) -> str:
    """Render a local-part as Dot-string if it is one, else as Quoted-string."""
    if _is_dot_string(localpart):
        return localpart
    out = []
    for c in localpart:
        # RFC 5321 §4.1.2: quoted-pairSMTP is backslash followed by %d32-126.
        out.append("\\" + c if c in '"\\' else c)
    return '"' + "".join(out) + '"'


def _is_dot_string(s: str) -> bool:
    if not s:
        return False
    for atom in s.split("."):
        if not atom or not all(c in _ATEXT or _is_utf8_char(c) for c in atom):
            return False
    return True


class _Scanner:
    """Index-based scanner over one command argument."""

    __slots__ = ("pos", "s", "utf8")

    def __init__(self, s: str, pos: int, utf8: bool) -> None:
        self.s = s
        self.pos = pos
        self.utf8 = utf8

    def peek(self) -> str:
        return self.s[self.pos] if self.pos < len(self.s) else ""

    def expect(self, c: str) -> None:
        if self.peek() != c:
            got = repr(self.peek()) if self.peek() else "end of line"
            raise AddressSyntaxError(f"expected {c!r} at position {self.pos}, got {got}")
        self.pos += 1

    def check_char(self, c: str) -> None:
        if not c.isascii():
            if not self.utf8:
                raise NonASCIIAddress("non-ASCII address without SMTPUTF8")
            if not _is_utf8_char(c):
                raise AddressSyntaxError(f"invalid character {c!r} in address")


def _parse_localpart(sc: _Scanner) -> str:
    start = sc.pos
    s = sc.s
    if sc.peek() == '"':
        # RFC 5321 §4.1.2 Quoted-string = DQUOTE *QcontentSMTP DQUOTE
        sc.pos += 1
        out: list[str] = []
        while True:
            c = sc.peek()
            if c == "":
                raise AddressSyntaxError("unterminated quoted local-part")
            sc.pos += 1
            if c == '"':
                break
            if c == "\\":
                q = sc.peek()
                if q == "" or (q.isascii() and not 32 <= ord(q) <= 126):
                    raise AddressSyntaxError("invalid quoted-pair in local-part")
                sc.check_char(q)
                sc.pos += 1
                out.append(q)
                continue
            if c.isascii():
                if not 32 <= ord(c) <= 126:
                    raise AddressSyntaxError("control character in quoted local-part")
            else:
                sc.check_char(c)
            out.append(c)
        value = "".join(out)
    else:
        # RFC 5321 §4.1.2 Dot-string = Atom *("." Atom)
        n = len(s)
        while sc.pos < n:
            c = s[sc.pos]
            if c in _ATEXT or c == ".":
                sc.pos += 1
            elif not c.isascii():
                sc.check_char(c)
                sc.pos += 1
            else:
                break
        value = s[start : sc.pos]
        if not value:
            raise AddressSyntaxError("empty local-part")
        if not _is_dot_string(value):
            raise AddressSyntaxError(f"invalid dot-string local-part {value!r}")
    if len(s[start : sc.pos].encode("utf-8")) > MAX_LOCALPART:
        raise AddressTooLong(f"local-part longer than {MAX_LOCALPART} octets")
    return value


def domain_forms(domain: str, *, utf8: bool = True) -> tuple[str, str]:
    """Return (A-label form, U-label form) of a domain name, both lower case.

    Accepts LDH labels, A-labels (validated, RFC 5891 §5.4) and, when ``utf8``,
    U-labels (RFC 5891 §4) with the UTS #46 mapping of
    :func:`kittiwake.dns.names.mail_domain`, the one normaliser of mail
    domains. Raises :class:`DisallowedDomain` for what IDNA 2008 refuses,
    other AddressError subclasses for bad syntax.
    """
    if not domain or len(domain) > MAX_DOMAIN * 4:
        raise AddressSyntaxError("empty or oversized domain")
    if domain.endswith("."):
        # RFC 5321 §4.1.2: Domain = sub-domain *("." sub-domain), no root dot.
        raise AddressSyntaxError("domain with trailing dot")
    if not domain.isascii() and not utf8:
        raise NonASCIIAddress("non-ASCII domain without SMTPUTF8")
    if domain.isascii() and len(domain) > MAX_DOMAIN:
        raise AddressTooLong(f"domain longer than {MAX_DOMAIN} octets")
    try:
        forms = mail_domain(domain)
    except DisallowedName as e:
        raise DisallowedDomain(str(e)) from None
    except InvalidName as e:
        raise AddressSyntaxError(str(e)) from None
    if len(forms.ascii) > MAX_DOMAIN:
        raise AddressTooLong(f"domain longer than {MAX_DOMAIN} octets")
    return forms.ascii, forms.unicode


def _parse_literal(text: str) -> str:
    # RFC 5321 §4.1.3 address-literal; only IPv4 and IPv6 forms are meaningful.
    inner = text[1:-1]
    try:
        if inner[:5].lower() == "ipv6:":
            return f"[IPv6:{ipaddress.IPv6Address(inner[5:]).compressed}]"
        if ":" in inner:
            raise AddressSyntaxError(f"unsupported address literal {text!r}")
        return f"[{ipaddress.IPv4Address(inner)}]"
    except ValueError as e:
        if isinstance(e, AddressError):
            raise
        raise AddressSyntaxError(f"invalid address literal {text!r}") from e


def _parse_domain_part(sc: _Scanner, *, literal_ok: bool) -> tuple[str, str]:
    s = sc.s
    start = sc.pos
    if sc.peek() == "[":
        if not literal_ok:
            raise AddressSyntaxError("address literal not allowed here")
        end = s.find("]", start)
        if end < 0:
            raise AddressSyntaxError("unterminated address literal")
        sc.pos = end + 1
        lit = _parse_literal(s[start : sc.pos])
        return lit, lit
    n = len(s)
    while sc.pos < n:
        c = s[sc.pos]
        if c in _LDH or c == ".":
            sc.pos += 1
        elif not c.isascii():
            sc.check_char(c)
            sc.pos += 1
        else:
            break
    return domain_forms(s[start : sc.pos], utf8=sc.utf8)


def _parse_mailbox(sc: _Scanner) -> Address:
    local = _parse_localpart(sc)
    sc.expect("@")
    a, u = _parse_domain_part(sc, literal_ok=True)
    return Address(local, a, u)


def parse_path(
    s: str, pos: int = 0, *, smtputf8: bool = False, null_ok: bool = False,
    postmaster_ok: bool = False,
) -> tuple[Address | None, int]:
    """Parse an RFC 5321 §4.1.2 Path starting at ``s[pos]`` (which must be ``<``).

    Returns (address, position after ``>``). ``None`` is the null reverse-path
    ``<>`` (only if ``null_ok``). ``<postmaster>`` (any case, no domain) is
    accepted if ``postmaster_ok`` (RFC 5321 §4.1.1.3) and returned as an Address
    with empty domain. A source route (``<@a,@b:user@c>``) is accepted and
    dropped (RFC 5321 Appendix C / §4.1.1.3). Raises AddressError subclasses.
    """
    sc = _Scanner(s, pos, smtputf8)
    sc.expect("<")
    if sc.peek() == ">":
        if not null_ok:
            raise AddressSyntaxError("null path <> not allowed here")
        return None, sc.pos + 1
    if postmaster_ok:
        end = sc.pos + len("postmaster")
        if s[sc.pos : end].lower() == "postmaster" and s[end : end + 1] == ">":
            return Address(s[sc.pos : end], "", ""), end + 1
    if sc.peek() == "@":
        # RFC 5321 Appendix C: A-d-l = At-domain *( "," At-domain ) ":" - ignored.
        while True:
            sc.expect("@")
            _parse_domain_part(sc, literal_ok=False)
            if sc.peek() == ",":
                sc.pos += 1
                continue
            sc.expect(":")
            break
    addr = _parse_mailbox(sc)
    sc.expect(">")
    if len(s[pos : sc.pos].encode("utf-8")) > MAX_PATH:
        raise AddressTooLong(f"path longer than {MAX_PATH} octets")
    return addr, sc.pos


def format_path(addr: Address | None, *, utf8: bool = False) -> str:
    """A reverse/forward path for a client command: ``<>`` for None, else
    ``<local@domain>`` with the U-label domain when ``utf8`` (SMTPUTF8 in use),
    the A-label domain otherwise. Raises NonASCIIAddress for a UTF-8
    local-part without ``utf8`` (RFC 6531 §3.2: it needs SMTPUTF8)."""
    if addr is None:
        return "<>"
    if utf8:
        return f"<{addr}>"
    if not addr.is_ascii:
        raise NonASCIIAddress(f"{addr} needs SMTPUTF8")
    return f"<{addr.ascii_form}>"


def parse_address(s: str, *, smtputf8: bool = True) -> Address:
    """Parse a bare ``local@domain`` mailbox (no angle brackets), e.g. from config or a CLI."""
    sc = _Scanner(s, 0, smtputf8)
    addr = _parse_mailbox(sc)
    if sc.pos != len(s):
        raise AddressSyntaxError(f"unexpected {s[sc.pos:]!r} after address")
    return addr
