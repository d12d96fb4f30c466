"""What an SMTP server announces in its EHLO reply (RFC 5321 §4.1.1.1), parsed for the client.

One keyword per reply line after the first (RFC 5321 §4.1.1.1 ``ehlo-line``),
case-insensitive. Understood: SIZE (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8
(RFC 6531), PIPELINING (RFC 2920), STARTTLS (RFC 3207), AUTH (RFC 4954, also
the old ``AUTH=`` spelling), CHUNKING and BINARYMIME (RFC 3030), REQUIRETLS
(RFC 8689), LIMITS (RFC 9422), DSN (RFC 3461), ENHANCEDSTATUSCODES
(RFC 2034). Anything else is kept in :attr:`Capabilities.keywords`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from kittiwake.smtp import Reply

__all__ = ["Capabilities"]


def _int(value: str) -> int | None:
    value = value.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 20:
        return None
    return int(value)


@dataclass(frozen=True)
class Capabilities:
    """The extensions of one EHLO reply. ``Capabilities()`` is a server that only said HELO."""

    domain: str = ""  # the server's name from the first EHLO line
    esmtp: bool = False  # False after a HELO fallback: no extensions at all
    keywords: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    size: int | None = None  # RFC 1870 §4: fixed maximum; 0 or absent means none known
    eightbitmime: bool = False
    smtputf8: bool = False
    pipelining: bool = False
    starttls: bool = False
    auth: tuple[str, ...] = ()
    chunking: bool = False
    binarymime: bool = False
    requiretls: bool = False
    dsn: bool = False
    enhancedstatuscodes: bool = False
    rcptmax: int | None = None  # RFC 9422 §4.1
    mailmax: int | None = None  # RFC 9422 §4.2
    rcptdomainmax: int | None = None  # RFC 9422 §4.3

    @classmethod
    def from_ehlo(cls, reply: Reply) -> Capabilities:
        """Parse a 250 EHLO reply; malformed parameters are ignored, never raised."""
        first = reply.lines[0].split(" ", 1)[0] if reply.lines else ""
        keywords: dict[str, str] = {}
        for line in reply.lines[1:]:
            line = line.strip()
            if not line:
                continue
            # RFC 5321 §4.1.1.1: ehlo-keyword *( SP ehlo-param ); old servers use "AUTH=".
            word, _, params = line.replace("=", " ", 1).partition(" ") \
                if line.upper().startswith("AUTH=") else line.partition(" ")
            keywords.setdefault(word.upper(), params.strip())
        size = None
        if "SIZE" in keywords:
            size = _int(keywords["SIZE"]) if keywords["SIZE"] else None
        auth: list[str] = []
        for name in keywords.get("AUTH", "").split():
            if name.upper() not in auth:
                auth.append(name.upper())
        limits: dict[str, int] = {}
        # RFC 9422 §3: "LIMITS" SP limit *(SP limit), limit = name "=" value.
        for item in keywords.get("LIMITS", "").split():
            name, eq, value = item.partition("=")
            number = _int(value) if eq else None
            if number is not None and number > 0:
                limits[name.upper()] = number
        return cls(
            domain=first,
            esmtp=True,
            keywords=MappingProxyType(keywords),
            size=size or None,
            eightbitmime="8BITMIME" in keywords,
            smtputf8="SMTPUTF8" in keywords,
            pipelining="PIPELINING" in keywords,
            starttls="STARTTLS" in keywords,
            auth=tuple(auth),
            chunking="CHUNKING" in keywords,
            # RFC 3030 §3: BINARYMIME is only usable together with CHUNKING.
            binarymime="BINARYMIME" in keywords and "CHUNKING" in keywords,
            requiretls="REQUIRETLS" in keywords,
            dsn="DSN" in keywords,
            enhancedstatuscodes="ENHANCEDSTATUSCODES" in keywords,
            rcptmax=limits.get("RCPTMAX") if "LIMITS" in keywords else None,
            mailmax=limits.get("MAILMAX") if "LIMITS" in keywords else None,
            rcptdomainmax=limits.get("RCPTDOMAINMAX") if "LIMITS" in keywords else None,
        )

    @classmethod
    def from_helo(cls, reply: Reply) -> Capabilities:
        """A server that refused EHLO and accepted HELO: plain RFC 821 SMTP."""
        first = reply.lines[0].split(" ", 1)[0] if reply.lines else ""
        return cls(domain=first)
