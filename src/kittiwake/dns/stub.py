"""A stub resolver over dnspython that asks a recursive resolver for DNSSEC status.

Queries set EDNS0 with the DO bit and the AD bit (RFC 6840 §5.7), so a
validating resolver reports in the AD bit of its answer whether the data was
validated (RFC 4035 §3.2.3). Extended DNS errors (RFC 8914) are read from the
EDNS options of every answer, SERVFAIL included, which dnspython's high-level
resolver would hide; that is why the query loop is written here.

Resolvers come from ``KITTIWAKE_DNS=IP[:PORT][,IP[:PORT]...]`` when set
(``[::1]:5353`` for IPv6 with a port), else from ``/etc/resolv.conf``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import struct
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import dns.asyncquery
import dns.edns
import dns.exception
import dns.flags
import dns.inet
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from kittiwake import metrics
from kittiwake.dns import metrics as dns_metrics
from kittiwake.dns.cache import AnswerCache
from kittiwake.dns.resolver import Resolver
from kittiwake.dns.types import (
    CAA,
    MX,
    SRV,
    TLSA,
    Answer,
    DNSTemporaryError,
    ExtendedError,
    InvalidName,
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
        current = _dns_name(name)
        for _hop in range(MAX_CNAME_HOPS + 1):
            response = await self._exchange(rdtype, current, name)
            extended.extend(_extended_errors(response))
            authentic = authentic and bool(response.flags & dns.flags.AD)
            rcode = response.rcode()
            target, records, ttl = _follow(response, current, rdtype, chain)
            if rcode == dns.rcode.NXDOMAIN:
                return Answer(name, rdtype, (), authentic, Status.NXDOMAIN, tuple(chain),
                              tuple(extended))
            if records is not None:
                return Answer(name, rdtype, tuple(records), authentic, Status.FOUND,
                              tuple(chain), tuple(extended), ttl)
            if target is None:
                return Answer(name, rdtype, (), authentic, Status.NODATA, tuple(chain),
                              tuple(extended))
            current = target  # resolver gave the CNAME but not its target's records
        raise DNSTemporaryError(name, rdtype, f"CNAME chain longer than {MAX_CNAME_HOPS}")

    async def _exchange(
        self, rdtype: RRType, qname: dns.name.Name, asked: str
    ) -> dns.message.Message:
        query = dns.message.make_query(
            qname, dns.rdatatype.from_text(rdtype.value), want_dnssec=True,
            use_edns=0, payload=1232,
        )
        query.flags |= dns.flags.AD | dns.flags.RD
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
                rcode = response.rcode()
                _counted(rdtype, dns_metrics.rcode_label(dns.rcode.to_text(rcode)), started)
                if rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                    return response
                extended.extend(_extended_errors(response))
                problems.append(f"{server}: {dns.rcode.to_text(rcode)}")
                if rcode == dns.rcode.SERVFAIL and extended:
                    # A validating resolver explained itself; another try will
                    # only repeat it.
                    break
            else:
                continue
            break
        reason = "; ".join(dict.fromkeys(problems)) or "no resolver configured"
        raise DNSTemporaryError(asked, rdtype, reason, tuple(dict.fromkeys(extended)))


def _counted(rdtype: RRType, result: str, started: float) -> None:
    metrics.child(dns_metrics.QUERIES, rdtype.value, result).inc()
    metrics.child(dns_metrics.QUERY_SECONDS, rdtype.value).observe(time.monotonic() - started)


async def _udp_with_fallback(
    query: dns.message.Message, server: Nameserver, timeout: float
) -> dns.message.Message:
    """One exchange over UDP, then TCP when the answer is truncated (RFC 7766 §5).

    The UDP socket is connected, so that an ICMP port-unreachable from a
    resolver that is not running fails at once (connection refused) instead
    of after the whole timeout. Answers are parsed by :func:`_parse`, which
    keeps the good records of an answer that also holds a malformed one.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    # A fresh socket (a fresh source port, RFC 5452 §9.2) per exchange, used with the
    # loop's sock_* calls: no datagram transport and protocol to build and tear down.
    sock = socket.socket(dns.inet.af_for_address(server.host), socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.connect((server.host, server.port))  # UDP: no handshake, returns at once
        sock.send(query.to_wire())  # a datagram never waits for buffer space here
        query_id = query.id.to_bytes(2, "big")
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise dns.exception.Timeout(timeout=timeout)
            try:
                async with asyncio.timeout(left):
                    wire = await loop.sock_recv(sock, 65535)
            except TimeoutError:
                raise dns.exception.Timeout(timeout=timeout) from None
            response = _parse(wire)
            if response is not None and query.is_response(response):
                truncated = bool(response.flags & dns.flags.TC)
                break
            if response is None and wire[:2] == query_id:
                if len(wire) > 2 and wire[2] & 0x02:  # TC set, the rest cut short
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


async def _tcp(query: dns.message.Message, server: Nameserver,
               timeout: float) -> dns.message.Message:
    """One exchange over TCP, two-octet length prefix on each message (RFC 1035 §4.2.2)."""
    async def exchange() -> dns.message.Message:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        try:
            wire = query.to_wire()
            writer.write(struct.pack("!H", len(wire)) + wire)
            await writer.drain()
            size = struct.unpack("!H", await reader.readexactly(2))[0]
            response = _parse(await reader.readexactly(size))
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


def _parse(wire: bytes) -> dns.message.Message | None:
    """A DNS message from the wire, or None when even its header is unreadable.

    A record whose data cannot be parsed is left out and the rest kept
    (dnspython's ``continue_on_error``): e.g. a TXT record with no strings at
    all (illegal, RFC 1035 §3.3.14 wants one or more) next to the SPF record
    must not turn the SPF check into a temperror (RFC 7208 suite, "null-text").
    """
    try:
        return dns.message.from_wire(wire, continue_on_error=True)
    except dns.exception.DNSException:
        return None


def _dns_name(name: str) -> dns.name.Name:
    """The wire name for ``name`` (A-labels, no trailing dot), label by label.

    Built from the labels rather than parsed as master-file text, so that a
    backslash or other odd octet in a name from the network is looked up as
    itself instead of being read as an escape (RFC 1035 §5.1).
    """
    try:
        return dns.name.Name([label.encode("ascii") for label in name.split(".")] + [b""])
    except (UnicodeError, dns.name.NameTooLong, dns.name.LabelTooLong,
            dns.name.EmptyLabel) as exc:
        raise InvalidName(f"domain name {name!r} cannot be looked up: {exc}") from None


def _follow(
    response: dns.message.Message, qname: dns.name.Name, rdtype: RRType, chain: list[str]
) -> tuple[dns.name.Name | None, list[Any] | None, int]:
    """Follow CNAMEs within one response.

    Returns (next name to query or None, records or None, ttl). Records is
    set when the final name's rrset of the wanted type is in the response.
    """
    wanted = dns.rdatatype.from_text(rdtype.value)
    current = qname
    for _ in range(MAX_CNAME_HOPS + 1):
        rrset = _find(response, current, wanted)
        if rrset is not None:
            return None, [_convert(rdtype, rd) for rd in rrset], rrset.ttl
        if wanted == dns.rdatatype.CNAME:
            return None, None, 0
        cname = _find(response, current, dns.rdatatype.CNAME)
        if cname is None:
            if current != qname:
                return current, None, 0
            return None, None, 0
        current = cname[0].target
        chain.append(current.to_text(omit_final_dot=True))
    return current, None, 0


def _find(
    response: dns.message.Message, name: dns.name.Name, rdtype: dns.rdatatype.RdataType
) -> dns.rrset.RRset | None:
    for rrset in response.answer:
        if rrset.name == name and rrset.rdtype == rdtype:
            return rrset
    return None


def _extended_errors(response: dns.message.Message) -> list[ExtendedError]:
    out = []
    for option in response.options:
        if option.otype == dns.edns.EDE:
            out.append(ExtendedError(int(option.code), option.text or ""))
    return out


def _name(n: dns.name.Name) -> str:
    return n.to_text(omit_final_dot=True) if n != dns.name.root else ""


def _convert(rdtype: RRType, rd: Any) -> Any:
    """Turn dnspython rdata into kittiwake record values."""
    match rdtype:
        case RRType.A | RRType.AAAA:
            return ipaddress.ip_address(rd.address)
        case RRType.MX:
            return MX(rd.preference, _name(rd.exchange))
        case RRType.TXT:
            return b"".join(rd.strings).decode("utf-8", errors="replace")
        case RRType.PTR | RRType.CNAME | RRType.NS:
            return _name(rd.target)
        case RRType.TLSA:
            return TLSA(rd.usage, rd.selector, rd.mtype, bytes(rd.cert))
        case RRType.SRV:
            return SRV(rd.priority, rd.weight, rd.port, _name(rd.target))
        case RRType.CAA:
            return CAA(rd.flags, rd.tag.decode("ascii", "replace"),
                       rd.value.decode("utf-8", "replace"))
    raise AssertionError(rdtype)


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
    query = dns.message.make_query(probe, dns.rdatatype.DNSKEY, want_dnssec=True)
    query.flags |= dns.flags.AD | dns.flags.RD
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
        rcode = dns.rcode.to_text(response.rcode())
        if response.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            if response.flags & dns.flags.AD:
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
