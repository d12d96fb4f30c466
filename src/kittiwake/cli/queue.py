"""``kittiwake queue``: look at and manage the outgoing queue of the running server.

Every subcommand talks to the running server over its control socket
(``queue-*`` commands of :mod:`kittiwake.server.queuecontrol`). ``list`` also works
when the server is stopped: it then reads the queue database read-only and
says so.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

from kittiwake.cli.common import UserError, print_json, table
from kittiwake.cli.serve import call_server, control_socket
from kittiwake.server.control import ServerNotRunning


def _filters(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--to-domain", default="", help="Only mail to this domain.")(fn)
    fn = click.option("--from-domain", default="", help="Only mail from this domain.")(fn)
    fn = click.option("--account", default="", help="Only mail submitted by this account.")(fn)
    fn = click.option("--id", "ids", multiple=True, type=int,
                      help="Only this message id (repeatable).")(fn)
    return fn


def _args(ids: tuple[int, ...], account: str, from_domain: str, to_domain: str,
          **extra: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"id": list(ids), "account": account, "from_domain": from_domain,
                            "to_domain": to_domain}
    args.update(extra)
    return args


def duration(seconds: float) -> str:
    """A short duration: 45s, 7m, 3h, 2d."""
    seconds = abs(seconds)
    if seconds < 60:
        return f"{int(seconds)}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if seconds < 86400 * 2:
        return f"{int(seconds // 3600)}h"
    return f"{int(seconds // 86400)}d"


def relative(when: str | None, now: datetime) -> str:
    """"in 7m", "3h ago" or "now" for an ISO time relative to ``now``."""
    if not when:
        return "-"
    delta = (datetime.fromisoformat(when) - now).total_seconds()
    if abs(delta) < 1:
        return "now"
    return f"in {duration(delta)}" if delta > 0 else f"{duration(delta)} ago"


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _error_text(error: dict[str, Any] | None) -> str:
    if not error:
        return "-"
    parts = [str(error.get("code") or ""), error.get("enhanced") or "", error.get("text") or ""]
    text = " ".join(p for p in parts if p)
    if error.get("host"):
        text = f"{error['host']}: {text}" if text else error["host"]
    return _shorten(text, 60) or "-"


@click.group(name="queue")
def queue_group() -> None:
    """Show and manage the outgoing queue of the running server."""


@queue_group.command(name="list")
@_filters
@click.option("--all", "show_all", is_flag=True,
              help="Also show recently delivered and failed recipients.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_command(ctx: click.Context, ids: tuple[int, ...], account: str, from_domain: str,
                 to_domain: str, show_all: bool, as_json: bool) -> None:
    """List queued messages, one line per recipient.

    With the server stopped, the queue database is read directly (read-only).
    """
    args = _args(ids, account, from_domain, to_domain, all=show_all)
    try:
        result = _list_from_server(ctx, args)
    except ServerNotRunning:
        result = _list_from_database(ctx, args)
    if not show_all:
        result.pop("history", None)
    if as_json:
        print_json(result)
        return
    now = datetime.fromisoformat(result["now"])
    rows = []
    for r in result["queued"]:
        next_attempt = relative(r["next_attempt"], now)
        if r["next_attempt"] and datetime.fromisoformat(r["next_attempt"]) <= now:
            next_attempt = "now"
        rows.append([str(r["message_id"]), duration((now - datetime.fromisoformat(
            r["created"])).total_seconds()), _shorten(r["from"] or "<>", 30),
            _shorten(r["to"], 30), str(r["attempts"]), next_attempt,
            _error_text(r["last_error"]), "held" if r["held"] else ""])
    if rows:
        click.echo(table(rows, ["id", "age", "from", "to", "attempts", "next", "last error",
                                "held"]))
    else:
        click.echo("queue is empty" if not any((ids, account, from_domain, to_domain))
                   else "no queued message matches")
    if show_all:
        history = [[str(h["message_id"]), relative(h["retired"], now),
                    _shorten(h["mail_from"] or "<>", 30), _shorten(h["address"], 30),
                    h["status"], str(h["attempts"]), _error_text(h["last_error"])]
                   for h in result.get("history", [])]
        click.echo("")
        if history:
            click.echo(table(history, ["id", "finished", "from", "to", "status", "attempts",
                                       "last error"]))
        else:
            click.echo("no recently finished recipients")


def _list_from_server(ctx: click.Context, args: dict[str, Any]) -> dict[str, Any]:
    """``{"now", "queued", "history"}`` from the running server's ``queue-list``."""
    import asyncio

    from kittiwake.server.control import ControlClientError, request

    collected: dict[str, list[dict[str, Any]]] = {"queued": [], "history": []}

    def on_progress(data: dict[str, Any]) -> None:
        for key, rows in data.items():
            collected.setdefault(key, []).extend(rows)

    try:
        summary = asyncio.run(request(control_socket(ctx), "queue-list", args, on_progress))
    except ServerNotRunning:
        raise
    except ControlClientError as exc:
        raise UserError(str(exc)) from None
    return {"now": summary["now"], **collected}


