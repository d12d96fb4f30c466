"""Choosing the transport for an outgoing delivery attempt from the configured routes.

For every attempt the routes are evaluated in this order: the sending account's
routes, then the routes of the sender's domain (the MAIL FROM domain's
``Domain.routes``), then the global routes in domains.conf. The first route
whose conditions match decides; no matching route, or a route with an empty
transport, means direct delivery to the recipient domain's MX hosts
(RFC 5321 §5.1). Domains are compared as lower-case A-labels (IDNA 2008,
RFC 5891), so a route for "bücher.example" matches "xn--bcher-kva.example".

    selected = select_transport(static, domains, account="alice",
                                from_domain="example.org", to_domain="example.com",
                                attempts=recipient.attempts)
    selected.transport.kind   # "direct", "smtp", "submission", ...
    selected.route            # "account alice route 2", for the log
"""

from __future__ import annotations

from dataclasses import dataclass

from kittiwake.config.domains import DomainsConfig
from kittiwake.config.static import StaticConfig
from kittiwake.config.transports import DIRECT, Kind, Route, Transport
from kittiwake.dns.names import domain_key

DIRECT_NAME = "direct"
"""``Selected.name`` when no configured transport is used."""


class RoutingError(Exception):
    """A matching route names a transport that kittiwake.conf does not define.

    Only possible when domains.conf was reloaded with a route the running static
    configuration lacks; treat as a temporary failure (the admin can fix it).
    """


@dataclass(frozen=True, slots=True)
class Selected:
    """The outcome of route selection for one delivery attempt."""

    name: str
    """Transport name from kittiwake.conf, or "direct" for direct delivery by default."""

    transport: Transport
    """The transport settings; ``transport.kind`` says how to send."""

    route: str
    """Which route matched, for logs: "account alice route 2", "domain example.org
    route 1", "global route 1"; "" when none matched."""

    @property
    def kind(self) -> Kind:
        return self.transport.kind

    def __str__(self) -> str:
        via = self.route or "no matching route"
        return f"transport {self.name} ({self.kind}) by {via}"


def normalize_domain(domain: str) -> str:
    """A domain in the form routes are compared in: lower-case A-labels, no trailing dot.

    Anything that is not a valid domain (an address literal, garbage from the
    network) is only lower-cased; it then matches only routes without that
    domain condition. See :func:`kittiwake.dns.names.domain_key`.
    """
    return domain_key(domain)


def select_transport(static: StaticConfig, domains: DomainsConfig, *, account: str | None,
                     from_domain: str, to_domain: str, attempts: int) -> Selected:
    """Pick the transport for one delivery attempt.

    ``account`` is the sending account (None for mail not sent by an account,
    e.g. forwarded or system mail); ``from_domain`` the MAIL FROM domain ("" for
    the null reverse-path); ``to_domain`` the recipient domain; ``attempts`` the
    number of delivery attempts already made (0 for the first attempt, like
    the queue's ``Recipient.attempts``). Raises :class:`RoutingError` when the
    matching route names an unknown transport.
    """
    sender = normalize_domain(from_domain) if from_domain else ""
    recipient = normalize_domain(to_domain)
    for label, routes in _route_lists(domains, account, sender):
        for i, route in enumerate(routes, start=1):
            if not route.matches(sender, recipient, attempts):
                continue
            where = f"{label}route {i}"
            if not route.transport:
                return Selected(DIRECT_NAME, DIRECT, where)
            transport = static.transports.get(route.transport)
            if transport is None:
                known = ", ".join(sorted(static.transports)) or "none"
                raise RoutingError(f"{where}: transport {route.transport!r} is not defined in"
                                   f" kittiwake.conf (known: {known})")
            return Selected(route.transport, transport, where)
    return Selected(DIRECT_NAME, DIRECT, "")


def _route_lists(domains: DomainsConfig, account: str | None,
                 sender: str) -> list[tuple[str, list[Route]]]:
    lists: list[tuple[str, list[Route]]] = []
    if account is not None and account in domains.accounts:
        lists.append((f"account {account} ", domains.accounts[account].routes))
    if sender and sender in domains.domains:
        lists.append((f"domain {sender} ", domains.domains[sender].routes))
    lists.append(("global ", domains.routes))
    return lists
