"""The HTTPS content: MTA-STS policy, client autoconfiguration, Apple profiles.

:func:`content_app` is the :class:`aiohttp.web.Application` the HTTPS
listener (and the plain HTTP one when ``reverse_proxied``) serves. Requests
are routed by ``Host`` first, then by path, through one table
(:data:`ROUTES`): each route names the sites (kinds of host) it is served
on and its methods.

- ``mta-sts.DOMAIN``: GET ``/.well-known/mta-sts.txt``, the MTA-STS policy
  (RFC 8461 §3.3), route ``mta-sts``;
- ``autoconfig.DOMAIN``: GET ``/mail/config-v1.1.xml`` and
  ``/.well-known/autoconfig/mail/config-v1.1.xml``, Thunderbird autoconfig,
  route ``autoconfig``;
- ``autodiscover.DOMAIN``: POST ``/autodiscover/autodiscover.xml`` (any case),
  Outlook's autodiscover, route ``autodiscover``;
- ``DOMAIN`` itself: the ``.well-known`` autoconfig and the autodiscover path;
- the mail host name: GET ``/profile.mobileconfig?address=ADDRESS``, an Apple
  profile, route ``mobileconfig``; and the autodiscover path, where the
  ``_autodiscover._tcp.DOMAIN`` SRV record sends Outlook.

DOMAIN is any domain of domains.conf (read per request: a domain added while
running is served at once). Any other host or path is 404, another method
405 (with ``Allow``), HEAD is answered wherever GET is (headers only).
Paths are compared case-insensitively (Outlook varies the case of
``Autodiscover``; nothing else here cares).

Bodies are bounded by :attr:`HTTPLimits.max_body` (413 beyond), query
strings by :attr:`HTTPLimits.max_query` (400). Header sizes, keep-alive and
the access log are settings of the server, not the application: the
listener passes :func:`runner_options` to :class:`aiohttp.web.AppRunner`.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aiohttp import web

from kittiwake import log
from kittiwake.config.lookup import AccountRecipient, AddressIndex
from kittiwake.dns.names import domain_key
from kittiwake.http import autoconfig, autodiscover, mobileconfig
from kittiwake.http.context import HTTPContext
from kittiwake.http.metrics import PROFILES_REFUSED
from kittiwake.http.middleware import ROUTE_KEY, make_observe
from kittiwake.http.mtasts import PolicyUnavailable, published_policy
from kittiwake.http.ratelimit import RequestBudget

logger = log.get_logger("http")

XML = "application/xml"
CTX_KEY = web.AppKey("kittiwake_http_context", HTTPContext)
BUDGET_KEY = web.AppKey("kittiwake_profile_budget", RequestBudget)


class Site(StrEnum):
    """What a Host header names."""

    MTA_STS = "mta-sts"  # mta-sts.DOMAIN
    AUTOCONFIG = "autoconfig"  # autoconfig.DOMAIN
    AUTODISCOVER = "autodiscover"  # autodiscover.DOMAIN
    DOMAIN = "domain"  # DOMAIN itself
    MAIL_HOST = "mailhost"  # this listener's host name


@dataclass(frozen=True)
class SiteMatch:
    site: Site
    domain: str  # the domain of domains.conf (A-labels); the host name for MAIL_HOST


Handler = Callable[[web.Request, HTTPContext, SiteMatch], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    name: str  # the metrics label (kittiwake.http.metrics.ROUTES)
    path: str  # lower case
    sites: frozenset[Site]
    methods: frozenset[str]
    handler: Handler


def host_name(header: str) -> str | None:
    """The host of a Host header, without port or trailing dot; None for an IP literal."""
    host = header.strip()
    if not host or host.startswith("["):
        return None
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit():
        host = name
    host = host.rstrip(".")
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    return domain_key(host) if host else None


def sites_for(host: str, index: AddressIndex, hostname: str) -> list[SiteMatch]:
    """Every site ``host`` names (the mail host may also be a domain)."""
    found: list[SiteMatch] = []
    if host == domain_key(hostname):
        found.append(SiteMatch(Site.MAIL_HOST, host))
    if host in index.config.domains:
        found.append(SiteMatch(Site.DOMAIN, host))
    for site in (Site.MTA_STS, Site.AUTOCONFIG, Site.AUTODISCOVER):
        prefix = site.value + "."
        if host.startswith(prefix) and host[len(prefix):] in index.config.domains:
            found.append(SiteMatch(site, host[len(prefix):]))
    return found


def _text(status: int, text: str, **headers: str) -> web.Response:
    return web.Response(status=status, text=text + "\n", content_type="text/plain",
                        headers=headers)


def _address(value: str) -> tuple[str, str] | None:
    """``local@domain`` split, the domain in A-labels; None when it is no address."""
    local, at, domain = value.strip().rpartition("@")
    if not at or not local or not domain or any(c.isspace() or c in "<>" for c in value):
        return None
    try:
        key = domain_key(domain)
    except ValueError:
        return None
    return local, key


# -- handlers -------------------------------------------------------------------


async def serve_mta_sts(request: web.Request, ctx: HTTPContext,
                        match: SiteMatch) -> web.StreamResponse:
    """RFC 8461 §3.3: the policy as text/plain, 200, no redirects."""
    settings = ctx.lookup().config.domains[match.domain].mta_sts
    if settings is None:
        return _text(404, f"{match.domain} publishes no MTA-STS policy")
    try:
        published = published_policy(settings, ctx.mx_hosts)
    except PolicyUnavailable as exc:
        logger.warn("mta-sts policy not served", domain=match.domain, reason=str(exc))
        return _text(404, f"{match.domain} has no valid MTA-STS policy")
    return web.Response(text=published.text, content_type="text/plain",
                        headers={"Cache-Control": "no-cache", "ETag": f'"{published.id}"'})


async def serve_autoconfig(request: web.Request, ctx: HTTPContext,
                           match: SiteMatch) -> web.StreamResponse:
    """Thunderbird's config-v1.1.xml, with the ``emailaddress`` it asks for as login name."""
    index = ctx.lookup()
    domain = match.domain
    given = request.query.get("emailaddress", "").strip()
    if given:
        parts = _address(given)
        if parts is None:
            return _text(400, "emailaddress is not an email address")
        if parts[1] != domain:
            return _text(400, f"emailaddress is not an address of {domain}")
    display = index.config.domains[domain].description or domain
    body = autoconfig.client_config(ctx, domain, display, given or None)
    return web.Response(body=body, content_type=XML, charset="utf-8")


