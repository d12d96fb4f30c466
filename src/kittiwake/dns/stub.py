"""A stub resolver over dnspython that asks a recursive resolver for DNSSEC status.

Queries set EDNS0 with the DO bit and the AD bit (RFC 6840 §5.7), so a
validating resolver reports in the AD bit of its answer whether the data was
validated (RFC 4035 §3.2.3). Extended DNS errors (RFC 8914) are read from the
EDNS options of every answer, SERVFAIL included, which dnspython's high-level
resolver would hide; that is why the query loop is written here. The messages
themselves are built and read by :mod:`kittiwake.dns.wire` (a fraction of the
CPU of dnspython's message objects, see there).

Resolvers come from ``KITTIWAKE_DNS=IP[:PORT][,IP[:PORT]...]`` when set
(``[::1]:5353`` for IPv6 with a port), else from ``/etc/resolv.conf``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import struct
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import dns.exception
import dns.rcode

from kittiwake import metrics
from kittiwake.dns import metrics as dns_metrics
from kittiwake.dns import wire
from kittiwake.dns.cache import AnswerCache
from kittiwake.dns.resolver import Resolver
from kittiwake.dns.types import (
    Answer,
    DNSTemporaryError,
    ExtendedError,
    RRType,
    Status,
)

ENV_VAR = "KITTIWAKE_DNS"
MAX_CNAME_HOPS = 8  # a loop guard; RFC 1034 §3.6.2 expects chains to be short


@dataclass(frozen=True)
class Nameserver:
    """One recursive resolver to ask."""

    host: str
    port: int = 53

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class ResolverConfigError(ValueError):
    """KITTIWAKE_DNS or resolv.conf could not be understood."""


def parse_nameservers(spec: str, origin: str = ENV_VAR) -> list[Nameserver]:
    """Parse ``IP[:PORT][,IP[:PORT]...]``; IPv6 with a port as ``[::1]:53``."""
    servers: list[Nameserver] = []
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        host, port = item, 53
        if item.startswith("["):
            end = item.find("]")
            if end < 0:
                raise ResolverConfigError(f"{origin}: {item!r}: missing ']' after IPv6 address")
            host = item[1:end]
            rest = item[end + 1 :]
            if rest:
                if not rest.startswith(":"):
                    raise ResolverConfigError(f"{origin}: {item!r}: expected ':PORT' after ']'")
                port = _port(rest[1:], item, origin)
        elif item.count(":") == 1:
            host, port_text = item.split(":")
            port = _port(port_text, item, origin)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ResolverConfigError(
                f"{origin}: {item!r} is not an IP address (expected IP[:PORT], e.g. 127.0.0.1:53)"
            ) from None
        servers.append(Nameserver(host, port))
    if not servers:
        raise ResolverConfigError(f"{origin}: no resolver given (expected IP[:PORT][,...])")
    return servers


def _port(text: str, item: str, origin: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
        raise ResolverConfigError(f"{origin}: {item!r}: port must be a number from 1 to 65535")
    return int(text)


def system_nameservers(path: str = "/etc/resolv.conf") -> list[Nameserver]:
    """Nameservers from resolv.conf; 127.0.0.1 when the file names none (resolv.conf(5))."""
    servers: list[Nameserver] = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    host = parts[1].split("%")[0]
                    try:
                        ipaddress.ip_address(host)
                    except ValueError:
                        continue
                    servers.append(Nameserver(host))
    except OSError:
        pass
    return servers or [Nameserver("127.0.0.1")]


def configured_nameservers(explicit: list[str] | None = None) -> list[Nameserver]:
    """KITTIWAKE_DNS first, then an explicit list (from config), then resolv.conf."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return parse_nameservers(env)
    if explicit:
        return parse_nameservers(",".join(explicit), "config dns.resolvers")
    return system_nameservers()


