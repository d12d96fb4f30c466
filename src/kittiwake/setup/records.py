"""The DNS records a domain served by kittiwake needs: facts in, typed records out.

Pure: :func:`records_for` takes :class:`~kittiwake.setup.facts.DomainFacts`
and returns :class:`DNSRecord` values; :func:`render_zone`,
:func:`render_words` and :func:`render_json` present them. ``quickstart``
prints them, ``config dnsrecords`` prints them for an existing domain and
``config dnscheck`` checks the published DNS against them.

The records, with the standard each follows:

- MX (RFC 5321 §5.1) to the host, A/AAAA of the host.
- SPF (RFC 7208): the domain authorises exactly the sending addresses
  (``ip4:``/``ip6:``, no DNS lookups) and ends in ``-all``; the host gets
  ``v=spf1 a -all`` for the HELO identity (RFC 7208 §2.3), used by DSNs.
- DKIM (RFC 6376 §3.6.2.1, RFC 8463): one TXT per selector.
- DMARC (RFC 7489 §6.3) with ``rua`` to the domain's report address.
- MTA-STS (RFC 8461 §3.1) ``_mta-sts`` TXT, and the ``mta-sts.`` host that
  serves the policy over HTTPS (§3.3).
- TLSRPT (RFC 8460 §3) at ``_smtp._tls``.
- TLSA ``3 1 1`` at ``_25._tcp.HOST`` (RFC 7672 §3.1, RFC 7671 §10.1.2) for
  every pre-generated host key, so renewals keep the records valid.
- CAA (RFC 8659 §4) for the ACME issuer, with ``accounturi`` (RFC 8657 §3)
  once the account exists.
- Client configuration: autoconfig/autodiscover hosts, SRV records of
  RFC 6186 §3 (``_submission``, ``_imap``) and RFC 8314 §5.1
  (``_submissions``, ``_imaps``), with ``.`` targets for POP3 to say there is
  none (RFC 2782: the service is decidedly not available).
- PTR (reverse DNS) of every address, to ask the hosting provider for.
"""

from __future__ import annotations

import enum
import ipaddress
import json
from dataclasses import dataclass

from kittiwake.dns.types import RRType
from kittiwake.setup.facts import DomainFacts

DMARC_POLICY = "reject"
DMARC_REPORT_SIZE = "10m"  # RFC 7489 §6.2: a size limit on reports, as "!10m"


class Section(enum.StrEnum):
    """Groups of records, in the order they are printed."""

    MAIL = "receiving mail"
    AUTHENTICATION = "sender authentication (SPF, DKIM, DMARC)"
    TRANSPORT = "transport security (MTA-STS, TLS reports, DANE, CAA)"
    CLIENTS = "mail client set-up (autoconfig, SRV)"
    REVERSE = "reverse DNS (ask your hosting provider)"


@dataclass(frozen=True)
class DNSRecord:
    """One record to publish.

    ``name`` is the owner name without the trailing dot; ``value`` the rdata
    in presentation form, except for TXT where it is the text itself (the
    zone rendering quotes and splits it into strings of 255 octets, RFC 1035
    §3.3.14). ``purpose`` says in words why it is there.
    """

    section: Section
    name: str
    rtype: RRType
    value: str
    purpose: str
    check: str  # the dnscheck check that verifies it

    def rdata(self) -> str:
        """The rdata as it appears in a zone file."""
        return quote_txt(self.value) if self.rtype is RRType.TXT else self.value

    def zone_line(self, ttl: int = 3600) -> str:
        return f"{self.name}.\t{ttl}\tIN\t{self.rtype.value}\t{self.rdata()}"

    def to_json(self) -> dict[str, str]:
        return {"section": self.section.name.lower(), "name": self.name,
                "type": self.rtype.value, "value": self.value, "rdata": self.rdata(),
                "purpose": self.purpose, "check": self.check}


def quote_txt(text: str) -> str:
    """TXT rdata: quoted strings of at most 255 octets, '"' and '\\' escaped."""
    data = text.encode("utf-8")
    chunks = [data[i:i + 255] for i in range(0, len(data), 255)] or [b""]
    out = []
    for chunk in chunks:
        body = chunk.decode("utf-8", "replace").replace("\\", "\\\\").replace('"', '\\"')
        out.append(f'"{body}"')
    return " ".join(out)


def _abs(name: str) -> str:
    return name.rstrip(".") + "."


