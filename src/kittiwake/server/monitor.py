"""What the running server watches about itself, as gauges and for ``kittiwake status``.

- The configured certificates: their expiry time per host name
  (``kittiwake_tls_certificate_expiry_timestamp_seconds{host}``).
- Whether the resolver validates DNSSEC (``kittiwake_dns_resolver_dnssec_status``),
  probed at start and then every :data:`CHECK_INTERVAL`.
- Whether our own listener IPs are on the DNS block lists the listeners use
  (``kittiwake_dns_dnsbl_listed{ip,zone}``, RFC 5782 §2.1), checked as often.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from kittiwake import certinfo, dnsbl, metrics
from kittiwake.dns import DNSSECProbe, Resolver, StubResolver, probe_dnssec
from kittiwake.dns import metrics as dns_metrics

CHECK_INTERVAL = 600.0

CERT_EXPIRY = metrics.gauge(
    "tls_certificate_expiry_timestamp_seconds",
    "When the configured certificate for a host name expires (Unix time).",
    ["host"])
CERT_LOAD_ERRORS = metrics.gauge(
    "tls_certificate_unreadable",
    "1 when a configured certificate file cannot be read or parsed, by file.",
    ["file"])
DNSBL_LISTED = metrics.gauge(
    "dns_dnsbl_listed",
    "1 when our own IP is listed in the DNS block list zone, 0 when not (RFC 5782).",
    ["ip", "zone"])


@dataclass(frozen=True)
class CertificateExpiry:
    host: str
    not_after: float  # Unix time
    file: str


def certificate_expiry(cert_file: Path) -> list[CertificateExpiry]:
    """The host names of a PEM certificate (SAN, else CN) with its expiry time."""
    cert = certinfo.read_pem(cert_file.read_bytes())
    names = cert.host_names()
    not_after = cert.not_after
    return [CertificateExpiry(name, not_after, str(cert_file)) for name in names]


class HasIPs(Protocol):
    """A listener (kittiwake.config.static.Listener): the addresses it binds."""

    @property
    def ips(self) -> Sequence[str]: ...


def own_ips(listeners: Iterable[HasIPs]) -> list[str]:
    """Listener addresses that mail is sent from or received on (not 0.0.0.0/::)."""
    out: list[str] = []
    for listener in listeners:
        for ip in listener.ips:
            try:
                address = ipaddress.ip_address(str(ip))
            except ValueError:
                continue
            if not address.is_unspecified and str(address) not in out:
                out.append(str(address))
    return out


@dataclass
class Monitor:
    """Holds the last results; :meth:`run` refreshes them until cancelled."""

    cert_files: list[Path] = field(default_factory=list)
    ips: list[str] = field(default_factory=list)
    zones: list[str] = field(default_factory=list)
    resolver: Resolver | None = None
    dnssec_probe: str = "."
    dns_timeout: float = 2.0
    certificates: list[CertificateExpiry] = field(default_factory=list)
    cert_errors: dict[str, str] = field(default_factory=dict)
    dnssec: str = "unknown"
    dnssec_detail: str = "not probed yet"
    dnsbl: dict[tuple[str, str], str] = field(default_factory=dict)  # (ip, zone) -> status
    started: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        for ip in self.ips:
            for zone in self.zones:
                DNSBL_LISTED.labels(ip=ip, zone=zone).set(0)

    def check_certificates(self) -> None:
        certificates: list[CertificateExpiry] = []
        for path in self.cert_files:
            try:
                found = certificate_expiry(path)
            except (OSError, ValueError) as exc:
                self.cert_errors[str(path)] = str(exc)
                CERT_LOAD_ERRORS.labels(file=str(path)).set(1)
                continue
            self.cert_errors.pop(str(path), None)
            CERT_LOAD_ERRORS.labels(file=str(path)).set(0)
            certificates.extend(found)
        for cert in certificates:
            CERT_EXPIRY.labels(host=cert.host).set(cert.not_after)
        self.certificates = certificates

    async def check_dnssec(self) -> DNSSECProbe | None:
        """Probe the resolver (only a network resolver can be probed); the probe result."""
        if not isinstance(self.resolver, StubResolver):
            return None
        result = await probe_dnssec(self.resolver, self.dnssec_probe, timeout=self.dns_timeout)
        self.dnssec, self.dnssec_detail = str(result.support), result.detail
        dns_metrics.set_dnssec_status(self.dnssec)
        return result

    async def check_dnsbl(self) -> None:
        if self.resolver is None:
            return
        for ip in self.ips:
            for result in await dnsbl.check_all(self.resolver, ip, self.zones):
                self.dnsbl[(ip, result.zone)] = str(result.status)
                if result.status is not dnsbl.Status.TEMPERROR:  # keep the last known state
                    DNSBL_LISTED.labels(ip=ip, zone=result.zone).set(
                        1 if result.status is dnsbl.Status.FAIL else 0)

    async def run(self, interval: float = CHECK_INTERVAL) -> None:
        """Re-check every ``interval`` seconds (the first checks ran at start)."""
        while True:
            await asyncio.sleep(interval)
            with metrics.guard("serve", "monitor check failed"):
                self.check_certificates()
                await self.check_dnssec()
                await self.check_dnsbl()
