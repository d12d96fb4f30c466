"""``kittiwake serve`` and ``kittiwake loglevels``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from kittiwake.cli.common import UserError, print_json, table


def load_config(ctx: click.Context):  # type: ignore[no-untyped-def]
    """Load both config files or fail with every problem, one per line."""
    from kittiwake.config import ConfigError, load

    try:
        return load(ctx.find_root().obj["config_dir"])
    except ConfigError as exc:
        for problem in exc.problems[:-1]:
            click.echo(problem, err=True)
        raise UserError(exc.problems[-1]) from None


def setup_logging(ctx: click.Context, config) -> None:  # type: ignore[no-untyped-def]
    from kittiwake import log

    level = ctx.find_root().obj.get("loglevel") or config.static.log.level
    log.setup(level=level, packages=dict(config.static.log.packages),
              format=config.static.log.format)


@click.command(name="serve")
@click.pass_context
def serve_command(ctx: click.Context) -> None:
    """Run the mail server with the configuration in --config."""
    from kittiwake.cli.common import make_resolver

    config = load_config(ctx)
    ctx.obj["static_config"] = config.static
    setup_logging(ctx, config)
    run_server(config, make_resolver(ctx, cache=True))


def run_server(config, resolver, localserve: bool = False,  # type: ignore[no-untyped-def]
               on_started=None) -> None:
    """Build the server from the config and run it until SIGTERM/SIGINT."""
    from kittiwake.server import eventloop
    from kittiwake.server.app import Server, StartupError
    from kittiwake.server.tls import TLSConfigError

    try:
        server = Server(config, resolver=resolver, localserve=localserve)
        for service in server.services_from_config():
            server.add_service(service)
        eventloop.run(server.run(on_started))
    except (StartupError, TLSConfigError) as exc:
        raise UserError(str(exc)) from None


def control_socket(ctx: click.Context) -> Path:
    """The control socket of the server configured in --config."""
    from kittiwake.config import ConfigError, load_static
    from kittiwake.server.control import SOCKET_NAME

    config_dir = Path(ctx.find_root().obj["config_dir"])
    try:
        static = load_static(config_dir)
    except ConfigError as exc:
        raise UserError(exc.problems[0]) from None
    return (config_dir / static.data_dir).resolve() / SOCKET_NAME


def call_server(ctx: click.Context, command: str, args: dict | None = None,  # type: ignore[type-arg]
                on_progress=None):  # type: ignore[no-untyped-def]
    """Send one control request to the running server; errors become one line."""
    from kittiwake.server.control import ControlClientError, request

    path = control_socket(ctx)
    try:
        return asyncio.run(request(path, command, args, on_progress))
    except ControlClientError as exc:
        raise UserError(str(exc)) from None


@click.command(name="loglevels")
@click.argument("settings", nargs=-1, metavar="[PKG=LEVEL]...")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def loglevels_command(ctx: click.Context, settings: tuple[str, ...], as_json: bool) -> None:
    """Show or set log levels of the running server.

    With no arguments, print the levels. PKG=LEVEL sets one package
    (e.g. smtpserver=trace); use an empty PKG (=debug) for the default level.
    Levels: error warn info debug trace traceauth tracedata.
    """
    changes: dict[str, str] = {}
    for item in settings:
        if "=" not in item:
            raise UserError(f"{item!r}: expected PKG=LEVEL, e.g. smtpserver=trace")
        pkg, level = item.split("=", 1)
        _check_loglevel(item, pkg, level)
        changes[pkg] = level
    levels = call_server(ctx, "loglevels", {"set": changes})
    if as_json:
        print_json(levels)
        return
    rows = [[pkg or "(default)", level] for pkg, level in sorted(levels.items())]
    click.echo(table(rows, ["package", "level"]))


def _check_loglevel(item: str, pkg: str, level: str) -> None:
    """Refuse an unknown level or a package kittiwake does not have (it would log nothing)."""
    import importlib.util

    from kittiwake.log.levels import parse_level

    try:
        parse_level(level)
    except ValueError as exc:
        raise UserError(f"{item!r}: {exc}") from None
    if not pkg:
        return
    name = pkg if pkg.startswith("kittiwake.") or pkg == "kittiwake" else f"kittiwake.{pkg}"
    try:
        found = importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise UserError(f"{item!r}: kittiwake has no package {pkg!r} (known: {_packages()})")


def _packages() -> str:
    import pkgutil

    import kittiwake

    return ", ".join(sorted(m.name for m in pkgutil.iter_modules(kittiwake.__path__)))
