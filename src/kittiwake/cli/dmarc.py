"""``kittiwake dmarc ...``: DMARC policy lookups (RFC 7489 §6.6.3).

Tests inject a resolver through the root context object:
``CliRunner().invoke(cli, [...], obj={"resolver": MockResolver()})``.
"""

from __future__ import annotations

from typing import Any

import click

from kittiwake.cli.common import UserError, make_resolver, print_json, run


def resolver_for(ctx: click.Context) -> Any:
    """The resolver for a command: one injected in ``ctx.obj["resolver"]`` (tests),
    else :func:`kittiwake.cli.common.make_resolver`."""
    state = ctx.find_root().obj or {}
    injected = state.get("resolver") if isinstance(state, dict) else None
    return injected if injected is not None else make_resolver(ctx)


@click.group(name="dmarc")
def dmarc_group() -> None:
    """DMARC policies as kittiwake sees them (honours KITTIWAKE_DNS)."""


@dmarc_group.command("lookup")
@click.argument("domain")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def lookup_command(ctx: click.Context, domain: str, as_json: bool) -> None:
    """Find the DMARC policy that applies to mail From DOMAIN (or an address).

    Looks up _dmarc.DOMAIN, then _dmarc at the organizational domain.
    Exit status: 0 policy found, 1 user error, 2 no usable policy (none, or
    an invalid record), 3 temporary DNS failure.
    """
    from kittiwake.dmarc import LookupStatus, lookup
    from kittiwake.dns import InvalidName, to_ascii

    name = domain.rsplit("@", 1)[-1]
    try:
        to_ascii(name)
    except InvalidName as exc:
        raise UserError(str(exc)) from None
    resolver = resolver_for(ctx)
    found = run(lambda: lookup(resolver, name))

    if as_json:
        print_json(found.to_json())
    else:
        dnssec = "DNSSEC-authentic" if found.authentic else "not DNSSEC-authentic"
        org = f" (organizational domain {found.org_domain})" \
            if found.org_domain and found.org_domain != found.domain else ""
        click.echo(f"{found.domain}{org}: {found.status} ({dnssec})")
        if found.policy_domain and found.record is not None:
            click.echo(f"  record at _dmarc.{found.policy_domain}: {found.record}")
        if found.reason:
            click.echo(f"  {found.reason}")
        policy = found.policy
        if policy is not None:
            applies = policy.applicable(found.subdomain)
            sp = policy.subdomain_policy or f"{policy.policy} (from p)"
            click.echo(f"  policy for {found.domain}: {applies}")
            click.echo(f"  p={policy.policy} sp={sp} pct={policy.percentage}"
                       f" adkim={policy.adkim} aspf={policy.aspf}")
            for label, uris in (("rua", policy.aggregate_uris), ("ruf", policy.failure_uris)):
                if uris:
                    click.echo(f"  {label}: " + ", ".join(str(u) for u in uris))
            for warning in policy.warnings:
                click.echo(f"  warning: {warning}")
    if found.status is LookupStatus.TEMPERROR:
        ctx.exit(3)
    if found.status is not LookupStatus.FOUND:
        ctx.exit(2)


@dmarc_group.command("verify")
@click.option("--ip", required=True, help="IP address the message came from.")
@click.option("--mailfrom", required=True, help="SMTP MAIL FROM address ('' for none).")
@click.option("--helo", required=True, help="EHLO/HELO name of the sending server.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.argument("file", required=False)
@click.pass_context
def verify_command(ctx: click.Context, ip: str, mailfrom: str, helo: str, as_json: bool,
                   file: str | None) -> None:
    """Run SPF, DKIM and DMARC on a message (FILE or stdin) as the MX would.

    Exit status: 0 DMARC pass, 1 user error, 2 fail or none, 3 temperror.
    """
    import ipaddress

    from kittiwake import dkim, dmarc, spf
    from kittiwake.cli.common import UserError, print_json, read_input, run

    try:
        ipaddress.ip_address(ip)
    except ValueError:
        raise UserError(f"--ip {ip!r}: not an IP address") from None
    data = read_input(file)
    resolver = resolver_for(ctx)

    async def check() -> tuple[Any, list[Any], Any, Any]:
        import asyncio

        spf_result, dkim_results = await asyncio.gather(
            spf.verify(resolver, ip, mailfrom, helo), dkim.verify(resolver, data))
        author = dmarc.from_domain(data)
        result = None
        if author.ok and author.domain:
            result = await dmarc.verify(resolver, author.domain, spf_result, dkim_results)
        return spf_result, dkim_results, author, result

    spf_result, dkim_results, author, result = run(check)
    if result is None:
        out = {"result": author.dmarc_status() or "none", "domain": author.domain,
               "policy": None, "spf_aligned": False, "dkim_aligned": False,
               "authentic": False, "reason": author.detail}
    else:
        out = {"result": str(result.status), "domain": result.domain,
               "policy": str(result.policy) if result.policy else None,
               "spf_aligned": result.spf_aligned, "dkim_aligned": result.dkim_aligned,
               "authentic": result.authentic, "reject": result.reject,
               "reason": result.reason}
    out["spf"] = {"result": str(spf_result.status), "domain": spf_result.domain}
    out["dkim"] = [{"result": str(d.status), "domain": d.domain} for d in dkim_results]
    if as_json:
        print_json(out)
    else:
        click.echo(f"dmarc={out['result']} domain={out['domain']} policy={out['policy']}"
                   f" spf_aligned={'yes' if out['spf_aligned'] else 'no'}"
                   f" dkim_aligned={'yes' if out['dkim_aligned'] else 'no'}"
                   f" dnssec={'yes' if out['authentic'] else 'no'}")
        click.echo(f"  spf={out['spf']['result']} ({out['spf']['domain']})")
        for d in out["dkim"]:
            click.echo(f"  dkim={d['result']} ({d['domain']})")
        if out.get("reason"):
            click.echo(f"  reason: {out['reason']}")
    status = out["result"]
    ctx.exit(0 if status == "pass" else 3 if status == "temperror" else 2)
