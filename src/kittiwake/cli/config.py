"""``kittiwake config test|describe-static|describe-domains|describe-alerts``, and
``config dnsrecords|dnscheck`` (the DNS records of a domain, published or not)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from kittiwake.cli.common import UserError

if TYPE_CHECKING:
    from kittiwake.config import Config
    from kittiwake.dns import Resolver
    from kittiwake.setup import DomainFacts


@click.group(name="config")
def config_group() -> None:
    """Check and document the configuration files."""


@config_group.command("test")
@click.pass_context
def test_command(ctx: click.Context) -> None:
    """Validate kittiwake.conf and domains.conf; print every problem (exit 1 on errors).

    Warnings (something works only partly, e.g. no TLS certificate) are printed
    too but leave the exit status 0.
    """
    from kittiwake.config import ConfigError, load
    from kittiwake.config.load import STATIC_FILE, check_user

    config_dir = ctx.find_root().obj["config_dir"]
    try:
        config = load(config_dir)
        # Checked here, not by every command that loads the config: the user only
        # matters to serve started as root (on this machine).
        problems = [f"{config.config_dir / STATIC_FILE}: {p}" for p in check_user(config.static)]
        if problems:
            raise ConfigError(problems)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        n = len(exc.problems)
        raise UserError(f"{n} problem{'s' if n != 1 else ''} in the configuration") from None
    from kittiwake.config.warnings import config_warnings

    for warning in config_warnings(config.static):
        click.echo(warning.text(str(config.config_dir / "kittiwake.conf")), err=True)
    d = config.domains
    click.echo(f"config OK: {config.config_dir}: {len(config.static.listeners)} listeners, "
               f"{len(d.domains)} domains, {len(d.accounts)} accounts, {len(d.aliases)} aliases")


@config_group.command("describe-static")
def describe_static() -> None:
    """Print an annotated kittiwake.conf with every field documented."""
    from kittiwake.config.describe import describe
    from kittiwake.config.static import StaticConfig

    click.echo(describe(StaticConfig, "kittiwake.conf"), nl=False)


@config_group.command("describe-domains")
def describe_domains() -> None:
    """Print an annotated domains.conf with every field documented."""
    from kittiwake.config.describe import describe
    from kittiwake.config.domains import DomainsConfig

    click.echo(describe(DomainsConfig, "domains.conf"), nl=False)


@config_group.command("describe-alerts")
def describe_alerts() -> None:
    """Print Prometheus alerting rules for kittiwake's metrics (a rule file)."""
    from kittiwake.monitoring import alert_rules_yaml

    click.echo(alert_rules_yaml(), nl=False)


def _load_for_domain(ctx: click.Context, domain: str) -> tuple[Config, str]:
    """The loaded config and ``domain`` in A-labels, or one line saying what is wrong."""
    from kittiwake.config import ConfigError, load
    from kittiwake.dns import InvalidName, mail_domain

    try:
        ascii_domain = mail_domain(domain).ascii
    except InvalidName as exc:
        raise UserError(str(exc)) from None
    try:
        config = load(ctx.find_root().obj["config_dir"])
    except ConfigError as exc:
        for problem in exc.problems[:-1]:
            click.echo(problem, err=True)
        raise UserError(exc.problems[-1]) from None
    return config, ascii_domain


def _facts(config: Config, domain: str) -> DomainFacts:
    from kittiwake.setup import FactsError, domain_facts

    try:
        return domain_facts(config, domain)
    except FactsError as exc:
        raise UserError(str(exc)) from None


@config_group.command("dnsrecords")
@click.argument("domain")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
@click.option("--words", is_flag=True, help="Explain each record in words after the zone.")
@click.pass_context
def dnsrecords_command(ctx: click.Context, domain: str, as_json: bool, words: bool) -> None:
    """Print the DNS records DOMAIN needs, as a zone-file snippet (from the config files)."""
    from kittiwake.setup import records_for, render_json, render_words, render_zone

    config, ascii_domain = _load_for_domain(ctx, domain)
    facts = _facts(config, ascii_domain)
    records = records_for(facts)
    if as_json:
        click.echo(render_json(records, facts))
        return
    click.echo(render_zone(records, facts), nl=False)
    if words:
        click.echo("")
        click.echo(render_words(records, facts), nl=False)


EXIT_DNS_ERRORS = 2


def dnscheck_resolver(ctx: click.Context) -> Resolver:
    """The resolver dnscheck uses (one injected in ``ctx.obj["resolver"]`` by tests,
    else KITTIWAKE_DNS, the config's resolvers, resolv.conf)."""
    from kittiwake.cli.common import make_resolver

    state = ctx.find_root().obj or {}
    injected = state.get("resolver")
    return injected if injected is not None else make_resolver(ctx)


@config_group.command("dnscheck")
@click.argument("domain")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("--ca-file", default=None, type=click.Path(dir_okay=False, exists=True),
              help="Extra CA certificates to trust for the MTA-STS policy's HTTPS (test CAs).")
@click.pass_context
def dnscheck_command(ctx: click.Context, domain: str, as_json: bool,
                     ca_file: str | None) -> None:
    """Check DOMAIN's published DNS records against the configuration.

    One line per check: OK, WARN or ERROR, with the fix. The server's SMTP
    port is connected to (STARTTLS) to compare the served certificate with
    the TLSA records, and the MTA-STS policy is fetched over HTTPS.
    Exit status 2 when some check is an ERROR.
    """
    from kittiwake.cli.common import print_json, run
    from kittiwake.dnscheck import Level, default_probes, render, run_checks

    config, ascii_domain = _load_for_domain(ctx, domain)
    ctx.find_root().obj["static_config"] = config.static
    facts = _facts(config, ascii_domain)
    resolver = dnscheck_resolver(ctx)
    probe = config.static.dns.dnssec_probe
    results = run(lambda: run_checks(facts, resolver, default_probes(resolver, ca_file), probe))
    if as_json:
        print_json({"domain": ascii_domain, "hostname": facts.hostname,
                    "results": [r.to_json() for r in results]})
    else:
        click.echo(render(results), nl=False)
    if any(r.level is Level.ERROR for r in results):
        ctx.exit(EXIT_DNS_ERRORS)