class StubResolver(Resolver):
    """Sends queries to recursive resolvers and types their answers."""

    def __init__(
        self,
        nameservers: list[Nameserver] | None = None,
        timeout: float = 3.0,
        attempts: int = 2,
        cache: AnswerCache | None = None,
    ) -> None:
        self.nameservers = nameservers if nameservers is not None else configured_nameservers()
        self.timeout = timeout
        self.attempts = attempts
        self.cache = cache

    async def _query(self, rdtype: RRType, name: str) -> Answer[Any]:
        if self.cache is None:
            return await self._resolve(rdtype, name)
        return await self.cache.get(rdtype, name, lambda: self._resolve(rdtype, name))

    async def _resolve(self, rdtype: RRType, name: str) -> Answer[Any]:
        chain: list[str] = []
        authentic = True
        extended: list[ExtendedError] = []
        current = wire.encode_name(name)
        for _hop in range(MAX_CNAME_HOPS + 1):
            response = await self._exchange(rdtype, current, name)
            extended.extend(ExtendedError(code, text) for code, text in response.extended)
            authentic = authentic and response.authentic
            rcode = response.rcode
            target, records, ttl = _follow(response, current, rdtype, chain)
            if rcode == wire.NXDOMAIN:
                return Answer(name, rdtype, (), authentic, Status.NXDOMAIN, tuple(chain),
                              tuple(extended), _negative_ttl(response))
            if records is not None:
                return Answer(name, rdtype, tuple(records), authentic, Status.FOUND,
                              tuple(chain), tuple(extended), ttl)
            if target is None:
                return Answer(name, rdtype, (), authentic, Status.NODATA, tuple(chain),
                              tuple(extended), _negative_ttl(response))
            current = target  # resolver gave the CNAME but not its target's records
        raise DNSTemporaryError(name, rdtype, f"CNAME chain longer than {MAX_CNAME_HOPS}")

    async def _exchange(self, rdtype: RRType, qname: bytes, asked: str) -> wire.Response:
        query = wire.Query(qname, wire.TYPES[rdtype])
        problems: list[str] = []
        extended: list[ExtendedError] = []
        for _attempt in range(self.attempts):
            for server in self.nameservers:
                started = time.monotonic()
                try:
                    response = await _udp_with_fallback(query, server, self.timeout)
                except (dns.exception.Timeout, TimeoutError):
                    _counted(rdtype, "timeout", started)
                    problems.append(f"{server}: timeout")
                    continue
                except EOFError:
                    _counted(rdtype, "error", started)
                    problems.append(f"{server}: connection closed before an answer")
                    continue
                except (OSError, dns.exception.DNSException) as exc:
                    _counted(rdtype, "error", started)
                    problems.append(f"{server}: {exc}")
                    continue
                rcode = response.rcode
                text = _rcode_text(rcode)
                _counted(rdtype, dns_metrics.rcode_label(text), started)
                if rcode in (wire.NOERROR, wire.NXDOMAIN):
                    return response
                extended.extend(ExtendedError(c, t) for c, t in response.extended)
                problems.append(f"{server}: {text}")
                if rcode == wire.SERVFAIL and extended:
                    # A validating resolver explained itself; another try will
                    # only repeat it.
                    break
            else:
                continue
            break
        reason = "; ".join(dict.fromkeys(problems)) or "no resolver configured"
        raise DNSTemporaryError(asked, rdtype, reason, tuple(dict.fromkeys(extended)))


_RCODES: dict[int, str] = {}


def _rcode_text(rcode: int) -> str:
    """NOERROR, SERVFAIL, ... (RFC 1035 §4.1.1, RFC 6895 §2.3), as dnspython names them."""
    text = _RCODES.get(rcode)
    if text is None:
        text = _RCODES[rcode] = dns.rcode.to_text(rcode)  # type: ignore[arg-type]
    return text


def _counted(rdtype: RRType, result: str, started: float) -> None:
    metrics.child(dns_metrics.QUERIES, rdtype.value, result).inc()
    metrics.child(dns_metrics.QUERY_SECONDS, rdtype.value).observe(time.monotonic() - started)


def _negative_ttl(response: wire.Response) -> int:
    """How long a negative answer may be kept: RFC 2308 §5 (the SOA's TTL and MINIMUM,
    when the authority section carries the SOA; else 0: not to be kept)."""
    return response.negative_ttl or 0


