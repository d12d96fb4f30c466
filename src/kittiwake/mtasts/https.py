"""The HTTPS client of policy fetches (RFC 8461 §3.3), on aiohttp.

Imported on the first fetch, not with :mod:`kittiwake.mtasts`: a server that
delivers to no MTA-STS domain and serves no HTTP does not load aiohttp (about
10 MiB resident).

The host ``mta-sts.DOMAIN`` is resolved through kittiwake's own resolver
(:class:`DNSResolver`: ``KITTIWAKE_DNS``, the configured resolvers), never
the system's, like every other name kittiwake connects to. Tests (and
operators with special needs) may pass their own :class:`aiohttp.ClientSession`;
:class:`HostMap` pins host names to loopback addresses and ports.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Mapping

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from kittiwake.dns import DNSTemporaryError, InvalidName, Resolver, default_resolver
from kittiwake.mtasts.policy import PolicyError, parse_policy
from kittiwake.mtasts.result import FailureType, FetchResult


class HostMap(AbstractResolver):
    """An aiohttp resolver that knows only the given hosts: ``{host: (ip, port)}``.

    Unknown hosts fail to resolve; nothing else is asked.
    """

    def __init__(self, hosts: Mapping[str, tuple[str, int]]) -> None:
        self.hosts = {h.lower().rstrip("."): v for h, v in hosts.items()}

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        target = self.hosts.get(host.lower().rstrip("."))
        if target is None:
            raise OSError(f"{host} is not in the host map")
        ip, mapped_port = target
        fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
        return [ResolveResult(hostname=host, host=ip, port=mapped_port, family=fam,
                              proto=0, flags=socket.AI_NUMERICHOST)]

    async def close(self) -> None:
        return None


class DNSResolver(AbstractResolver):
    """An aiohttp resolver asking a :class:`kittiwake.dns.Resolver` (A and AAAA).

    IPv6 addresses come first, as in direct delivery. With ``public_only``,
    addresses that are not globally routable (loopback, RFC 1918, link-local,
    unique local, shared, reserved) are dropped, so that a name chosen by
    another domain cannot make us send requests into our own network. ``authentic`` of the
    last lookup is kept per host in :attr:`authentic` (HTTPS relies on PKIX,
    so it is informative only).
    """

    def __init__(self, resolver: Resolver, public_only: bool = False) -> None:
        self.resolver = resolver
        self.public_only = public_only
        self.authentic: dict[str, bool] = {}

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        try:
            answer = await self.resolver.ips(host)
        except (DNSTemporaryError, InvalidName) as exc:
            raise OSError(errno.EHOSTUNREACH, f"address lookup of {host} failed: {exc}") from None
        self.authentic[host.lower().rstrip(".")] = answer.authentic
        out: list[ResolveResult] = []
        refused: list[str] = []
        for address in answer.records:
            fam = socket.AF_INET6 if address.version == 6 else socket.AF_INET
            if family not in (socket.AF_UNSPEC, fam):
                continue
            if self.public_only and not address.is_global:
                refused.append(str(address))
                continue
            out.append(ResolveResult(hostname=host, host=str(address), port=port, family=fam,
                                     proto=0, flags=socket.AI_NUMERICHOST))
        if not out and refused:
            raise OSError(errno.EACCES, f"{host} resolves only to internal addresses"
                          f" ({', '.join(refused)}): refused")
        if not out:
            raise OSError(errno.EHOSTUNREACH, f"{host} has no address ({answer.status})")
        return out

    async def close(self) -> None:
        return None


def make_session(ssl_context: ssl.SSLContext | None = None,
                 hosts: Mapping[str, tuple[str, int]] | None = None,
                 resolver: Resolver | None = None) -> aiohttp.ClientSession:
    """A client session for policy fetches: PKIX verification with ``ssl_context``
    (default: the system trust store); names resolved through a :class:`HostMap`
    when ``hosts`` is given, else through ``resolver`` (default: kittiwake's
    :func:`~kittiwake.dns.default_resolver`, which honours ``KITTIWAKE_DNS``)."""
    context = ssl_context or ssl.create_default_context()
    names: AbstractResolver = HostMap(hosts) if hosts else \
        DNSResolver(resolver or default_resolver())
    connector = aiohttp.TCPConnector(ssl=context, resolver=names, use_dns_cache=False)
    return aiohttp.ClientSession(connector=connector, auto_decompress=True)


async def get_policy(domain: str, url: str, client: aiohttp.ClientSession,
               max_size: int) -> FetchResult:
    def fail(kind: FailureType, reason: str) -> FetchResult:
        return FetchResult(domain, url, None, kind, reason)

    try:
        # RFC 8461 §3.3: redirects MUST NOT be followed; HTTP caches must not answer.
        async with client.get(url, allow_redirects=False,
                              headers={"Cache-Control": "no-cache"}) as response:
            if 300 <= response.status < 400:
                where = response.headers.get("Location", "?")
                return fail(FailureType.STS_POLICY_FETCH_ERROR,
                            f"{url} redirects (HTTP {response.status}) to {where};"
                            " redirects are not followed (RFC 8461 §3.3)")
            if response.status != 200:
                return fail(FailureType.STS_POLICY_FETCH_ERROR,
                            f"{url} answered HTTP {response.status} {response.reason or ''}"
                            .rstrip())
            # RFC 8461 §3.2: the media type must be text/plain; parameters are ignored.
            if response.content_type != "text/plain":
                return fail(FailureType.STS_POLICY_INVALID,
                            f"{url} has content type {response.content_type!r},"
                            " not text/plain (RFC 8461 §3.2)")
            body = await response.content.read(max_size + 1)
            while len(body) <= max_size:
                more = await response.content.read(max_size + 1 - len(body))
                if not more:
                    break
                body += more
            if len(body) > max_size:
                return fail(FailureType.STS_POLICY_INVALID,
                            f"{url} is larger than {max_size} bytes")
    except aiohttp.ClientConnectorCertificateError as exc:
        return fail(FailureType.STS_WEBPKI_INVALID,
                    f"certificate of mta-sts.{domain} is not valid: {exc.certificate_error}")
    except aiohttp.ClientSSLError as exc:
        return fail(FailureType.STS_WEBPKI_INVALID, f"TLS with mta-sts.{domain} failed: {exc}")
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        return fail(FailureType.STS_POLICY_FETCH_ERROR,
                    f"fetching {url} failed: {exc or type(exc).__name__}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return fail(FailureType.STS_POLICY_INVALID, f"{url} is not UTF-8 text")
    try:
        policy = parse_policy(text)
    except PolicyError as exc:
        return fail(FailureType.STS_POLICY_INVALID, f"invalid policy at {url}: {exc}")
    return FetchResult(domain, url, policy)
