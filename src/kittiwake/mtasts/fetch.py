"""Fetching an MTA-STS policy over HTTPS (RFC 8461 §3.3).

``GET https://mta-sts.DOMAIN/.well-known/mta-sts.txt`` with a PKIX-valid
certificate for ``mta-sts.DOMAIN``, no redirects, status 200, media type
``text/plain``, a size limit and a timeout. Failures carry the TLSRPT result
type (RFC 8460 §4.3.2.2) so that reports can say what went wrong.

The HTTPS client itself is :mod:`kittiwake.mtasts.https` (aiohttp), imported
on the first fetch.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING

from kittiwake.dns import InvalidName, Resolver, to_ascii
from kittiwake.mtasts.result import FailureType, FetchResult

if TYPE_CHECKING:
    import aiohttp

__all__ = ["FETCH_TIMEOUT", "MAX_POLICY_SIZE", "WELL_KNOWN", "FailureType", "FetchResult",
           "fetch_policy", "policy_url"]

MAX_POLICY_SIZE = 64 * 1024  # RFC 8461 §3.3: senders may limit the size, e.g. 64 KiB
FETCH_TIMEOUT = 60.0  # RFC 8461 §3.3: a suggested timeout of 60 seconds
WELL_KNOWN = "/.well-known/mta-sts.txt"


def policy_url(domain: str) -> str:
    """``https://mta-sts.DOMAIN/.well-known/mta-sts.txt`` (RFC 8461 §3.3), A-labels."""
    return f"https://mta-sts.{to_ascii(domain).lower()}{WELL_KNOWN}"


async def fetch_policy(domain: str, session: aiohttp.ClientSession | None = None, *,
                       timeout: float = FETCH_TIMEOUT, max_size: int = MAX_POLICY_SIZE,
                       resolver: Resolver | None = None,
                       ssl_context: ssl.SSLContext | None = None) -> FetchResult:
    """Fetch and parse the policy of ``domain``. Never raises for network problems.

    Without ``session`` a temporary one is used: ``ssl_context`` (default the
    system trust store) and names resolved by ``resolver`` (default
    :func:`~kittiwake.dns.default_resolver`).
    """
    try:
        url = policy_url(domain)
    except InvalidName as exc:
        return FetchResult(domain, "", None, FailureType.STS_POLICY_FETCH_ERROR,
                           f"invalid domain: {exc}")
    from kittiwake.mtasts.https import get_policy, make_session

    own = session is None
    client = session if session is not None else make_session(ssl_context,
                                                              resolver=resolver)
    try:
        async with asyncio.timeout(timeout):
            return await get_policy(domain, url, client, max_size)
    except TimeoutError:
        return FetchResult(domain, url, None, FailureType.STS_POLICY_FETCH_ERROR,
                           f"fetching {url} timed out after {timeout:g} seconds")
    finally:
        if own:
            await client.close()


