"""Setting up a real server: the DNS records a domain needs, and ``kittiwake quickstart``.

- :mod:`.facts`: what the config says about one domain (host name, public
  IPs, DKIM public keys, host-key TLSA data, ACME issuer), read from the
  config files once.
- :mod:`.records`: pure: facts in, typed :class:`~.records.DNSRecord` values
  out, rendered as a zone-file snippet, as words and as JSON. Used by
  ``quickstart``, ``config dnsrecords`` and ``config dnscheck``.
- :mod:`.hostkeys`: the pre-generated ACME host private keys (ECDSA P-256,
  RSA-2048) whose TLSA records stay valid across renewals (RFC 7671 §8.1).
- :mod:`.quickstart`: writes the config, account, keys and systemd unit.
"""

from kittiwake.setup.facts import DomainFacts, FactsError, domain_facts
from kittiwake.setup.records import (
    DNSRecord,
    Section,
    records_for,
    render_json,
    render_words,
    render_zone,
)

__all__ = [
    "DNSRecord", "DomainFacts", "FactsError", "Section", "domain_facts", "records_for",
    "render_json", "render_words", "render_zone",
]
