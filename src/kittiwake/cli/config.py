"""``kittiwake config test|describe-static|describe-domains|describe-alerts``."""

from __future__ import annotations

import click

from kittiwake.cli.common import UserError


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

    config_dir = ctx.find_root().obj["config_dir"]
    try:
        config = load(config_dir)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        n = len(exc.problems)
        raise UserError(f"{n} problem{'s' if n != 1 else ''} in the configuration") from None
    from kittiwake.config.warnings import tls_warnings

    for warning in tls_warnings(config.static):
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
