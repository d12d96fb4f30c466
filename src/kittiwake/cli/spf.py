"""``kittiwake spf check`` and ``kittiwake spf lookup``: SPF as kittiwake sees it (RFC 7208).

Tests inject a resolver through the root context object,
``CliRunner().invoke(cli, [...], obj={"resolver": MockResolver()})``, or by
replacing :func:`resolver_for`.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import click

from kittiwake.cli.common import UserError, make_resolver, print_json, run


def resolver_for(ctx: click.Context) -> Any:
    """The resolver for a command: one injected in ``ctx.obj["resolver"]`` (tests),
    else :func:`kittiwake.cli.common.make_resolver` (KITTIWAKE_DNS, resolv.conf)."""
    state = ctx.find_root().obj or {}
    injected = state.get("resolver") if isinstance(state, dict) else None
    return injected if injected is not None else make_resolver(ctx)


def _dnssec(authentic: bool) -> str:
    return "DNSSEC-authentic" if authentic else "not DNSSEC-authentic"


@click.group(name="spf")
def spf_group() -> None:
    """SPF checks and record lookups (RFC 7208; honours KITTIWAKE_DNS)."""


@spf_group.command("check")
@click.option("--ip", "ip", required=True, help="IP address of the SMTP client.")
@click.option("--mailfrom", default=None, metavar="ADDR",
              help="MAIL FROM address; empty or absent checks the HELO identity.")
@click.option("--helo", default=None, metavar="NAME", help="HELO/EHLO name of the client.")
@click.option("--receiver", default="unknown", show_default=True, metavar="NAME",
              help="Host name of the checking server, for %{r} and Received-SPF.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def check_command(ctx: click.Context, ip: str, mailfrom: str | None, helo: str | None,
                  receiver: str, as_json: bool) -> None:
    """Check whether IP may send mail for the MAIL FROM (or HELO) domain.

    Exit status 0 whatever the SPF result; 1 for a usage error.
    """
    from kittiwake.spf import verify

    try:
        ipaddress.ip_address(ip.strip())
    except ValueError:
        raise UserError(f"--ip {ip!r} is not an IPv4 or IPv6 address") from None
    if not (mailfrom or "").strip() and not (helo or "").strip():
        raise UserError("give --mailfrom ADDR or --helo NAME (or both)")
    for option, value in (("--mailfrom", mailfrom), ("--helo", helo)):
        if value and any(ord(c) < 0x20 or c == "\x7f" for c in value):
            raise UserError(f"{option} contains control characters")
    resolver = resolver_for(ctx)
    result = run(lambda: verify(resolver, ip.strip(), mailfrom, helo, receiver=receiver))
    if as_json:
        print_json(result.to_json())
        return
    click.echo(f"{result.status} ({result.identity} identity, domain {result.domain or '-'},"
               f" {_dnssec(result.authentic)})")
    if result.record:
        click.echo(f"  record: {result.record}")
    if result.mechanism:
        click.echo(f"  mechanism: {result.mechanism}")
    if result.explanation:
        click.echo(f"  explanation: {result.explanation}")
    if result.problem:
        click.echo(f"  problem: {result.problem}")
    click.echo(f"  lookups: {result.lookups} DNS-querying terms, {result.void_lookups} void")
    click.echo(f"Received-SPF: {result.received_spf()}")


@spf_group.command("lookup")
@click.argument("domain")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def lookup_command(ctx: click.Context, domain: str, as_json: bool) -> None:
    """Show the SPF record of DOMAIN, its parsed terms, and its DNSSEC status.

    Exit status: 0 a valid record, 1 usage error, 2 no record or an invalid one
    (none/permerror), 3 temporary DNS failure.
    """
    from kittiwake.spf import Mechanism, Status, domain_problem, lookup_record

    name = domain.strip()
    problem = domain_problem(name[:-1] if name.endswith(".") else name)
    if problem:
        raise UserError(problem)
    resolver = resolver_for(ctx)
    found = run(lambda: lookup_record(resolver, name))
    if as_json:
        print_json(found.to_json())
    else:
        status = "found" if found.status is None else str(found.status)
        click.echo(f"{found.domain}: {status} ({_dnssec(found.authentic)})")
        if found.text:
            click.echo(f"  record: {found.text}")
        if found.problem:
            click.echo(f"  problem: {found.problem}")
        if found.record:
            for term in found.record.terms:
                if isinstance(term, Mechanism):
                    arg = (term.domain_spec.text if term.domain_spec is not None
                           else str(term.network) if term.network is not None else "")
                    if term.kind in ("a", "mx") and (term.ip4_cidr, term.ip6_cidr) != (32, 128):
                        arg += f" /{term.ip4_cidr} //{term.ip6_cidr}"
                    click.echo(f"  {term.qualifier.status:<9} {term.kind:<8} {arg}".rstrip())
                else:
                    known = "" if term.known else "  (unknown modifier, ignored)"
                    click.echo(f"  modifier  {term.name}={term.value.text}{known}")
            click.echo(f"  DNS-querying terms here: {found.record.dns_terms} (limit 10 in all)")
    if found.status is Status.TEMPERROR:
        ctx.exit(3)
    if found.status is not None:
        ctx.exit(2)