async def serve_autodiscover(request: web.Request, ctx: HTTPContext,
                             match: SiteMatch) -> web.StreamResponse:
    """Outlook's POX autodiscover: 400 for what is no request, 404 for foreign addresses."""
    if (request.content_length or 0) > ctx.limits.max_body:
        refused = _text(413, f"a request body is at most {ctx.limits.max_body} bytes")
        refused.force_close()  # do not read (or wait for) the rest of it
        return refused
    body = await request.read()  # bounded by client_max_size too (chunked bodies): 413
    try:
        asked = autodiscover.parse_request(body)
    except autodiscover.BadRequest as exc:
        return _text(400, f"bad autodiscover request: {exc}")
    if asked.response_schema and asked.response_schema != autodiscover.OUTLOOK_SCHEMA:
        return _text(400, "only the outlook response schema"
                          f" ({autodiscover.OUTLOOK_SCHEMA}) is served")
    parts = _address(asked.email_address)
    if parts is None:
        return _text(400, "EMailAddress is not an email address")
    index = ctx.lookup()
    if not index.is_local_domain(parts[1]):
        return _text(404, "not a domain of this server")
    answer = autodiscover.response(ctx, asked.email_address)
    return web.Response(body=answer, content_type=XML, charset="utf-8")


def _client_ip(request: web.Request, ctx: HTTPContext) -> str:
    remote = request.remote or ""
    forwarded = request.headers.get("X-Forwarded-For", "")
    if ctx.reverse_proxied and forwarded:
        try:
            local = ipaddress.ip_address(remote).is_loopback
        except ValueError:
            local = False
        if local:  # our own web server in front: its last hop is the client
            return forwarded.rsplit(",", 1)[-1].strip()
    return remote


