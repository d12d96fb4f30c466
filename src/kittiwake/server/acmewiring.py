"""Wiring of ACME certificates and the HTTP/HTTPS listeners into the server process.

For each ``[acme.NAME]`` some listener refers to (``tls.acme``), one
:class:`kittiwake.acme.manager.CertificateManager`; per such listener the
name set (its host name, and ``mta-sts.`` and ``autoconfig.`` of every
domain in domains.conf) and its host keys (``tls.host_private_key_files``, or
keys generated in the data directory, with a warning: their TLSA records
cannot be published before the first start).

The listener's TLS is its one :class:`kittiwake.server.tls.ServerTLS`, shared
by its SMTP, IMAP and HTTPS services: each new certificate set (ECDSA and RSA
of the same names, one slot each in a context, so OpenSSL serves what the
client prefers) replaces the issued part of what it serves, and new
connections get it without a restart.

The ACME client (the ``acme`` library, ``requests``, ``josepy``: about 6 MiB
resident) is imported only when some listener uses ACME.
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

from kittiwake.acme.challenges import Challenges
from kittiwake.acme.clienthello import parse_client_hello
from kittiwake.acme.keys import HostKey, HostKeyError, generated_host_keys, load_host_keys
from kittiwake.acme.paths import generated_keys_dir
from kittiwake.log import get_logger
from kittiwake.server.tls import CertificateFiles

if TYPE_CHECKING:
    from aiohttp import web

    from kittiwake.acme.manager import CertificateManager, CertificatePaths
    from kittiwake.config import Config
    from kittiwake.config.static import Listener
    from kittiwake.dns.resolver import Resolver
    from kittiwake.limits import ConnectionSlots
    from kittiwake.server.tls import ServerTLS

logger = get_logger("server")

ContentFactory = Callable[[str], "web.Application"]
"""Builds the HTTPS content app for the listener of the given name."""


class ACMESetupError(Exception):
    """An ACME setting cannot be used; the message names the field."""


def listener_names(hostname: str, domains: list[str]) -> list[str]:
    """The host name, then ``mta-sts.D`` and ``autoconfig.D`` of each domain."""
    names = [hostname.lower().rstrip(".")]
    for domain in domains:
        d = domain.lower().rstrip(".")
        names += [f"mta-sts.{d}", f"autoconfig.{d}"]
    return list(dict.fromkeys(names))


class ACMEServices:
    """The certificate managers and the http/https services of one server process."""

    def __init__(self, config: Config, resolver: Resolver | None,
                 content: ContentFactory | None = None) -> None:
        self.config = config
        self.resolver = resolver
        self.content = content
        self.challenges = Challenges()
        self.managers: dict[str, CertificateManager] = {}
        self._set_up = False

    def setup(self, tls_for: Callable[[str], ServerTLS | None]) -> None:
        """Build a manager per authority in use and register each ACME listener (once).

        ``tls_for`` gives a listener's :class:`ServerTLS` (the server's one object per
        listener, shared by its SMTP, IMAP and HTTPS services): each new certificate
        set replaces the ACME part of what it serves, beside configured files."""
        if self._set_up:
            return
        self._set_up = True
        static = self.config.static
        domains = [str(d) for d in self.config.domains.domains]
        for name, listener in static.listeners.items():
            if not (listener.tls and listener.tls.acme):
                continue
            manager = self._manager(listener.tls.acme)
            keys = self._host_keys(name, listener)
            hostname = str(listener.hostname or static.hostname)
            manager.add_listener(name, listener_names(hostname, domains), keys)
            server_tls = tls_for(name)
            assert server_tls is not None  # a listener with tls.acme always has one
            manager.subscribe(name, _serve_issued(server_tls, server_tls.certificates))

    def domains_changed(self, domains: list[str]) -> None:
        """domains.conf was reloaded: a new or removed domain changes the name sets."""
        static = self.config.static
        for name, listener in static.listeners.items():
            if listener.tls and listener.tls.acme and listener.tls.acme in self.managers:
                hostname = str(listener.hostname or static.hostname)
                self.managers[listener.tls.acme].set_names(name,
                                                           listener_names(hostname, domains))

    def _manager(self, authority_name: str) -> CertificateManager:
        if authority_name in self.managers:
            return self.managers[authority_name]
        from kittiwake.acme.client import Authority
        from kittiwake.acme.manager import CertificateManager
        section = self.config.static.acme[authority_name]
        where = f"kittiwake.conf: acme.{authority_name}"
        hmac_key = ""
        if section.eab_hmac_key_file:
            path = self.config.path(section.eab_hmac_key_file)
            try:
                hmac_key = path.read_text().strip()
            except OSError as exc:
                raise ACMESetupError(f"{where}.eab_hmac_key_file: cannot read {path}"
                                     f" ({exc.strerror})") from None
        if bool(section.eab_key_id) != bool(hmac_key):
            raise ACMESetupError(f"{where}: eab_key_id and eab_hmac_key_file go together")
        authority = Authority(
            name=authority_name, directory_url=section.directory_url,
            challenge=section.challenge, contact_email=section.contact_email,
            ca_file=self.config.path(section.ca_file) if section.ca_file else None,
            eab_key_id=section.eab_key_id, eab_hmac_key=hmac_key,
            issuer_domain_names=tuple(str(d) for d in section.issuer_domain_names))
        manager = CertificateManager(authority, self.config.data_dir, self.challenges,
                                     renew_before=dt.timedelta(days=section.renew_before_days),
                                     resolver=self.resolver)
        self.managers[authority_name] = manager
        return manager

    def _host_keys(self, name: str, listener: Listener) -> list[HostKey]:
        assert listener.tls is not None
        files = [self.config.path(p) for p in listener.tls.host_private_key_files]
        if files:
            try:
                return load_host_keys(files)
            except HostKeyError as exc:
                raise ACMESetupError(f"kittiwake.conf: listeners.{name}.tls"
                                     f".host_private_key_files: {exc}") from None
        directory = generated_keys_dir(self.config.data_dir, listener.tls.acme)
        keys, created = generated_host_keys(directory)
        logger.warning("no pre-generated host keys: using keys made in the data directory;"
                       " TLSA records for them could not be published in advance",
                       listener=name, directory=str(directory), created=created,
                       fix=f"set listeners.{name}.tls.host_private_key_files (quickstart"
                           " writes them) and publish TLSA 3 1 1 for them")
        return keys

    def http_service(self, name: str, listener: Listener, port: int,
                     slots: ConnectionSlots, https_port: int) -> object:
        from kittiwake.http.listener import HTTPListener

        content = self._content_for(name) if listener.http.reverse_proxied else None
        return HTTPListener(list(listener.ips), port, self.challenges,
                            str(listener.hostname or self.config.static.hostname),
                            https_port=https_port, reverse_proxied_content=content, slots=slots,
                            backlog=self.config.static.limits.listen_backlog)

    def https_service(self, name: str, listener: Listener, port: int,
                      tls: ServerTLS | None, slots: ConnectionSlots) -> object:
        from kittiwake.http.listener import HTTPSListener

        def context() -> ssl.SSLContext | None:
            return tls.context if tls is not None and tls.has_certificates() else None

        return HTTPSListener(list(listener.ips), port, self.challenges, parse_client_hello,
                             context, content=self._content_for(name), slots=slots,
                             backlog=self.config.static.limits.listen_backlog)

    def _content_for(self, name: str) -> Callable[[], web.Application] | None:
        content = self.content
        if content is None:
            return None
        return lambda: content(name)

    async def start(self) -> None:
        for manager in self.managers.values():
            await manager.start()

    async def close(self) -> None:
        for manager in self.managers.values():
            await manager.close()


def _serve_issued(tls: ServerTLS, configured: list[CertificateFiles]
                  ) -> Callable[[list[CertificatePaths]], None]:
    """The manager's callback: serve the configured files plus the issued certificates
    (ECDSA and RSA of the same names share one context, clients pick)."""
    def update(issued: list[CertificatePaths]) -> None:
        tls.update([*configured, *(CertificateFiles(p.cert_file, p.key_file) for p in issued)])

    return update