def _below(name: str, domain: str) -> bool:
    return name == domain or name.endswith("." + domain)


def spf_value(facts: DomainFacts) -> str:
    """The domain's SPF record: every sending address, then ``-all`` (RFC 7208 §5.1, §5.6).

    Explicit addresses need no DNS lookups, so the 10-lookup limit of
    §4.6.4 is far away; ``mx`` is used only when no address is known.
    """
    terms = ["v=spf1"]
    for ip in facts.all_sending_ips:
        address = ipaddress.ip_address(ip)
        terms.append(f"ip{address.version}:{address}")
    if not facts.all_sending_ips:
        terms.append("mx")
    terms.append("-all")
    return " ".join(terms)


def dmarc_value(facts: DomainFacts) -> str:
    parts = ["v=DMARC1", f"p={DMARC_POLICY}"]
    if facts.dmarc_rua:
        parts.append(f"rua=mailto:{facts.dmarc_rua}!{DMARC_REPORT_SIZE}")
    return "; ".join(parts)


def tlsrpt_value(facts: DomainFacts) -> str:
    return f"v=TLSRPTv1; rua=mailto:{facts.tlsrpt_rua}"


def caa_value(facts: DomainFacts, issuer: str) -> str:
    """``0 issue "ISSUER[; accounturi=URI]"`` (RFC 8659 §4.2, RFC 8657 §3)."""
    extra = f"; accounturi={facts.acme_account_uri}" if facts.acme_account_uri else ""
    return f'0 issue "{issuer}{extra}"'


def records_for(facts: DomainFacts) -> list[DNSRecord]:
    """Every record to publish for the domain, in print order."""
    d, host = facts.domain, facts.hostname
    out: list[DNSRecord] = []

    def add(section: Section, name: str, rtype: RRType, value: str, purpose: str,
            check: str) -> None:
        out.append(DNSRecord(section, name, rtype, value, purpose, check))

    m, a, t, c = Section.MAIL, Section.AUTHENTICATION, Section.TRANSPORT, Section.CLIENTS
    add(m, d, RRType.MX, f"10 {_abs(host)}", f"mail for {d} is delivered to {host}", "mx")
    for ip in facts.ips:
        kind = RRType.AAAA if ipaddress.ip_address(ip).version == 6 else RRType.A
        add(m, host, kind, ip, f"{host} is at {ip}", "host-address")

    add(a, d, RRType.TXT, spf_value(facts),
        f"SPF: only these addresses may send mail from {d}; everything else fails", "spf")
    if host != d:
        add(a, host, RRType.TXT, "v=spf1 a -all",
            f"SPF for the HELO name {host}, used by bounces (empty MAIL FROM)", "spf")
    for key in facts.dkim:
        what = "signs outgoing mail" if key.signing else "published, not signing"
        add(a, f"{key.selector}._domainkey.{d}", RRType.TXT, key.record,
            f"DKIM public key of selector {key.selector} ({what})", "dkim")
    rua = f"; aggregate reports go to {facts.dmarc_rua}" if facts.dmarc_rua else ""
    add(a, f"_dmarc.{d}", RRType.TXT, dmarc_value(facts),
        f"DMARC: receivers reject mail from {d} that passes neither SPF nor DKIM{rua}",
        "dmarc")

    if facts.mta_sts is not None:
        add(t, f"_mta-sts.{d}", RRType.TXT, f"v=STSv1; id={facts.mta_sts.policy_id}",
            f"MTA-STS: {d} has a policy (mode {facts.mta_sts.mode}); change the id when"
            " the policy changes", "mta-sts")
        add(t, f"mta-sts.{d}", RRType.CNAME, _abs(host),
            f"serves the MTA-STS policy at https://mta-sts.{d}/.well-known/mta-sts.txt",
            "mta-sts-policy")
    add(t, f"_smtp._tls.{d}", RRType.TXT, tlsrpt_value(facts),
        f"TLS reports (RFC 8460) about delivery to {d} go to {facts.tlsrpt_rua}", "tlsrpt")
    if facts.host_keys and host != d:
        # RFC 8460 §3: for DANE the policy domain is the MX host, so senders look for
        # the TLSRPT record of the host name to report DANE results.
        add(t, f"_smtp._tls.{host}", RRType.TXT, tlsrpt_value(facts),
            f"TLS reports (RFC 8460) about DANE for {host} go to {facts.tlsrpt_rua}",
            "tlsrpt")
    for key in facts.host_keys:
        add(t, f"_25._tcp.{host}", RRType.TLSA, f"3 1 1 {key.tlsa_data}",
            f"DANE: senders require TLS with the {key.description} host key ({key.file});"
            " renewed certificates keep the key", "tlsa")
    caa_names = [d] + ([host] if not _below(host, d) else [])
    account = " and only for kittiwake's ACME account" if facts.acme_account_uri else ""
    for name in caa_names:
        for issuer in facts.caa_issuers:
            add(t, name, RRType.CAA, caa_value(facts, issuer),
                f"CAA: only {issuer} may issue certificates for {name}{account}", "caa")

    for prefix in ("autoconfig", "autodiscover"):
        if f"{prefix}.{d}" != host:
            add(c, f"{prefix}.{d}", RRType.CNAME, _abs(host),
                f"mail clients ({'Thunderbird' if prefix == 'autoconfig' else 'Outlook'})"
                " find their settings here", "clients")
    srv = (("_submissions._tcp", "submissions", 0), ("_submission._tcp", "submission", 10),
           ("_imaps._tcp", "imaps", 0), ("_imap._tcp", "imap", 10))
    for name, service, priority in srv:
        port = facts.services.get(service)
        if port:
            add(c, f"{name}.{d}", RRType.SRV, f"{priority} 1 {port} {_abs(host)}",
                f"mail clients find {service} at {host} port {port}", "clients")
        else:
            add(c, f"{name}.{d}", RRType.SRV, "0 0 0 .", f"there is no {service} service",
                "clients")
    for name in ("_pop3._tcp", "_pop3s._tcp"):
        add(c, f"{name}.{d}", RRType.SRV, "0 0 0 .", "there is no POP3 service", "clients")
    if "https" in facts.services or facts.web_backend:
        add(c, f"_autodiscover._tcp.{d}", RRType.SRV, f"0 1 443 {_abs(host)}",
            "Outlook finds its autodiscover service here", "clients")

    for ip in facts.ips:
        add(Section.REVERSE, ipaddress.ip_address(ip).reverse_pointer, RRType.PTR, _abs(host),
            f"reverse DNS of {ip} must be {host} (receivers check forward-confirmed"
            " reverse DNS); set it at your hosting provider", "reverse-dns")
    return out


