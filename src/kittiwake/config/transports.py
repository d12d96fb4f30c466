"""Outgoing transports and routes: how queued mail leaves this server.

Transports are named in ``kittiwake.conf`` (``[transports.NAME.KIND]``); each
is exactly one kind:

- ``direct``: look up the MX hosts (RFC 5321 §5.1) and deliver to them;
- ``smtp``: relay to a smarthost on port 25, STARTTLS (RFC 3207) unless disabled;
- ``submission``: relay through a submission server (RFC 6409) on port 587
  with required STARTTLS and SMTP AUTH (RFC 4954);
- ``submissions``: the same over implicit TLS on port 465 (RFC 8314 §3.3);
- ``socks``: deliver directly, but connect through a SOCKS5 proxy (RFC 1928);
- ``fail``: do not deliver; fail the recipients with a configured reply code.

Routes (in ``domains.conf``: per account, per domain and global) pick a
transport by sender domain, recipient domain and attempt count; the choice
itself is in :mod:`kittiwake.queue.routing`. Passwords live in separate files
(``password_file``), never in the config files.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from kittiwake.config.base import AnnouncedHostName, IPText, Section

if TYPE_CHECKING:
    from kittiwake.config.domains import DomainsConfig
    from kittiwake.config.static import StaticConfig

Kind = Literal["direct", "smtp", "submission", "submissions", "socks", "fail"]
KINDS: tuple[Kind, ...] = ("direct", "smtp", "submission", "submissions", "socks", "fail")
"""The transport kinds, in the order they are documented."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _check_name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(f"transport name {value!r}: use 1-64 letters, digits, '-', '_' or '.'"
                         " starting with a letter or digit")
    return value


def _check_host(value: str) -> str:
    """A host name (stored as lower-case A-labels) or an IP address."""
    from kittiwake.dns.names import to_ascii
    from kittiwake.dns.types import InvalidName

    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    try:
        return to_ascii(text).lower()
    except InvalidName as exc:
        raise ValueError(f"{value!r} is not a host name or IP address: {exc}") from None


def _check_mechanism(value: str) -> str:
    from kittiwake.sasl.registry import MECHANISMS

    upper = value.upper()
    if upper not in MECHANISMS:
        raise ValueError(f"{value!r} is not a supported SASL mechanism "
                         f"(known: {', '.join(MECHANISMS)})")
    return upper


def _check_route_domain(value: str) -> str:
    """A domain for route matching: A-labels, lower case, an optional leading dot kept."""
    from kittiwake.dns.names import mail_domain
    from kittiwake.dns.types import InvalidName

    text = value.strip()
    dot = text.startswith(".")
    try:
        ascii_name = mail_domain(text[1:] if dot else text).ascii
    except InvalidName as exc:
        raise ValueError(str(exc)) from None
    return ("." if dot else "") + ascii_name


TransportName = Annotated[str, AfterValidator(_check_name)]
HostName = Annotated[str, AfterValidator(_check_host)]
Mechanism = Annotated[str, AfterValidator(_check_mechanism)]
RouteDomain = Annotated[str, AfterValidator(_check_route_domain)]


def read_password_file(path: Path) -> str:
    """The password in ``path``: the file's text without one trailing line end.

    Raises OSError when the file cannot be read.
    """
    text = path.read_text(encoding="utf-8")
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith("\n"):
        return text[:-1]
    return text


class DirectTransport(Section):
    """Deliver to the recipient domain's MX hosts (RFC 5321 §5.1)."""

    disable_ipv4: bool = False
    """Do not connect to IPv4 addresses of MX hosts."""

    disable_ipv6: bool = False
    """Do not connect to IPv6 addresses of MX hosts."""

    @model_validator(mode="after")
    def _some_family(self) -> DirectTransport:
        if self.disable_ipv4 and self.disable_ipv6:
            raise ValueError("disable_ipv4 and disable_ipv6 both set: no address family is left")
        return self


class SMTPTransport(Section):
    """Relay everything to a smarthost over SMTP, without authentication."""

    host: HostName
    """Host name or IP address of the smarthost."""

    port: int = Field(25, ge=1, le=65535)
    """TCP port of the smarthost."""

    no_starttls: bool = False
    """Do not use STARTTLS (RFC 3207); by default it is used when the smarthost offers it."""

    tls_verify: bool = True
    """Verify the smarthost's certificate against the system CAs and `host` (PKIX,
    RFC 6125); false accepts any certificate (the connection is still encrypted)."""


