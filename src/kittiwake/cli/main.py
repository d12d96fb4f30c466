"""Entry point of the ``kittiwake`` command.

Command groups live in their own modules and are listed in ``COMMANDS``
as ``(module, attribute)``; they are imported only when used so that
``kittiwake --help`` stays fast.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

# name -> (module, attribute): every top-level command. Add new groups here.
COMMANDS: dict[str, tuple[str, str]] = {
    "version": ("kittiwake.cli.version", "version_command"),
    "dns": ("kittiwake.cli.dns", "dns_group"),
    "dmarc": ("kittiwake.cli.dmarc", "dmarc_group"),
    "spf": ("kittiwake.cli.spf", "spf_group"),
    "mtasts": ("kittiwake.cli.mtasts", "mtasts_group"),
    "config": ("kittiwake.cli.config", "config_group"),
    "serve": ("kittiwake.cli.serve", "serve_command"),
    "localserve": ("kittiwake.cli.localserve", "localserve_command"),
    "loglevels": ("kittiwake.cli.serve", "loglevels_command"),
    "stop": ("kittiwake.cli.serve", "stop_command"),
    "restart": ("kittiwake.cli.serve", "restart_command"),
    "dkim": ("kittiwake.cli.dkim", "dkim_group"),
    "account": ("kittiwake.cli.account", "account_group"),
    "address": ("kittiwake.cli.account", "address_group"),
    "domain": ("kittiwake.cli.account", "domain_group"),
    "import": ("kittiwake.cli.importexport", "import_command"),
    "queue": ("kittiwake.cli.queue", "queue_group"),
    "export": ("kittiwake.cli.importexport", "export_command"),
    "sendmail": ("kittiwake.cli.sendmail", "sendmail_command"),
    "smtp": ("kittiwake.cli.dial", "smtp_group"),
    "dane": ("kittiwake.cli.dial", "dane_group"),
    "admin": ("kittiwake.cli.admin", "admin_group"),
    "status": ("kittiwake.cli.status", "status_command"),
    "quickstart": ("kittiwake.cli.quickstart", "quickstart_command"),
    "junk": ("kittiwake.cli.junk", "junk_group"),
    "tlsrpt": ("kittiwake.cli.tlsrpt", "tlsrpt_group"),
}


class LazyGroup(click.Group):
    """A click group that imports a command's module only when it is run."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(entry[0])
        return getattr(module, entry[1])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_dir", envvar="KITTIWAKE_CONFIG", default="config",
              show_default=True, type=click.Path(file_okay=False),
              help="Directory with kittiwake.conf and domains.conf.")
@click.option("--loglevel", default=None,
              type=click.Choice(["error", "warn", "info", "debug", "trace", "traceauth",
                                 "tracedata"], case_sensitive=False),
              help="Log level for this command (overrides the config).")
@click.pass_context
def cli(ctx: click.Context, config_dir: str, loglevel: str | None) -> None:
    """kittiwake: a complete, secure mail server for your own domains."""
    ctx.ensure_object(dict)
    ctx.obj["config_dir"] = config_dir
    ctx.obj["loglevel"] = loglevel


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry. User errors are one line on stderr: exit 1 for
    problems with input or config, 2 for command-line usage."""
    try:
        result = cli.main(args=argv, prog_name="kittiwake", standalone_mode=False)
    except click.exceptions.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "kittiwake"
        message = " ".join(exc.format_message().split())
        click.echo(f"kittiwake: {message} (see `{where} --help`)", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("kittiwake: aborted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("kittiwake: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    # click returns the exit code of ctx.exit(N) when not in standalone mode.
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
