"""DNSSEC-aware DNS lookups (see DESIGN.md "DNS").

Every answer carries ``authentic`` (the AD bit, RFC 4035 §3.2.3) and extended
DNS errors (RFC 8914). Use :func:`default_resolver` in servers and commands:
it honours ``KITTIWAKE_DNS``. Tests use :class:`MockResolver`.

The names are loaded on first use (PEP 562): a process that needs only
:mod:`kittiwake.dns.names` (a CPU worker parsing addresses) does not import the
resolver, dnspython and the metrics with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kittiwake import lazynames

if TYPE_CHECKING:
    from kittiwake.dns.cache import AnswerCache
    from kittiwake.dns.mock import MockResolver
    from kittiwake.dns.names import (
        DisallowedName,
        MailDomain,
        domain_key,
        mail_domain,
        reverse_name,
        to_ascii,
        to_unicode,
    )
    from kittiwake.dns.resolver import Resolver
    from kittiwake.dns.stub import (
        DNSSECProbe,
        DNSSECSupport,
        Nameserver,
        ResolverConfigError,
        StubResolver,
        configured_nameservers,
        parse_nameservers,
        probe_dnssec,
        resolver_validates,
    )
    from kittiwake.dns.types import (
        CAA,
        MX,
        SRV,
        TLSA,
        Answer,
        DNSError,
        DNSTemporaryError,
        ExtendedError,
        InvalidName,
        IPAddress,
        RRType,
        Status,
    )

_HOME = {
    "Answer": "types",
    "AnswerCache": "cache",
    "CAA": "types",
    "DNSError": "types",
    "DNSSECProbe": "stub",
    "DNSSECSupport": "stub",
    "DNSTemporaryError": "types",
    "DisallowedName": "names",
    "ExtendedError": "types",
    "IPAddress": "types",
    "InvalidName": "types",
    "MX": "types",
    "MailDomain": "names",
    "MockResolver": "mock",
    "Nameserver": "stub",
    "RRType": "types",
    "Resolver": "resolver",
    "ResolverConfigError": "stub",
    "SRV": "types",
    "Status": "types",
    "StubResolver": "stub",
    "TLSA": "types",
    "configured_nameservers": "stub",
    "domain_key": "names",
    "mail_domain": "names",
    "parse_nameservers": "stub",
    "probe_dnssec": "stub",
    "resolver_validates": "stub",
    "reverse_name": "names",
    "to_ascii": "names",
    "to_unicode": "names",
}


__getattr__ = lazynames.loader(__name__, _HOME)


def default_resolver(explicit: list[str] | None = None, timeout: float = 3.0,
                     cache: bool = False) -> StubResolver:
    """The resolver for servers and CLI commands: KITTIWAKE_DNS, config, resolv.conf.
    With ``cache`` answers are kept within their TTL (:mod:`kittiwake.dns.cache`)."""
    from kittiwake.dns.cache import AnswerCache
    from kittiwake.dns.stub import (
        StubResolver,
        configured_nameservers,
    )

    return StubResolver(configured_nameservers(explicit), timeout=timeout,
                        cache=AnswerCache() if cache else None)


__all__ = [
    "CAA", "MX", "SRV", "TLSA", "Answer", "AnswerCache", "DNSError", "DNSSECProbe", "DNSSECSupport",
    "DNSTemporaryError", "DisallowedName", "ExtendedError", "IPAddress", "InvalidName",
    "MailDomain", "MockResolver", "Nameserver", "RRType", "Resolver", "ResolverConfigError",
    "Status", "StubResolver", "configured_nameservers", "default_resolver", "domain_key",
    "mail_domain", "parse_nameservers", "probe_dnssec", "resolver_validates", "reverse_name",
    "to_ascii", "to_unicode",
]