async def _udp_with_fallback(query: wire.Query, server: Nameserver,
                             timeout: float) -> wire.Response:
    """One exchange over UDP, then TCP when the answer is truncated (RFC 7766 §5).

    The UDP socket is connected, so that an ICMP port-unreachable from a
    resolver that is not running fails at once (connection refused) instead
    of after the whole timeout. Answers are read by :func:`kittiwake.dns.wire.parse`,
    which keeps the good records of an answer that also holds a malformed one.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    # A fresh socket (a fresh source port, RFC 5452 §9.2) per exchange, used with the
    # loop's sock_* calls: no datagram transport and protocol to build and tear down.
    sock = socket.socket(socket.AF_INET6 if ":" in server.host else socket.AF_INET,
                         socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.connect((server.host, server.port))  # UDP: no handshake, returns at once
        sock.send(query.wire)  # a datagram never waits for buffer space here
        query_id = query.wire[:2]
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise dns.exception.Timeout(timeout=timeout)
            try:
                async with asyncio.timeout(left):
                    data = await loop.sock_recv(sock, 65535)
            except TimeoutError:
                raise dns.exception.Timeout(timeout=timeout) from None
            response = wire.parse(data)
            if response is not None and query.is_response(response):
                truncated = response.truncated
                break
            if response is None and data[:2] == query_id:
                if len(data) > 2 and data[2] & 0x02:  # TC set, the rest cut short
                    truncated = True
                    break
                raise dns.exception.FormError("malformed answer")
            # anything else is a stray or forged datagram: keep waiting
    finally:
        sock.close()
    if not truncated:
        assert response is not None
        return response
    return await _tcp(query, server, max(deadline - loop.time(), 0.5))


async def _tcp(query: wire.Query, server: Nameserver, timeout: float) -> wire.Response:
    """One exchange over TCP, two-octet length prefix on each message (RFC 1035 §4.2.2)."""
    async def exchange() -> wire.Response:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        try:
            writer.write(struct.pack("!H", len(query.wire)) + query.wire)
            await writer.drain()
            size = struct.unpack("!H", await reader.readexactly(2))[0]
            response = wire.parse(await reader.readexactly(size))
        except asyncio.IncompleteReadError:
            raise EOFError from None
        finally:
            writer.close()
        if response is None or not query.is_response(response):
            raise dns.exception.FormError("TCP answer does not match the query")
        return response

    try:
        return await asyncio.wait_for(exchange(), timeout)
    except TimeoutError:
        raise dns.exception.Timeout(timeout=timeout) from None


def _follow(response: wire.Response, qname: bytes, rdtype: RRType,
            chain: list[str]) -> tuple[bytes | None, list[Any] | None, int]:
    """Follow CNAMEs within one response (RFC 1034 §3.6.2).

    Returns (next name to query in wire form or None, records or None, ttl).
    Records is set when the final name's records of the wanted type are in
    the response (those that can be read: a malformed one is left out).
    """
    wanted = wire.TYPES[rdtype]
    data = response.wire
    name = qname
    current = qname.lower()
    for _ in range(MAX_CNAME_HOPS + 1):
        found = response.records(current, wanted)
        if found is not None:
            records: list[Any] = []
            for start, end in found[0]:
                with contextlib.suppress(wire.Malformed):
                    value = wire.convert(rdtype, data, start, end)
                    if value not in records:  # an rrset is a set (RFC 2181 §5)
                        records.append(value)
            if records:
                return None, records, found[1]
        if wanted == wire.CNAME:
            return None, None, 0
        target = _cname_target(response, current)
        if target is None:
            if current != qname.lower():
                return name, None, 0
            return None, None, 0
        name = wire.wire_name(target)
        current = name.lower()
        chain.append(wire.name_text(target) or ".")
    return name, None, 0


def _cname_target(response: wire.Response, owner: bytes) -> list[bytes] | None:
    """The labels of ``owner``'s CNAME target in the answer section (the first record
    that can be read), or None."""
    found = response.records(owner, wire.CNAME)
    for start, end in found[0] if found else ():
        with contextlib.suppress(wire.Malformed):
            return wire.rdata_name(response.wire, start, end)
    return None


class DNSSECSupport(StrEnum):
    """What the start-up probe learnt about the resolver."""

    VALIDATES = "validates"  # the answer carries AD (RFC 4035 §3.2.3)
    NOT_VALIDATING = "not-validating"  # an answer (NOERROR/NXDOMAIN) without AD
    UNKNOWN = "unknown"  # answered only with an error (SERVFAIL, REFUSED): says nothing
    NO_ANSWER = "no-answer"  # timeout, connection refused, unreachable


@dataclass(frozen=True)
class DNSSECProbe:
    """The result of :func:`probe_dnssec`; ``detail`` says what each resolver did."""

    support: DNSSECSupport
    detail: str


async def probe_dnssec(resolver: StubResolver, probe: str = ".",
                       timeout: float = 2.0) -> DNSSECProbe:
    """Ask for ``probe``'s DNSKEY with DO and AD set, and read the AD bit of the answer.

    A validating resolver sets AD on data it validated, including an
    authenticated denial (RFC 4035 §3.2.3, RFC 6840 §5.7); any other answer
    (NOERROR or NXDOMAIN without AD) comes from a resolver that does not
    validate, or does not trust the probe's zone. An error reply says
    nothing either way; no reply at all means lookups will fail.
    """
    query = wire.Query(wire.encode_name("" if probe == "." else probe.rstrip(".")),
                       wire.DNSKEY)
    errors: list[str] = []
    silent: list[str] = []
    for server in resolver.nameservers:
        try:
            response = await _udp_with_fallback(query, server, timeout)
        except (dns.exception.Timeout, TimeoutError):
            silent.append(f"{server}: timeout")
            continue
        except (EOFError, OSError, dns.exception.DNSException) as exc:
            silent.append(f"{server}: {exc.strerror if isinstance(exc, OSError) else exc}")
            continue
        rcode = _rcode_text(response.rcode)
        if response.rcode in (wire.NOERROR, wire.NXDOMAIN):
            if response.authentic:
                return DNSSECProbe(DNSSECSupport.VALIDATES, f"{server}: {rcode} with AD")
            return DNSSECProbe(DNSSECSupport.NOT_VALIDATING, f"{server}: {rcode} without AD")
        errors.append(f"{server}: {rcode}")
    if errors:
        return DNSSECProbe(DNSSECSupport.UNKNOWN, "; ".join(errors + silent))
    return DNSSECProbe(DNSSECSupport.NO_ANSWER, "; ".join(silent) or "no resolver configured")


async def resolver_validates(resolver: StubResolver, probe: str = ".") -> bool | None:
    """Whether the resolver validates DNSSEC (see :func:`probe_dnssec`).

    Returns None when no resolver gives an answer that tells (unreachable,
    or an error such as SERVFAIL or REFUSED).
    """
    result = await probe_dnssec(resolver, probe)
    if result.support is DNSSECSupport.VALIDATES:
        return True
    if result.support is DNSSECSupport.NOT_VALIDATING:
        return False
    return None