async def serve_mobileconfig(request: web.Request, ctx: HTTPContext,
                             match: SiteMatch) -> web.StreamResponse:
    """An Apple profile for an address of an account; 404 for any other address."""
    budget = request.app[BUDGET_KEY]
    if not budget.take(_client_ip(request, ctx)):
        PROFILES_REFUSED.inc()
        return _text(429, "too many profile requests; try again in a minute",
                     **{"Retry-After": str(budget.retry_after())})
    given = (request.query.get("address") or request.query.get("emailaddress") or "").strip()
    if not given:
        return _text(400, "add ?address=YOU@DOMAIN to the URL")
    parts = _address(given)
    if parts is None:
        return _text(400, "address is not an email address")
    index = ctx.lookup()
    try:
        found = index.lookup(*parts)
    except ValueError:
        found = None
    # Only an account's own address: a catch-all would make every address "exist".
    if not isinstance(found, AccountRecipient) or found.address.startswith("@"):
        return _text(404, "no account has this address")
    account = index.config.accounts[found.account]
    body = mobileconfig.profile(ctx, found.address,
                                found.destination.full_name or account.full_name)
    if body is None:
        return _text(404, "this server offers no IMAP and submission service with TLS")
    filename = found.address.rpartition("@")[2] + ".mobileconfig"
    return web.Response(body=body, content_type=mobileconfig.CONTENT_TYPE, headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store"})


GET = frozenset({"GET", "HEAD"})
ROUTES: tuple[Route, ...] = (
    Route("mta-sts", "/.well-known/mta-sts.txt", frozenset({Site.MTA_STS}), GET,
          serve_mta_sts),
    Route("autoconfig", "/mail/config-v1.1.xml", frozenset({Site.AUTOCONFIG}), GET,
          serve_autoconfig),
    Route("autoconfig", "/.well-known/autoconfig/mail/config-v1.1.xml",
          frozenset({Site.AUTOCONFIG, Site.DOMAIN}), GET, serve_autoconfig),
    # The mail host too: the _autodiscover._tcp SRV record points Outlook there, whose
    # certificate it is (autodiscover.DOMAIN needs a certificate name of its own).
    Route("autodiscover", "/autodiscover/autodiscover.xml",
          frozenset({Site.AUTODISCOVER, Site.DOMAIN, Site.MAIL_HOST}), frozenset({"POST"}),
          serve_autodiscover),
    Route("mobileconfig", "/profile.mobileconfig", frozenset({Site.MAIL_HOST}), GET,
          serve_mobileconfig),
)


def _routes_by_path() -> dict[str, list[Route]]:
    table: dict[str, list[Route]] = {}
    for route in ROUTES:
        table.setdefault(route.path, []).append(route)
    return table


_BY_PATH = _routes_by_path()


async def dispatch(request: web.Request) -> web.StreamResponse:
    """Pick the route by Host and path, check method and query, run its handler."""
    ctx = request.app[CTX_KEY]
    # The Host header itself: aiohttp's request.host falls back to this machine's name.
    host = host_name(request.headers.get("Host", ""))
    matches = sites_for(host, ctx.lookup(), ctx.hostname) if host else []
    candidates = _BY_PATH.get(request.path.lower(), [])
    for route in candidates:
        match = next((m for m in matches if m.site in route.sites), None)
        if match is None:
            continue
        request[ROUTE_KEY] = route.name
        if request.method not in route.methods:
            allow = ", ".join(sorted(route.methods))
            return _text(405, f"{request.method} is not allowed here (allowed: {allow})",
                         Allow=allow)
        if len(request.query_string) > ctx.limits.max_query:
            return _text(400, "query string too long")
        return await route.handler(request, ctx, match)
    if not matches:
        return _text(404, "unknown host")
    return _text(404, "not found")


def content_app(ctx: HTTPContext) -> web.Application:
    """The application with every route of :data:`ROUTES`, for HTTPS (or proxied HTTP)."""
    app = web.Application(middlewares=[make_observe(ctx.clock)],
                          client_max_size=ctx.limits.max_body)
    app[CTX_KEY] = ctx
    app[BUDGET_KEY] = RequestBudget(ctx.limits.profile_requests_per_minute, ctx.clock)
    app.router.add_route("*", "/{path:.*}", dispatch)
    return app


class _ClientErrorsAtDebug(logging.Filter):
    """aiohttp logs a malformed request ("Error handling request", a request line
    too long, too many header fields) at error level with a traceback. That is
    the client's error, answered 400: it becomes one debug line, no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        if record.exc_info and record.exc_info[1] is not None:
            reason = str(record.exc_info[1]).replace("\n", " ").replace("%", "%%")
            record.msg = f"{record.msg}: {reason}"
        record.exc_info, record.exc_text = None, None
        return WIRE_LOGGER.isEnabledFor(logging.DEBUG)


# The stdlib logger aiohttp writes to: below the http package's, so its level follows.
WIRE_LOGGER = log.get_logger("http").logger.getChild("wire")
WIRE_LOGGER.addFilter(_ClientErrorsAtDebug())


def runner_options() -> dict[str, Any]:
    """Keyword arguments for :class:`aiohttp.web.AppRunner` serving :func:`content_app`.

    aiohttp's own access log is off (the middleware logs each request with its
    ids); request lines and header fields are bounded at 8 KiB, 100 fields; an
    idle keep-alive connection is closed after 15 seconds; after an answer that
    closes the connection (a refused body) unread input is drained for at most 2
    seconds (so the client sees the answer, not a reset). aiohttp's reports of
    malformed requests go to ``kittiwake.http.wire`` at debug level.
    """
    return {"access_log": None, "keepalive_timeout": 15.0, "max_line_size": 8190,
            "max_field_size": 8190, "max_headers": 100, "lingering_time": 2.0,
            "logger": WIRE_LOGGER}