def _list_from_database(ctx: click.Context, args: dict[str, Any]) -> dict[str, Any]:
    """The same rows read from ``data_dir/queue/index.db``, opened read-only.

    Says so in one line on standard error, so that nobody takes it for the
    state of a running server.
    """
    import sqlite3

    from kittiwake.queue.model import to_json
    from kittiwake.queue.store import QueueStore, utcnow
    from kittiwake.server.queuecontrol import parse_filter, recipient_json

    queue_dir = control_socket(ctx).parent / "queue"
    where = parse_filter(args)
    now = utcnow()
    try:
        store = QueueStore(queue_dir, readonly=True)
    except FileNotFoundError:
        click.echo(f"the server is not running; no queue database at {queue_dir} yet"
                   " (nothing was ever queued)", err=True)
        return {"now": now.isoformat(), "queued": [], "history": []}
    except (sqlite3.Error, RuntimeError) as exc:
        raise UserError(f"{queue_dir / 'index.db'}: cannot read the queue database: {exc}"
                        ) from None
    try:
        queued = [recipient_json(m, r) for m, r in store.list(where)]
        history = [to_json(h) for h in store.history(where)] if args.get("all") else []
    except sqlite3.Error as exc:
        raise UserError(f"{queue_dir / 'index.db'}: cannot read the queue database: {exc}"
                        ) from None
    finally:
        store.close()
    click.echo(f"the server is not running; showing the queue as stored in {queue_dir}",
               err=True)
    return {"now": now.isoformat(), "queued": queued, "history": history}


DONE = {"hold": "held {}", "release": "released {}", "kick": "made {} due now"}


def _count_command(name: str, verb: str, helptext: str, needs_all: bool) -> click.Command:
    @click.pass_context
    def command(ctx: click.Context, ids: tuple[int, ...], account: str, from_domain: str,
                to_domain: str, everything: bool = False) -> None:
        if needs_all and not (ids or account or from_domain or to_domain or everything):
            raise UserError(f"say which messages to {verb}: --id, --account, --from-domain,"
                            " --to-domain, or --all")
        result = call_server(ctx, f"queue-{name}",
                             _args(ids, account, from_domain, to_domain, all=everything))
        count = result["count"]
        plural = "s" if count != 1 else ""
        click.echo(DONE[name].format(f"{count} recipient{plural}"))

    command.__doc__ = helptext
    cmd = _filters(command)
    if needs_all:
        cmd = click.option("--all", "everything", is_flag=True,
                           help="Every queued message.")(cmd)
    return click.command(name=name)(cmd)


queue_group.add_command(_count_command(
    "hold", "hold", "Hold queued mail: no delivery attempts until released.", True))
queue_group.add_command(_count_command(
    "release", "release", "Release held mail (it is tried when its retry time comes).", True))
queue_group.add_command(_count_command(
    "kick", "kick", "Try queued mail now (all when no filter is given).", False))


