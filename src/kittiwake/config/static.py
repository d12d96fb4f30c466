"""The static configuration, ``kittiwake.conf``: read at start.

Host name, data directory, listeners and the services on each, TLS, DNS,
logging. Changing it needs a restart (``domains.conf`` is the one that is
reloaded while running).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from kittiwake.config.base import (
    AnnouncedHostName,
    DomainName,
    IPText,
    LogLevel,
    ResolverText,
    Section,
    _check_domain,
)
from kittiwake.config.limits import LimitsConfig
from kittiwake.config.reports import ReportsConfig
from kittiwake.config.transports import Transport, TransportName

# Services that start with a TLS handshake (RFC 8314 §3.3): no certificate, no service.
IMPLICIT_TLS = ("submissions", "imaps", "https")


class ServiceConfig(Section):
    """One service on a listener."""

    enabled: bool = False
    """Whether this listener runs the service."""

    port: int = Field(0, ge=0, le=65535)
    """TCP port; 0 means the service's standard port."""


class SMTPService(ServiceConfig):
    """Incoming SMTP (MX) on port 25."""

    no_starttls: bool = False
    """Do not offer STARTTLS even when certificates are configured."""

    require_starttls: bool = False
    """Refuse MAIL FROM before STARTTLS (not for public MX: many senders do not retry with TLS)."""

    dnsbl_zones: list[DomainName] = []
    """DNS block list zones (RFC 5782) checked for connecting IPs, e.g. ["sbl.example.org"]."""


class SubmissionService(ServiceConfig):
    """Mail submission (RFC 6409) with STARTTLS on port 587."""

    no_require_starttls: bool = False
    """Allow authentication without TLS (only for testing)."""


class IMAPServiceConfig(ServiceConfig):
    """IMAP (RFC 9051) with STARTTLS on port 143."""

    no_require_starttls: bool = False
    """Allow LOGIN and AUTHENTICATE without TLS (only for testing: passwords go in clear)."""


class HTTPService(ServiceConfig):
    """Plain HTTP on port 80."""

    reverse_proxied: bool = False
    """Serve the HTTPS content (MTA-STS policy, autoconfig) over plain HTTP here too,
    for a web server in front that terminates TLS and proxies to this port (set up
    by ``quickstart --existing-webserver``); listen on an internal address only."""


class TLSCertificate(Section):
    """A certificate and its key, both PEM files."""

    cert_file: str
    """Certificate chain, leaf first (relative paths are relative to the config directory)."""

    key_file: str
    """The private key."""


class TLSConfig(Section):
    """TLS for a listener: certificate files, or certificates from ACME, or both."""

    certificates: list[TLSCertificate] = []
    """Certificates to use; picked by SNI name, the first one is the default."""

    acme: str = ""
    """Name of an [acme.NAME] section: get and renew certificates for this listener's
    host names (the host name, and mta-sts./autoconfig. of each domain) from it."""

    host_private_key_files: list[str] = []
    """Pre-generated private keys (PEM, ECDSA P-256 and RSA-2048) for the ACME
    certificates: they stay the same across renewals, so TLSA records (DANE, RFC 7672)
    published for them keep matching. Written by ``kittiwake quickstart``."""

    min_version: Literal["TLSv1.2", "TLSv1.3"] = "TLSv1.2"
    """Oldest TLS version accepted (RFC 8996: TLS 1.0 and 1.1 are deprecated)."""


class Listener(Section):
    """A set of IP addresses and the services served on them."""

    ips: list[IPText] = ["0.0.0.0"]
    """IP addresses to listen on, e.g. ["0.0.0.0", "::"] or ["127.0.0.1"]."""

    hostname: AnnouncedHostName | None = None
    """Host name this listener announces; defaults to the global hostname."""

    tls: TLSConfig | None = None
    """TLS certificates for STARTTLS and implicit-TLS services on this listener."""

    smtp: SMTPService = SMTPService()
    """Incoming mail, port 25."""

    submission: SubmissionService = SubmissionService()
    """Submission with STARTTLS, port 587."""

    submissions: ServiceConfig = ServiceConfig()
    """Submission over implicit TLS (RFC 8314), port 465."""

    imap: IMAPServiceConfig = IMAPServiceConfig()
    """IMAP with STARTTLS, port 143."""

    imaps: ServiceConfig = ServiceConfig()
    """IMAP over implicit TLS, port 993."""

    metrics: ServiceConfig = ServiceConfig()
    """Prometheus metrics at /metrics over plain HTTP (port 8010); keep it internal."""

    http: HTTPService = HTTPService()
    """Plain HTTP, port 80: ACME http-01 challenges and redirects to HTTPS."""

    https: ServiceConfig = ServiceConfig()
    """HTTPS, port 443: the MTA-STS policy (RFC 8461 §3.3), client autoconfiguration
    (Thunderbird autoconfig, Microsoft autodiscover, Apple profiles) and ACME
    tls-alpn-01 (RFC 8737)."""

    @field_validator("ips")
    @classmethod
    def _not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one IP address is needed")
        return value



