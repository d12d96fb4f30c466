"""What dnscheck asks the running server: its STARTTLS certificate and its MTA-STS policy.

Both are seams (:class:`Probes`) so that unit tests give canned answers;
the real ones connect like a sending MTA would.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kittiwake.dns.resolver import Resolver
from kittiwake.mtasts import FetchResult, fetch_policy


@dataclass(frozen=True)
class ServedCertificate:
    """The leaf certificate an SMTP server presented after STARTTLS, or why there is none."""

    ip: str
    port: int
    leaf_der: bytes | None
    problem: str = ""


ProbeSMTP = Callable[[str, str, int], Awaitable[ServedCertificate]]  # (hostname, ip, port)
FetchPolicy = Callable[[str], Awaitable[FetchResult]]  # domain


@dataclass(frozen=True)
class Probes:
    smtp_certificate: ProbeSMTP
    mta_sts_policy: FetchPolicy


async def smtp_certificate(hostname: str, ip: str, port: int,
                           timeout: float = 20.0) -> ServedCertificate:
    """Connect to ``ip`` port ``port``, STARTTLS (RFC 3207) with SNI ``hostname``, and
    return the leaf certificate, unverified (DANE-EE does not use PKIX, RFC 7672 §3.1.1)."""
    from kittiwake.smtpclient import Client, SMTPClientError, TLSMode, unverified_context

    try:
        client = await Client.connect(ip, port, local_hostname=hostname, timeouts=timeout,
                                      tls=TLSMode.STARTTLS, tls_context=unverified_context(),
                                      tls_server_name=hostname)
    except SMTPClientError as exc:
        return ServedCertificate(ip, port, None, str(exc))
    leaf = client.tls.leaf_der if client.tls is not None else None
    await client.quit()
    return ServedCertificate(ip, port, leaf, "" if leaf else "no certificate after STARTTLS")


def default_probes(resolver: Resolver, ca_file: str | None = None) -> Probes:
    """Probes over the network: SMTP to the listener addresses, HTTPS to mta-sts.DOMAIN.

    ``ca_file``: extra CA certificates to trust for the policy's HTTPS (test CAs).
    """
    context = ssl.create_default_context(cafile=ca_file) if ca_file else None

    async def policy(domain: str) -> FetchResult:
        return await fetch_policy(domain, resolver=resolver, ssl_context=context, timeout=20)

    return Probes(smtp_certificate, policy)
