"""HTTP(S) content of the server: MTA-STS policy, autoconfig, autodiscover, Apple profiles.

:func:`content_app` builds the aiohttp application from an
:class:`HTTPContext` (:meth:`HTTPContext.from_config`); the listeners
(:mod:`kittiwake.http.listener`: port 443 with TLS, port 80 with ACME
http-01 and redirects, or proxied plain HTTP) serve it. The MTA-STS policy
and its TXT id come from :func:`published_policy` (with :func:`mx_hosts` of
the static config), which the CLI's DNS record commands use too::

    published_policy(domain.mta_sts, mx_hosts(config.static)).txt_record
    # 'v=STSv1; id=3f0c...'   for _mta-sts.DOMAIN TXT
"""

from kittiwake.http.app import ROUTES, content_app, runner_options
from kittiwake.http.context import (
    ClientEndpoint,
    HTTPContext,
    HTTPLimits,
    Protocol,
    Security,
    client_endpoints,
    mx_hosts,
)
from kittiwake.http.mtasts import PolicyUnavailable, PublishedPolicy, published_policy

__all__ = [
    "ROUTES", "ClientEndpoint", "HTTPContext", "HTTPLimits", "PolicyUnavailable", "Protocol",
    "PublishedPolicy", "Security", "client_endpoints", "content_app", "mx_hosts",
    "published_policy", "runner_options",
]