class DNSConfig(Section):
    """How kittiwake resolves names."""

    resolvers: list[ResolverText] = []
    """Recursive resolvers as IP[:PORT]; empty means /etc/resolv.conf. The environment
    variable KITTIWAKE_DNS overrides both. Use a DNSSEC-validating resolver (e.g. unbound
    on localhost): DANE and the DNSSEC status in Authentication-Results depend on it."""

    timeout_seconds: float = Field(3.0, gt=0, le=60)
    """How long to wait for one resolver answer."""

    dnssec_probe: str = "."
    """Name whose DNSKEY answer is checked at start to tell whether the resolver validates."""

    monitor_dnsbl_zones: list[DomainName] = []
    """DNS block lists (RFC 5782) on which to watch our own listener IPs, every 10 minutes,
    besides the listeners' smtp.dnsbl_zones; shown as kittiwake_dns_dnsbl_listed{ip,zone}
    and by `kittiwake status`, alerted on by `kittiwake config describe-alerts`."""


class LogConfig(Section):
    """Logging."""

    level: LogLevel = "info"
    """Default level: error, warn, info, debug, trace (protocol transcripts without secrets
    or message data), traceauth (with credentials), tracedata (with message data)."""

    packages: dict[str, LogLevel] = {}
    """Levels per package, e.g. {smtpserver = "trace", dns = "debug"}."""

    format: Literal["logfmt", "json"] = "logfmt"
    """Line format: logfmt (key=value) or json (one object per line)."""


class QueueConfig(Section):
    """The outgoing queue."""

    concurrency: int = Field(10, ge=1, le=1000)
    """How many destination domains are delivered to at the same time
    (one connection per domain)."""

    history_keep: int = Field(1000, ge=0, le=1_000_000)
    """How many delivered/failed recipients `kittiwake queue list --all` remembers."""

    history_days: float = Field(7.0, ge=0, le=365)
    """How long delivered/failed recipients are remembered, in days."""


class ACMEConfig(Section):
    """An ACME certificate authority (RFC 8555), e.g. Let's Encrypt."""

    directory_url: str
    """The directory URL, e.g. "https://acme-v02.api.letsencrypt.org/directory"."""

    contact_email: str = ""
    """Address the authority may write to about the account (expiry, problems)."""

    challenge: Literal["tls-alpn-01", "http-01"] = "tls-alpn-01"
    """How we prove control of a name: tls-alpn-01 (RFC 8737) on the https port, or
    http-01 (RFC 8555 §8.3) on the http port (also through a web server in front)."""

    renew_before_days: int = Field(30, ge=1, le=60)
    """Renew a certificate this many days before it expires (earlier when the
    authority's renewal information, RFC 9773, suggests a window)."""

    issuer_domain_names: list[DomainName] = []
    """The authority's CAA issuer names (RFC 8659), for CAA records and checks, e.g.
    ["letsencrypt.org"]; empty: known for well-known directories."""

    ca_file: str = ""
    """Extra CA certificate(s) to trust the directory's HTTPS with (a private or test
    authority such as pebble); empty: the system's CAs."""

    eab_key_id: str = ""
    """External account binding key id (RFC 8555 §7.3.4), when the authority needs one."""

    eab_hmac_key_file: str = ""
    """File holding the external account binding HMAC key (base64url)."""


class DMARCReportingConfig(Section):
    """Sending DMARC aggregate reports (RFC 7489 §7.2) about the mail we receive."""

    enabled: bool = True
    """Record the DMARC evaluations of incoming mail and send, once a day, a report of
    the previous UTC day to each From domain whose DMARC record asks for one (rua=)."""

    organization: str = ""
    """Our name in the reports (org_name, Submitter); empty: the host name's
    organizational domain."""

    from_address: str = ""
    """From address of the reports (and their contact email); empty: postmaster@ the
    host name (or its organizational domain) when it is one of our domains, else of the
    first domain in domains.conf. Reports are DKIM-signed with its domain's key (or, if it has
    none, another of our domains')."""

    @field_validator("from_address")
    @classmethod
    def _address(cls, value: str) -> str:
        if value:
            local, at, domain = value.rpartition("@")
            if not at or not local or not domain or " " in value or "<" in value:
                raise ValueError(f"{value!r} is not a mail address (localpart@domain)")
            _check_domain(domain)
        return value


