"""``kittiwake mtasts lookup``: a domain's MTA-STS record and policy, fetched live (RFC 8461).

Nothing is cached: this shows what the domain publishes right now. Tests
inject a resolver with ``obj={"resolver": ...}`` and replace :func:`fetch`.
"""

from __future__ import annotations

from typing import Any

import click

from kittiwake.cli.common import UserError, make_resolver, print_json, run


def resolver_for(ctx: click.Context) -> Any:
    """An injected ``ctx.obj["resolver"]`` (tests), else KITTIWAKE_DNS / resolv.conf."""
    state = ctx.find_root().obj or {}
    injected = state.get("resolver") if isinstance(state, dict) else None
    return injected if injected is not None else make_resolver(ctx)


async def fetch(domain: str, resolver: Any = None) -> Any:
    """Fetch the policy with the system trust store (replaced in tests).

    ``mta-sts.DOMAIN`` is resolved by ``resolver``, the same one that found
    the TXT record (KITTIWAKE_DNS, config), not by the system resolver.
    """
    from kittiwake.mtasts import fetch_policy

    return await fetch_policy(domain, timeout=30.0, resolver=resolver)


def _duration(seconds: int) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} seconds"


@click.group(name="mtasts")
def mtasts_group() -> None:
    """MTA-STS record and policy lookups (RFC 8461; honours KITTIWAKE_DNS)."""


@mtasts_group.command("lookup")
@click.argument("domain")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def lookup_command(ctx: click.Context, domain: str, as_json: bool) -> None:
    """Show the _mta-sts TXT record of DOMAIN and fetch its policy over HTTPS.

    Exit status: 0 a valid policy, 1 usage error, 2 no record or no valid
    policy, 3 temporary DNS failure.
    """
    from kittiwake.dns import InvalidName, to_ascii
    from kittiwake.mtasts import lookup_record

    try:
        name = to_ascii(domain).lower()
    except InvalidName as exc:
        raise UserError(str(exc)) from None
    resolver = resolver_for(ctx)

    async def body() -> tuple[Any, Any]:
        found = await lookup_record(resolver, name)
        fetched = await fetch(name, resolver) if found.record is not None else None
        return found, fetched

    found, fetched = run(body)
    if as_json:
        print_json({"domain": name, "record": found.to_json(),
                    "policy": fetched.to_json() if fetched else None})
    else:
        dnssec = "DNSSEC-authentic" if found.authentic else "not DNSSEC-authentic"
        if found.record is not None:
            click.echo(f"_mta-sts.{name}: {found.record} ({dnssec})")
        elif found.temporary:
            click.echo(f"_mta-sts.{name}: unknown, {found.reason}")
        else:
            click.echo(f"_mta-sts.{name}: no MTA-STS record: {found.reason} ({dnssec})")
        if fetched is not None and fetched.policy is not None:
            policy = fetched.policy
            click.echo(f"policy from {fetched.url}:")
            click.echo(f"  mode: {policy.mode}")
            click.echo(f"  max_age: {policy.max_age} ({_duration(policy.max_age)})")
            for mx in policy.mx:
                click.echo(f"  mx: {mx}")
        elif fetched is not None:
            click.echo(f"no valid policy ({fetched.failure}): {fetched.reason}")
    if found.temporary:
        ctx.exit(3)
    if fetched is None or fetched.policy is None:
        ctx.exit(2)
