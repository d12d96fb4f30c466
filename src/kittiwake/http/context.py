"""What the HTTPS content handlers need: host names, client endpoints, domains.conf.

:class:`HTTPContext` is built once per HTTP(S) listener from the loaded
:class:`~kittiwake.config.Config` (:meth:`HTTPContext.from_config`). Only
``domains.conf`` changes while the server runs: the context holds a
function returning the current one (the reload watcher's ``current``) and
every request reads it through :meth:`HTTPContext.lookup`, so a domain or an
account added while running is served by the next request.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from kittiwake.config.domains import DomainsConfig
from kittiwake.config.load import Config
from kittiwake.config.lookup import AddressIndex
from kittiwake.config.static import DEFAULT_PORTS, Listener, StaticConfig


class Protocol(StrEnum):
    """What a mail client connects to."""

    IMAP = "imap"
    SMTP = "smtp"  # submission (RFC 6409), not the MX port


class Security(StrEnum):
    """How the connection is secured, in the words of Thunderbird's autoconfig format."""

    SSL = "SSL"  # implicit TLS from the first byte (RFC 8314 §3)
    STARTTLS = "STARTTLS"  # plain text, then STARTTLS before authentication


@dataclass(frozen=True)
class ClientEndpoint:
    """One service a mail client may use: host, port, protocol, TLS kind."""

    protocol: Protocol
    host: str
    port: int
    security: Security


# Services announced to clients, preferred first: implicit TLS before STARTTLS
# (RFC 8314 §5.1: clients should prefer it).
CLIENT_SERVICES: tuple[tuple[str, Protocol, Security], ...] = (
    ("imaps", Protocol.IMAP, Security.SSL),
    ("imap", Protocol.IMAP, Security.STARTTLS),
    ("submissions", Protocol.SMTP, Security.SSL),
    ("submission", Protocol.SMTP, Security.STARTTLS),
)


@dataclass(frozen=True)
class HTTPLimits:
    """Bounds on what one client may make the content server do."""

    max_body: int = 64 * 1024  # an autodiscover request is well under 1 KiB
    profile_requests_per_minute: int = 20  # per client address, for .mobileconfig
    max_query: int = 1024  # characters of a query string


@dataclass
class HTTPContext:
    """Shared by every request of one HTTP(S) listener's content application."""

    hostname: str
    """The mail host name of this listener (where the .mobileconfig profile is served)."""

    mx_hosts: tuple[str, ...]
    """Host names of our listeners that serve smtp: the MTA-STS policy's own mx lines."""

    endpoints: tuple[ClientEndpoint, ...]
    """Client services to announce in autoconfig, autodiscover and profiles, preferred first."""

    domains: Callable[[], DomainsConfig]
    """The current domains.conf (reloaded while running): read it per request."""

    reverse_proxied: bool = False
    """Served as plain HTTP behind a web server: trust X-Forwarded-For from loopback."""

    limits: HTTPLimits = field(default_factory=HTTPLimits)
    clock: Callable[[], float] = time.monotonic
    _index: AddressIndex | None = field(default=None, init=False, repr=False)

    def lookup(self) -> AddressIndex:
        """The address index of the current domains.conf (rebuilt after each reload)."""
        current = self.domains()
        if self._index is None or self._index.config is not current:
            self._index = AddressIndex(current)
        return self._index

    def endpoints_for(self, protocol: Protocol) -> list[ClientEndpoint]:
        return [e for e in self.endpoints if e.protocol is protocol]

    @classmethod
    def from_config(cls, config: Config, listener_name: str,
                    domains: Callable[[], DomainsConfig] | None = None) -> HTTPContext:
        """The context for the content served on listener ``listener_name``.

        ``domains`` returns the current domains.conf (pass the reload
        watcher's, e.g. ``lambda: watcher.current``); by default the one
        loaded with ``config``. Raises KeyError for an unknown listener.
        """
        static = config.static
        listener = static.listeners[listener_name]
        loaded = config.domains
        return cls(
            hostname=_host_of(static, listener),
            mx_hosts=mx_hosts(static),
            endpoints=client_endpoints(static, listener_name),
            domains=domains or (lambda: loaded),
            reverse_proxied=listener.http.enabled and listener.http.reverse_proxied,
        )


def _host_of(static: StaticConfig, listener: Listener) -> str:
    return str(listener.hostname or static.hostname)


def mx_hosts(static: StaticConfig) -> tuple[str, ...]:
    """Host names of the listeners that serve smtp (port 25), in config order, once each."""
    hosts: list[str] = []
    for listener in static.listeners.values():
        host = _host_of(static, listener)
        if listener.smtp.enabled and host not in hosts:
            hosts.append(host)
    return tuple(hosts)


def _internal(listener: Listener) -> bool:
    return all(ipaddress.ip_address(ip).is_loopback for ip in listener.ips)


def client_endpoints(static: StaticConfig, listener_name: str) -> tuple[ClientEndpoint, ...]:
    """The IMAP and submission services to announce, preferred first.

    A service is announced when it is enabled on a listener with TLS
    (certificates or ACME): clients are only ever told to send passwords
    over TLS. Listeners on loopback addresses only are internal and not
    announced, unless it is the listener serving this content (a test or a
    local set-up). Each endpoint's host is its listener's host name.
    """
    found: list[ClientEndpoint] = []
    for service, protocol, security in CLIENT_SERVICES:
        for name, listener in static.listeners.items():
            if listener.tls is None or not (listener.tls.certificates or listener.tls.acme):
                continue
            if _internal(listener) and name != listener_name:
                continue
            settings = getattr(listener, service)
            if not settings.enabled:
                continue
            endpoint = ClientEndpoint(protocol, _host_of(static, listener),
                                      settings.port or DEFAULT_PORTS[service], security)
            if endpoint not in found:
                found.append(endpoint)
    return tuple(found)