class SubmissionTransport(Section):
    """Relay through a submission server (RFC 6409) with STARTTLS and SMTP AUTH (RFC 4954)."""

    host: HostName
    """Host name of the submission server; its certificate must be valid for it."""

    port: int = Field(587, ge=1, le=65535)
    """TCP port; 587 for submission with STARTTLS (required, never skipped)."""

    username: str = Field(min_length=1)
    """User name to authenticate as."""

    password_file: str = Field(min_length=1)
    """File holding the password (its first line end is ignored); relative paths are
    relative to the config directory. Keep it readable only by kittiwake."""

    mechanisms: list[Mechanism] = []
    """SASL mechanisms allowed, e.g. ["SCRAM-SHA-256"]; empty means the most secure
    one the server offers (SCRAM-SHA-256-PLUS first, PLAIN/LOGIN only over TLS)."""

    def password(self, config_dir: Path) -> str:
        """Read the password from ``password_file``; OSError when unreadable."""
        return read_password_file(Path(config_dir) / self.password_file)


class SubmissionsTransport(SubmissionTransport):
    """Relay through a submission server over implicit TLS (RFC 8314 §3.3) with SMTP AUTH."""

    port: int = Field(465, ge=1, le=65535)
    """TCP port; 465 for submission over implicit TLS."""


