"""``kittiwake serve`` and ``kittiwake loglevels``."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import click

from kittiwake.cli.common import UserError, load_config, print_json, table


def setup_logging(ctx: click.Context, config) -> None:  # type: ignore[no-untyped-def]
    from kittiwake import log

    level = ctx.find_root().obj.get("loglevel") or config.static.log.level
    log.setup(level=level, packages=dict(config.static.log.packages),
              format=config.static.log.format)


@click.command(name="serve")
@click.pass_context
def serve_command(ctx: click.Context) -> None:
    """Run the mail server with the configuration in --config.

    Started as root, it binds its ports, gives the data directory to the
    configured ``user`` and runs as that user. SIGTERM/SIGINT (or
    ``kittiwake stop``): graceful stop; SIGHUP: reload certificate files;
    ``kittiwake restart``: new program, same listening sockets.
    """
    from kittiwake.cli.common import make_resolver

    config = load_config(ctx, keys_apart=True)  # the server signs only its reports
    ctx.obj["static_config"] = config.static
    setup_logging(ctx, config)
    run_server(config, make_resolver(ctx, cache=True))


def bind_listeners(config) -> None:  # type: ignore[no-untyped-def]
    """Bind every enabled service's sockets now (as root, before dropping privileges)."""
    from kittiwake.config import enabled_services
    from kittiwake.listener import SOCKETS

    backlog = config.static.limits.listen_backlog
    for name, listener in config.static.listeners.items():
        for service, port in enabled_services(listener):
            for ip in listener.ips:
                try:
                    SOCKETS.socket(ip, port, backlog)
                except OSError as exc:
                    SOCKETS.close_all()
                    raise UserError(f"listeners.{name}.{service}: cannot listen on"
                                    f" {ip}:{port}: {exc.strerror or exc}") from None


def run_server(config, resolver, localserve: bool = False,  # type: ignore[no-untyped-def]
               on_started=None) -> None:
    """Build the server from the config and run it until SIGTERM/SIGINT.

    ``serve`` (not ``localserve``) started as root binds first and drops to
    ``user`` (:mod:`kittiwake.server.privileges`); after a ``restart`` request
    it execs itself with the listening sockets (:func:`exec_restart`).
    """
    from kittiwake.server import eventloop
    from kittiwake.server.app import Server, StartupError
    from kittiwake.server.privileges import (
        UMASK,
        PrivilegeError,
        config_files,
        drop,
        prepare_files,
        run_as,
    )
    from kittiwake.server.tls import TLSConfigError

    os.umask(UMASK)
    if problem := eventloop.check_choice():
        raise UserError(problem)
    try:
        user = None if localserve else run_as(config.static.user)
        if user is not None:
            bind_listeners(config)
            prepare_files(config.data_dir, config.config_dir, user,
                          config_files(config.config_dir, config.static, config.domains))
            drop(user)
            from kittiwake import log

            log.get_logger("server").info("running as", user=user.name, uid=user.uid,
                                          gid=user.gid)
        from kittiwake.cpupool import default_workers
        from kittiwake.server.smtpworkers import process_count

        server = Server(config, resolver=resolver, localserve=localserve,
                        cpu_workers=default_workers(),
                        smtp_processes=process_count(config.static.smtp_processes))
        for service in server.services_from_config():
            server.add_service(service)
        eventloop.run(server.run(on_started))
    except (StartupError, TLSConfigError, PrivilegeError) as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"{getattr(exc, 'filename', None) or 'serve'}:"
                        f" {exc.strerror or exc}") from None
    if server.restart_requested:
        exec_restart()


def exec_restart() -> None:
    """Replace this program by a new ``kittiwake serve``, passing the listening sockets on.

    The process (and its pid, which systemd watches) stays; connections that
    arrive meanwhile wait in the listening sockets' queues.
    """
    import logging

    from kittiwake.listener import SOCKETS

    env = {**os.environ, **SOCKETS.pass_on()}
    argv = [sys.executable, *sys.orig_argv[1:]]
    logging.shutdown()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, argv, env)
    except OSError as exc:
        raise UserError(f"restart: cannot run {sys.executable}: {exc.strerror or exc};"
                        " the server stopped, start it again") from None


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


@click.command(name="stop")
@click.option("--timeout", default=60.0, show_default=True,
              help="Seconds to wait for the server to exit.")
@click.pass_context
def stop_command(ctx: click.Context, timeout: float) -> None:
    """Stop the running server gracefully (as SIGTERM does) and wait until it is gone."""
    answer = call_server(ctx, "stop")
    pid = int(answer["pid"])
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            raise UserError(f"server (pid {pid}) still running after {timeout:g} s")
        time.sleep(0.1)
    click.echo(f"kittiwake stopped (pid {pid})")


@click.command(name="restart")
@click.option("--timeout", default=60.0, show_default=True,
              help="Seconds to wait for the new program to answer.")
@click.pass_context
def restart_command(ctx: click.Context, timeout: float) -> None:
    """Restart the running server without refusing connections.

    Open sessions get the shutdown grace time to finish (unfinished SMTP
    transactions get a temporary 421, never a lost 250); the queue is on disk;
    the new program takes over the same listening sockets.
    """
    from kittiwake.server.control import ControlClientError, request

    before = call_server(ctx, "restart")
    path = control_socket(ctx)
    deadline = time.monotonic() + timeout
    while True:
        try:
            now = asyncio.run(request(path, "ping"))
            if now.get("started") != before.get("started"):
                click.echo(f"kittiwake restarted (pid {now['pid']})")
                return
        except ControlClientError:
            pass
        if time.monotonic() > deadline:
            raise UserError(f"server did not come back within {timeout:g} s; see its log")
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone; others are checked through /proc.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True
