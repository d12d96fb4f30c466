"""Configuration: ``kittiwake.conf`` (static) and ``domains.conf`` (dynamic), per DESIGN.md."""

from kittiwake.config.domains import Account, Alias, Destination, Domain, DomainsConfig, Ruleset
from kittiwake.config.load import (
    DOMAINS_FILE,
    STATIC_FILE,
    Config,
    ConfigError,
    atomic_write,
    load,
    load_domains,
    load_static,
    write_domains,
    write_static,
)
from kittiwake.config.static import Listener, StaticConfig, enabled_services

__all__ = [
    "DOMAINS_FILE", "STATIC_FILE", "Account", "Alias", "Config", "ConfigError", "Destination",
    "Domain", "DomainsConfig", "Listener", "Ruleset", "StaticConfig", "atomic_write",
    "enabled_services", "load", "load_domains", "load_static", "write_domains", "write_static",
]
