"""``[reports]`` in kittiwake.conf: the reports this server sends about its own mail.

``[reports.tlsrpt]``: daily TLS reports (RFC 8460) about outgoing deliveries.
"""

from __future__ import annotations

from pydantic import Field

from kittiwake.config.base import DomainName, Section


class TLSRPTSending(Section):
    """Daily SMTP TLS reports (RFC 8460 §4) to the domains we delivered to."""

    send: bool = True
    """Send one report a day (about the previous UTC day) to every recipient domain
    (and DANE MX host) that publishes a TLSRPT record (_smtp._tls TXT)."""

    from_domain: DomainName | None = None
    """Domain of the reports' From address (postmaster@DOMAIN), a domain in domains.conf
    with DKIM signing (the reports are DKIM-signed with its keys). Empty: the host
    name's domain if it signs, else the first domain that signs."""

    organization: str = ""
    """The report's organization-name; empty: the host name."""

    https_timeout_seconds: float = Field(30.0, gt=0, le=300)
    """Timeout of a report POST to an https: rua (RFC 8460 §5.4); a failed POST is
    logged and tried again at the next daily run."""


class ReportsConfig(Section):
    """Reports this server sends."""

    tlsrpt: TLSRPTSending = TLSRPTSending()
    """SMTP TLS reports (RFC 8460)."""
