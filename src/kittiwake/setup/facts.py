"""What the configuration says one domain's DNS should hold, read once from the config.

:func:`domain_facts` reads the files the config points at (DKIM private
keys, ACME host keys) and the ACME account URI, and returns plain values;
:mod:`kittiwake.setup.records` turns them into records without any I/O.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from kittiwake.config import Config
from kittiwake.config.static import DEFAULT_PORTS, Listener, enabled_services

# CAA issuer domain names (RFC 8659 §4.2) of well-known ACME directories, by host name.
KNOWN_ISSUERS: dict[str, tuple[str, ...]] = {
    "acme-v02.api.letsencrypt.org": ("letsencrypt.org",),
    "acme-staging-v02.api.letsencrypt.org": ("letsencrypt.org",),
    "acme.zerossl.com": ("sectigo.com",),
    "api.buypass.com": ("buypass.com",),
    "api.test4.buypass.no": ("buypass.com",),
    "dv.acme-v02.api.pki.goog": ("pki.goog",),
}


class FactsError(ValueError):
    """The config cannot say what to publish for the domain (one line: what, where)."""


@dataclass(frozen=True)
class DKIMKey:
    """A DKIM selector of the domain and its public key record (RFC 6376 §3.6.1)."""

    selector: str
    record: str  # the TXT value, "v=DKIM1; k=...; p=..."
    signing: bool  # listed in dkim.sign


@dataclass(frozen=True)
class HostKey:
    """A pre-generated ACME host key and the SHA-256 of its SubjectPublicKeyInfo."""

    file: str
    description: str  # "ECDSA secp256r1", "RSA-2048"
    tlsa_data: str  # hex, for "3 1 1" (RFC 6698 §2.1)


@dataclass(frozen=True)
class MTASTS:
    """The MTA-STS policy of the domain (RFC 8461 §3.2)."""

    policy_id: str
    mode: str
    max_age: int
    mx: tuple[str, ...]  # patterns: this host first, then the extra ones


@dataclass(frozen=True)
class DomainFacts:
    """Everything the records of one domain are made from."""

    domain: str
    hostname: str  # the MX host, the listener's announced name
    ips: tuple[str, ...]  # public listener addresses (unspecified ones left out)
    listens_on_any: bool  # a public listener binds 0.0.0.0 or ::
    smtp_port: int
    services: dict[str, int]  # enabled service -> port on the public listeners
    dkim: tuple[DKIMKey, ...] = ()
    dmarc_rua: str | None = None  # address receiving DMARC aggregate reports
    tlsrpt_rua: str = ""  # address receiving TLS reports (RFC 8460 §3)
    mta_sts: MTASTS | None = None
    host_keys: tuple[HostKey, ...] = ()
    caa_issuers: tuple[str, ...] = ()
    acme_name: str = ""
    acme_account_uri: str | None = None
    socks: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (EHLO name, remote IPs)
    web_backend: tuple[str, int] | None = None  # internal http (reverse_proxied) address

    @property
    def all_sending_ips(self) -> tuple[str, ...]:
        """Every address mail leaves from: the listeners' and the SOCKS proxies'."""
        out = list(self.ips)
        for _name, ips in self.socks:
            out += [ip for ip in ips if ip not in out]
        return tuple(out)


def issuers_for(directory_url: str, configured: list[str]) -> tuple[str, ...]:
    """The CAA issuer names for an ACME directory: the configured ones, else known ones."""
    if configured:
        return tuple(configured)
    from urllib.parse import urlsplit

    host = (urlsplit(directory_url).hostname or "").lower()
    return KNOWN_ISSUERS.get(host, ())


def public_listeners(config: Config) -> list[tuple[str, Listener]]:
    """Listeners that receive mail from the Internet (smtp enabled), in config order."""
    return [(n, li) for n, li in config.static.listeners.items() if li.smtp.enabled]


def _account_uri(data_dir: Path, acme_name: str) -> str | None:
    """The ACME account to name in CAA accounturi (RFC 8657 §3), once registered."""
    from kittiwake.acme import account_uri

    return account_uri(data_dir, acme_name)


def domain_facts(config: Config, domain: str) -> DomainFacts:
    """The facts of ``domain`` (A-labels) from the config; FactsError when it is not set up."""
    from kittiwake.dkim import dns_record, load_private_key
    from kittiwake.setup.hostkeys import key_description, load_host_key, tlsa_3_1_1

    settings = config.domains.domains.get(domain)
    if settings is None:
        known = ", ".join(sorted(config.domains.domains)) or "none"
        raise FactsError(f"domain {domain!r} is not in domains.conf (known: {known})")
    listeners = public_listeners(config)
    if not listeners:
        raise FactsError("kittiwake.conf: no listener has smtp enabled, so no host receives"
                         " mail for the domain; enable listeners.NAME.smtp")
    first_name, first = listeners[0]
    hostname = first.hostname or config.static.hostname
    ips: list[str] = []
    any_address = False
    services: dict[str, int] = {}
    for _name, listener in listeners:
        for ip in listener.ips:
            if ipaddress.ip_address(ip).is_unspecified:
                any_address = True
            elif ip not in ips:
                ips.append(ip)
        for service, port in enabled_services(listener):
            services.setdefault(service, port)
    dkim: list[DKIMKey] = []
    for selector, sel in settings.dkim.selectors.items():
        path = config.path(sel.private_key_file)
        try:
            key = load_private_key(path.read_bytes())
        except (OSError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise FactsError(f"domains.conf: domains.{domain}.dkim.selectors.{selector}:"
                             f" {path}: {why}") from None
        dkim.append(DKIMKey(selector, dns_record(key), selector in settings.dkim.sign))
    dmarc_rua = None
    if settings.dmarc_reports is not None:
        dmarc_rua = f"{settings.dmarc_reports.localpart}@{domain}"
    tlsrpt_rua = _tlsrpt_address(config, domain) or dmarc_rua or f"postmaster@{domain}"
    mta_sts = None
    if settings.mta_sts is not None:
        # The id and mx lines of exactly the policy the https listener serves.
        from kittiwake.http.context import mx_hosts
        from kittiwake.http.mtasts import PolicyUnavailable, published_policy

        policy = settings.mta_sts
        try:
            published = published_policy(policy, mx_hosts(config.static))
        except PolicyUnavailable as exc:
            raise FactsError(f"domains.conf: domains.{domain}.mta_sts: {exc}") from None
        mta_sts = MTASTS(published.id, policy.mode, policy.max_age_seconds,
                         tuple(published.policy.mx))
    host_keys: list[HostKey] = []
    caa: tuple[str, ...] = ()
    acme_name = ""
    if first.tls is not None:
        for i, file in enumerate(first.tls.host_private_key_files):
            try:
                hkey = load_host_key(config.path(file))
            except ValueError as exc:
                raise FactsError(f"kittiwake.conf: listeners.{first_name}.tls."
                                 f"host_private_key_files[{i}]: {exc}") from None
            host_keys.append(HostKey(file, key_description(hkey), tlsa_3_1_1(hkey)))
        acme_name = first.tls.acme
        if acme_name:
            acme = config.static.acme[acme_name]
            caa = issuers_for(acme.directory_url, list(acme.issuer_domain_names))
    socks = tuple((t.socks.hostname, tuple(t.socks.remote_ips))
                  for t in config.static.transports.values() if t.socks is not None)
    web_backend = None
    for _name, listener in config.static.listeners.items():
        if listener.http.enabled and listener.http.reverse_proxied:
            web_backend = (listener.ips[0], listener.http.port or DEFAULT_PORTS["http"])
    return DomainFacts(
        domain=domain, hostname=hostname, ips=tuple(ips), listens_on_any=any_address,
        smtp_port=services.get("smtp", DEFAULT_PORTS["smtp"]), services=services,
        dkim=tuple(dkim), dmarc_rua=dmarc_rua, tlsrpt_rua=tlsrpt_rua, mta_sts=mta_sts,
        host_keys=tuple(host_keys), caa_issuers=caa, acme_name=acme_name,
        acme_account_uri=_account_uri(config.data_dir, acme_name) if acme_name else None,
        socks=socks, web_backend=web_backend)


def _tlsrpt_address(config: Config, domain: str) -> str | None:
    """The domain's tlsrpt_reports address; else (older configs) a tls-reports@DOMAIN
    (or tlsrpt@) destination of some account, if configured."""
    reports = config.domains.domains[domain].tlsrpt_reports
    if reports is not None:
        return f"{reports.localpart}@{domain}".lower()
    wanted = {f"tls-reports@{domain}", f"tlsrpt@{domain}"}
    for account in config.domains.accounts.values():
        for address in account.destinations:
            if address.lower() in wanted:
                return address.lower()
    return None
