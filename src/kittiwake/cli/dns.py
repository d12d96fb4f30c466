"""``kittiwake dns lookup TYPE NAME``: one DNS lookup with its DNSSEC status."""

from __future__ import annotations

import click

from kittiwake.cli.common import UserError, make_resolver, print_json, run

TYPES = ["a", "aaaa", "mx", "txt", "ptr", "cname", "tlsa", "srv", "ns", "caa"]


@click.group(name="dns")
def dns_group() -> None:
    """DNS lookups as kittiwake sees them (honours KITTIWAKE_DNS)."""


@dns_group.command("lookup")
@click.argument("rdtype", metavar="TYPE", type=click.Choice(TYPES, case_sensitive=False))
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def lookup(ctx: click.Context, rdtype: str, name: str, as_json: bool) -> None:
    """Look up NAME (an IP address for ptr) and say whether DNSSEC vouched for it.

    Exit status: 0 records found, 1 user error, 2 NXDOMAIN or no records,
    3 temporary failure (SERVFAIL, timeout).
    """
    from kittiwake.dns import DNSTemporaryError, InvalidName

    resolver = make_resolver(ctx)
    try:
        answer = run(lambda: resolver.lookup(rdtype, name))
    except InvalidName as exc:
        raise UserError(str(exc)) from None
    except DNSTemporaryError as exc:
        if as_json:
            print_json(exc.to_json())
        else:
            click.echo(f"temporary error: {exc}", err=True)
        ctx.exit(3)
    if as_json:
        print_json(answer.to_json())
    else:
        dnssec = "DNSSEC-authentic" if answer.authentic else "not DNSSEC-authentic"
        head = f"{answer.rdtype} {answer.name}: {answer.status} ({dnssec})"
        if answer.cname_chain:
            head += " via CNAME " + " -> ".join(answer.cname_chain)
        click.echo(head)
        for record in answer.records:
            click.echo(f"  {record}")
        for ede in answer.extended_errors:
            click.echo(f"  {ede}")
    if not answer.records:
        ctx.exit(2)