class StaticConfig(Section):
    """kittiwake.conf: settings read at start."""

    hostname: AnnouncedHostName
    """This machine's fully qualified host name, used in SMTP greetings and Received headers."""

    data_dir: str = "../data"
    """Where mail, queue and databases live (relative to the config directory)."""

    postmaster_account: str = ""
    """Account that receives mail for postmaster@ of every domain and the bare <postmaster>
    (RFC 5321 §4.5.1), unless domains.conf routes postmaster@DOMAIN itself (an address
    or the domain's catch-all); empty means the first account in domains.conf."""

    pedantic: bool = False
    """Strict protocol behaviour: refuse to send 8-bit mail to a server that does not
    announce 8BITMIME (RFC 6152) instead of sending it anyway as most servers cope."""

    user: str = ""
    """Unprivileged user to run as: started as root, ``serve`` binds its ports and then
    drops to this user (and refuses to keep running as root without it)."""

    shutdown_grace_seconds: float = Field(5.0, ge=0, le=300)
    """On SIGTERM/SIGINT, how long open sessions get to finish before they are closed."""

    smtp_processes: Literal["auto"] | int = "auto"
    """Processes serving the SMTP (port 25) listeners, to use several cores: "auto" is
    one per usable core; 1 serves everything in the server process; N (up to 64)
    starts N worker processes that accept SMTP connections, run the sessions and the
    MX checks, and hand each message to the server process, which stores it.
    Submission, IMAP and HTTP stay in the server process."""

    @field_validator("smtp_processes", mode="before")
    @classmethod
    def _processes(cls, value: object) -> Literal["auto"] | int:
        if value == "auto":
            return "auto"
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 64:
            return value
        raise ValueError(f"{value!r}: expected \"auto\" or a number of processes from 1"
                         " to 64")

    dns: DNSConfig = DNSConfig()
    """DNS resolution."""

    log: LogConfig = LogConfig()
    """Logging."""

    queue: QueueConfig = QueueConfig()
    """The outgoing queue."""

    limits: LimitsConfig = LimitsConfig()
    """Connection and failed-login limits against abuse."""

    reports: ReportsConfig = ReportsConfig()
    """Reports this server sends about its outgoing mail (TLSRPT)."""

    dmarc_reporting: DMARCReportingConfig = DMARCReportingConfig()
    """Outgoing DMARC aggregate reports."""

    listeners: dict[str, Listener] = {}
    """Named listeners, e.g. [listeners.public] and [listeners.internal]."""

    acme: dict[str, ACMEConfig] = {}
    """Named ACME certificate authorities, referred to by listeners' tls.acme."""

    # Annotated so `describe-static` shows `transports = {}` rather than an example
    # [transports.NAME] table: a transport needs exactly one kind, so an example with every
    # kind commented out would not validate.
    transports: dict[TransportName, Annotated[Transport, "one kind"]] = {}
    """Named transports for outgoing mail, picked by routes in domains.conf. Each is
    exactly one of: direct (options disable_ipv4, disable_ipv6), smtp (host, port = 25,
    no_starttls, tls_verify = true), submission (host, port = 587, username,
    password_file, mechanisms), submissions (the same with implicit TLS, port = 465),
    socks (address, remote_ips, hostname, username, password_file) or fail (code = 554,
    message). For example:
    [transports.relay.submission]
    host = "smtp.provider.example"
    username = "alice@provider.example"
    password_file = "secrets/relay.password"
    """

    @model_validator(mode="after")
    def _implicit_tls_has_certificate(self) -> StaticConfig:
        for name, listener in self.listeners.items():
            has_certificate = bool(listener.tls and (listener.tls.certificates
                                                     or listener.tls.acme))
            for service in IMPLICIT_TLS:
                if getattr(listener, service).enabled and not has_certificate:
                    where = f"listeners.{name}"
                    raise ValueError(f"{where}.{service}: enabled, but {where}.tls has no"
                                     " certificates: implicit TLS (RFC 8314 §3.3) needs one;"
                                     f" add [[{where}.tls.certificates]] or disable {service}")
        return self

    @model_validator(mode="after")
    def _acme_known(self) -> StaticConfig:
        for name, listener in self.listeners.items():
            if listener.tls and listener.tls.acme and listener.tls.acme not in self.acme:
                known = ", ".join(sorted(self.acme)) or "none configured"
                raise ValueError(f"listeners.{name}.tls.acme: no [acme.{listener.tls.acme}]"
                                 f" section (known: {known})")
        return self

    @model_validator(mode="after")
    def _unique_ports(self) -> StaticConfig:
        seen: dict[tuple[str, int], str] = {}
        for name, listener in self.listeners.items():
            for service, port in enabled_services(listener):
                for ip in listener.ips:
                    key = (ip, port)
                    where = f"listeners.{name}.{service}"
                    if key in seen:
                        raise ValueError(
                            f"{where} and {seen[key]} both use {ip} port {port}"
                        )
                    seen[key] = where
        return self


DEFAULT_PORTS = {
    "smtp": 25, "submission": 587, "submissions": 465, "imap": 143, "imaps": 993,
    "metrics": 8010, "http": 80, "https": 443,
}


def enabled_services(listener: Listener) -> list[tuple[str, int]]:
    """(service, port) for each enabled service of a listener."""
    out = []
    for service, default in DEFAULT_PORTS.items():
        svc: ServiceConfig = getattr(listener, service)
        if svc.enabled:
            out.append((service, svc.port or default))
    return out