@queue_group.command(name="drop")
@_filters
@click.option("--all", "everything", is_flag=True, help="Every queued message.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def drop_command(ctx: click.Context, ids: tuple[int, ...], account: str, from_domain: str,
                 to_domain: str, everything: bool, as_json: bool) -> None:
    """Remove mail from the queue without delivering it."""
    if not (ids or account or from_domain or to_domain or everything):
        raise UserError("say which messages to drop: --id, --account, --from-domain,"
                        " --to-domain, or --all")
    result = call_server(ctx, "queue-drop", _args(ids, account, from_domain, to_domain,
                                                  all=everything))
    if as_json:
        print_json(result)
        return
    for item in result["dropped"]:
        click.echo(f"dropped message {item['message_id']} from {item['from'] or '<>'} to "
                   + ", ".join(item["recipients"]))
    if len(result["dropped"]) < result["messages"]:
        click.echo(f"... {result['messages']} messages dropped in all")
    if not result["dropped"]:
        click.echo("no queued message matches")


@queue_group.command(name="dump")
@click.argument("message_id", type=int)
@click.pass_context
def dump_command(ctx: click.Context, message_id: int) -> None:
    """Write the raw bytes of queued message MESSAGE_ID to standard output."""
    out = sys.stdout.buffer

    def on_progress(data: dict[str, Any]) -> None:
        out.write(base64.b64decode(data["data"]))

    call_server(ctx, "queue-dump", {"id": message_id}, on_progress)
    out.flush()


@queue_group.group(name="holdrules")
def holdrules_group() -> None:
    """Rules that hold new mail by account, sender domain and recipient domain."""


@holdrules_group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def holdrules_list(ctx: click.Context, as_json: bool) -> None:
    """List hold rules."""
    rules = call_server(ctx, "queue-holdrules-list")
    if as_json:
        print_json(rules)
        return
    if not rules:
        click.echo("no hold rules")
        return
    rows = [[str(r["id"]), r["account"] or "*", r["from_domain"] or "*", r["to_domain"] or "*"]
            for r in rules]
    click.echo(table(rows, ["id", "account", "from domain", "to domain"]))


@holdrules_group.command(name="add")
@click.option("--account", default="", help="Submitting account (default: any).")
@click.option("--from-domain", default="", help="Sender domain (default: any).")
@click.option("--to-domain", default="", help="Recipient domain (default: any).")
@click.pass_context
def holdrules_add(ctx: click.Context, account: str, from_domain: str, to_domain: str) -> None:
    """Hold new mail matching all given fields (no field: hold all new mail)."""
    if account:
        _check_account(ctx, account)
    from_domain = _rule_domain("--from-domain", from_domain)
    to_domain = _rule_domain("--to-domain", to_domain)
    rule = call_server(ctx, "queue-holdrules-add", {"account": account,
                                                    "from_domain": from_domain,
                                                    "to_domain": to_domain})
    click.echo(f"added hold rule {rule['id']}: account {rule['account'] or '*'}, from"
               f" {rule['from_domain'] or '*'}, to {rule['to_domain'] or '*'}")


def _check_account(ctx: click.Context, account: str) -> None:
    """Refuse a hold rule for an account domains.conf does not have (it would never match)."""
    from kittiwake.config import ConfigError
    from kittiwake.config.load import load_domains

    try:
        domains = load_domains(ctx.find_root().obj["config_dir"])
    except ConfigError as exc:
        raise UserError(exc.problems[0]) from None
    if account not in domains.accounts:
        known = ", ".join(sorted(domains.accounts)) or "none"
        raise UserError(f"--account: no account {account!r} in domains.conf (known: {known})")


def _rule_domain(option: str, domain: str) -> str:
    """A hold rule's domain as lower-case A-labels; address literals kept as they are."""
    from kittiwake.dns import InvalidName, mail_domain

    if not domain or domain.startswith("["):
        return domain
    try:
        return mail_domain(domain).ascii
    except InvalidName as exc:
        raise UserError(f"{option}: {exc}") from None


@holdrules_group.command(name="remove")
@click.argument("rule_id", type=int)
@click.pass_context
def holdrules_remove(ctx: click.Context, rule_id: int) -> None:
    """Remove hold rule RULE_ID (mail it held stays held until released)."""
    rule = call_server(ctx, "queue-holdrules-remove", {"id": rule_id})
    click.echo(f"removed hold rule {rule['id']}")