def render_zone(records: list[DNSRecord], facts: DomainFacts, ttl: int = 3600) -> str:
    """The records as a zone-file snippet, grouped by section with comments."""
    lines = [f"; DNS records for {facts.domain} (kittiwake)", ";"]
    for section in Section:
        group = [r for r in records if r.section is section]
        if not group:
            continue
        lines.append(f"; {section.value}")
        if section is Section.REVERSE:
            lines.append("; (not in your zone: the owner of the address block publishes"
                         " these)")
        lines += [r.zone_line(ttl) for r in group]
        lines.append("")
    if facts.listens_on_any and not facts.ips:
        lines.append(f"; kittiwake listens on all addresses: add A/AAAA records for"
                     f" {facts.hostname} with its public IP addresses")
    if not facts.caa_issuers and facts.acme_name:
        lines.append(f"; no CAA record: the CAA issuer name of [acme.{facts.acme_name}] is not"
                     " known; set issuer_domain_names in kittiwake.conf")
    return "\n".join(lines).rstrip() + "\n"


def render_words(records: list[DNSRecord], facts: DomainFacts) -> str:
    """The records explained, one paragraph per section, one line per record."""
    lines: list[str] = []
    for section in Section:
        group = [r for r in records if r.section is section]
        if not group:
            continue
        lines.append(f"{section.value[0].upper()}{section.value[1:]}:")
        for r in group:
            lines.append(f"  - {r.rtype.value} record at {r.name}: {r.rdata()}")
            lines.append(f"    ({r.purpose})")
        lines.append("")
    if facts.acme_name and not facts.acme_account_uri and facts.caa_issuers:
        lines.append("Once the ACME account exists (at the first start), run `kittiwake"
                     f" config dnsrecords {facts.domain}` again: the CAA records then name"
                     " the account (accounturi), so no other account can get certificates.")
    return "\n".join(lines).rstrip() + "\n"


def render_json(records: list[DNSRecord], facts: DomainFacts) -> str:
    """The records as one JSON document, for scripts and DNS provider APIs."""
    return json.dumps({"domain": facts.domain, "hostname": facts.hostname,
                       "records": [r.to_json() for r in records]}, indent=2)