class SOCKSTransport(Section):
    """Deliver to the MX hosts like `direct`, connecting through a SOCKS5 proxy (RFC 1928)."""

    address: str
    """The proxy as HOST:PORT, e.g. "127.0.0.1:1080" or "[::1]:1080"."""

    remote_ips: list[IPText]
    """Public IP addresses the proxy connects from (they must be in this domain's SPF
    record and have reverse DNS matching `hostname`)."""

    hostname: AnnouncedHostName
    """Host name announced in EHLO through this proxy (the proxy's IPs' reverse DNS name)."""

    username: str = ""
    """User name for the proxy (RFC 1929); empty means no authentication."""

    password_file: str = ""
    """File holding the proxy password (needed with `username`), relative to the config
    directory."""

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        split_address(value)
        return value

    @field_validator("remote_ips")
    @classmethod
    def _some_ips(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one IP address is needed")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> SOCKSTransport:
        if bool(self.username) != bool(self.password_file):
            raise ValueError("username and password_file go together: set both or neither")
        return self

    @property
    def proxy(self) -> tuple[str, int]:
        """(host, port) of the proxy."""
        return split_address(self.address)

    def password(self, config_dir: Path) -> str:
        """Read the proxy password; "" when no authentication is configured."""
        if not self.password_file:
            return ""
        return read_password_file(Path(config_dir) / self.password_file)


def split_address(value: str) -> tuple[str, int]:
    """Split HOST:PORT or [IPv6]:PORT; ValueError with a readable reason."""
    problem = f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:1080 or [::1]:1080)"
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(problem)
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError(f"{value!r}: port {port} is not in 1-65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(problem) from None
    elif ":" in host:
        raise ValueError(f"{value!r}: write IPv6 addresses in brackets, e.g. [::1]:1080")
    return _check_host(host), port


class FailTransport(Section):
    """Do not deliver: fail each recipient with this SMTP reply (RFC 5321 §4.2)."""

    code: int = 554
    """Reply code: 4xx keeps the message queued for a retry, 5xx fails it (with a DSN)."""

    message: str = "delivery disabled by configuration"
    """Reply text, shown in the DSN; one line of printable ASCII."""

    @field_validator("code")
    @classmethod
    def _code(cls, value: int) -> int:
        # RFC 5321 §4.2.1: 4yz transient negative, 5yz permanent negative completion.
        if not 400 <= value <= 599:
            raise ValueError(f"code {value} is not a failure reply code (400-599: 4xx temporary,"
                             " 5xx permanent)")
        return value

    @field_validator("message")
    @classmethod
    def _text(cls, value: str) -> str:
        if not all(" " <= c <= "~" or c == "\t" for c in value):
            raise ValueError("message must be one line of printable ASCII")
        return value


Settings = (DirectTransport | SMTPTransport | SubmissionTransport | SubmissionsTransport
            | SOCKSTransport | FailTransport)


class Transport(Section):
    """One way of sending: exactly one of the kinds below is set."""

    direct: DirectTransport | None = None
    """Deliver to the MX hosts of the recipient domain."""

    smtp: SMTPTransport | None = None
    """Relay to a smarthost over SMTP (port 25), STARTTLS unless disabled."""

    submission: SubmissionTransport | None = None
    """Relay through a submission server (port 587): STARTTLS and authentication."""

    submissions: SubmissionsTransport | None = None
    """Relay through a submission server over implicit TLS (port 465) with authentication."""

    socks: SOCKSTransport | None = None
    """Deliver to the MX hosts through a SOCKS5 proxy."""

    fail: FailTransport | None = None
    """Do not deliver; fail recipients with a fixed reply."""

    @model_validator(mode="after")
    def _exactly_one(self) -> Transport:
        chosen = [kind for kind in KINDS if getattr(self, kind) is not None]
        if len(chosen) != 1:
            got = "none" if not chosen else " and ".join(chosen)
            raise ValueError(f"a transport needs exactly one kind of {', '.join(KINDS)}"
                             f" (got {got}), e.g. [transports.NAME.smtp]")
        return self

    @property
    def kind(self) -> Kind:
        """Which kind is set."""
        for kind in KINDS:
            if getattr(self, kind) is not None:
                return kind
        raise AssertionError("validated transport without a kind")

    @property
    def settings(self) -> Settings:
        """The settings of the kind that is set."""
        value: Settings = getattr(self, self.kind)
        return value


DIRECT = Transport(direct=DirectTransport())
"""The transport used when no route applies, or the route's transport is empty."""


def domain_matches(patterns: list[str], domain: str) -> bool:
    """Whether ``domain`` (A-labels, lower case) matches a route's domain list.

    An empty list matches any domain. ".example.com" matches strict subdomains
    (mail.example.com, a.b.example.com) but not example.com; "example.com"
    matches only itself.
    """
    if not patterns:
        return True
    for pattern in patterns:
        if pattern.startswith("."):
            if domain.endswith(pattern) and len(domain) > len(pattern):
                return True
        elif domain == pattern:
            return True
    return False


class Route(Section):
    """A rule picking a transport for outgoing mail; all given conditions must match."""

    from_domains: list[RouteDomain] = []
    """Sender (MAIL FROM) domains; ".example.org" matches its subdomains but not
    example.org itself; empty matches any sender."""

    to_domains: list[RouteDomain] = []
    """Recipient domains, matched like from_domains; empty matches any recipient."""

    min_attempts: int = Field(0, ge=0, le=1000)
    """Apply only after this many failed delivery attempts, e.g. 2: from the third
    attempt on; 0 applies from the first attempt."""

    transport: str = ""
    """Name of a transport in kittiwake.conf; empty means direct delivery to the MX hosts."""

    def matches(self, from_domain: str, to_domain: str, attempts: int) -> bool:
        """Whether this route applies; domains in A-label lower-case form."""
        return (attempts >= self.min_attempts
                and domain_matches(self.from_domains, from_domain)
                and domain_matches(self.to_domains, to_domain))


def check_routes(static: StaticConfig, domains: DomainsConfig) -> list[str]:
    """Problems with routes in domains.conf naming transports kittiwake.conf lacks.

    Each problem is ``FIELD.PATH: message``; the caller puts the file name in front.
    """
    known = ", ".join(sorted(static.transports)) or "none"
    places: list[tuple[str, list[Route]]] = []
    for name, account in domains.accounts.items():
        places.append((f"accounts.{_key(name)}.routes", account.routes))
    for dname, domain in domains.domains.items():
        places.append((f"domains.{_key(dname)}.routes", domain.routes))
    places.append(("routes", domains.routes))
    problems = []
    for where, routes in places:
        for i, route in enumerate(routes):
            if route.transport and route.transport not in static.transports:
                problems.append(f"{where}[{i}].transport: transport {route.transport!r} is not"
                                f" defined in kittiwake.conf (known: {known})")
    return problems


def check_transport_files(directory: Path, static: StaticConfig) -> list[str]:
    """Problems with password files of transports: ``FIELD.PATH: no file PATH``."""
    problems = []
    for name, transport in static.transports.items():
        settings = transport.settings
        password_file = getattr(settings, "password_file", "")
        if password_file:
            target = directory / password_file
            if not target.is_file():
                problems.append(f"transports.{_key(name)}.{transport.kind}.password_file:"
                                f" no file {target}")
    return problems


def _key(name: str) -> str:
    return name if name.replace("_", "").replace("-", "").isalnum() else f'"{name}"'
