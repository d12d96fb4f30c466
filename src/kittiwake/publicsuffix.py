"""Organizational domains from the Public Suffix List (RFC 7489 §3.2).

DMARC relaxed alignment (RFC 7489 §3.1) compares the *Organizational
Domains* of two names: the public suffix that matches the most labels of the
name, plus one more label. The list is the snapshot shipped with the
``publicsuffixlist`` package (both the ICANN and the private sections, so that
``alice.github.io`` and ``bob.github.io`` are separate organizations, as
their owners are).

Names may be given with U-labels or A-labels, in any case, with or without a
trailing dot; results are always lower-case A-labels without the trailing
dot, the form DMARC compares and looks up (RFC 7489 §6.6.1).
"""

from __future__ import annotations

import functools

from publicsuffixlist import PublicSuffixList

from kittiwake.dns.names import to_ascii
from kittiwake.dns.types import InvalidName

__all__ = ["InvalidName", "is_public_suffix", "load", "organizational_domain",
           "registrable_domain"]


@functools.cache
def _list() -> PublicSuffixList:
    # Parsing the list takes ~0.1 s: do it once, on first use.
    return PublicSuffixList()


def load() -> None:
    """Parse the list now (blocking, ~0.1 s of CPU): a server does it before it takes
    mail, in a worker thread, so that no message waits for it on the event loop."""
    _list()


def _normalize(domain: str) -> str:
    return to_ascii(domain).lower()


def registrable_domain(domain: str) -> str | None:
    """The public suffix plus one label, or None when there is none.

    None when ``domain`` is itself a public suffix (``com``, ``co.uk``,
    ``github.io``) or is not a valid domain name (empty labels, a leading
    dot, bad IDNA).
    """
    try:
        name = _normalize(domain)
    except InvalidName:
        return None
    # RFC 7489 §3.2 steps 2-4: the longest matching public suffix (x labels)
    # plus the x+1th label; unlisted TLDs match the PSL's implicit "*" rule.
    return _list().privatesuffix(name)


def organizational_domain(domain: str) -> str:
    """The Organizational Domain of ``domain`` (RFC 7489 §3.2).

    A name that has no label beyond its public suffix (``com``, ``co.uk``) is
    its own Organizational Domain, so that discovery does not look elsewhere
    and a ``d=com`` DKIM signature never aligns with ``example.com``
    (RFC 7489 §3.1.1). Raises :class:`InvalidName` for names that cannot be
    domain names.
    """
    name = _normalize(domain)
    return _list().privatesuffix(name) or name


def is_public_suffix(domain: str) -> bool:
    """Whether ``domain`` is a public suffix (no registrable part of its own)."""
    try:
        name = _normalize(domain)
    except InvalidName:
        return False
    return _list().privatesuffix(name) is None
