"""``kittiwake tlsrpt reports``: TLS reports (RFC 8460) other organizations sent us.

The server stores every report that arrives at a domain's ``tlsrpt_reports``
address in ``data_dir/tlsrptreports.db``; this reads that database (SQLite
allows it while the server runs) and prints one row per report and policy:
success and failure session counts, and the failure result types (§4.3).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from kittiwake.cli.common import UserError, load_config, print_json, table


def _data_dir(ctx: click.Context) -> Path:
    return load_config(ctx).data_dir


def _since(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"--since {text!r}: expected a date (2026-12-01) or date-time"
                        " (2026-12-01T06:00)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def _day(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d")


@click.group("tlsrpt")
def tlsrpt_group() -> None:
    """SMTP TLS reports (RFC 8460) received about mail to our domains."""


@tlsrpt_group.command("reports")
@click.option("--domain", help="Only reports about this policy domain (and MX hosts under it).")
@click.option("--since", help="Only reports whose period ends after this date (UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
def reports_command(ctx: click.Context, domain: str | None, since: str | None,
                    as_json: bool) -> None:
    """Received TLS reports: per report and policy, successful and failed sessions and
    the failure types."""
    from kittiwake.reports.tlsrptdb import FILENAME, TLSRPTDatabase

    name = None
    if domain:
        from kittiwake.dns import InvalidName, to_ascii

        try:
            name = to_ascii(domain).lower()
        except InvalidName as exc:
            raise UserError(f"--domain: {exc}") from None
    after = _since(since)
    data_dir = _data_dir(ctx)
    rows = []
    if (data_dir / FILENAME).exists():
        db = TLSRPTDatabase(data_dir)
        try:
            rows = db.policies(name, after)
        finally:
            db.close()
    if as_json:
        print_json([r.to_json() for r in rows])
        return
    if not rows:
        click.echo("no TLS reports" + (f" about {name}" if name else "")
                   + (f" since {since}" if since else ""))
        return
    lines = []
    for r in rows:
        failures = ", ".join(f"{k} {v}" for k, v in sorted(r.failure_types.items())) or "-"
        lines.append([_day(r.start), r.organization, r.policy_domain, r.policy_type,
                      r.mx_host or "-", str(r.successful), str(r.failed), failures])
    click.echo(table(lines, ["DAY", "ORGANIZATION", "POLICY DOMAIN", "TYPE", "MX HOSTS",
                             "SUCCESSFUL", "FAILED", "FAILURE TYPES"]))
    total_ok = sum(r.successful for r in rows)
    total_failed = sum(r.failed for r in rows)
    reports = len({(r.organization, r.report_id) for r in rows})
    click.echo(f"{reports} report(s): {total_ok} successful, {total_failed} failed sessions")


@tlsrpt_group.command("sent")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
def sent_command(ctx: click.Context, as_json: bool) -> None:
    """Our daily TLS reports: per day and policy domain, sent, pending (tried again at
    the next daily run), failed, or no-record (the domain publishes no TLSRPT record)."""
    from kittiwake.reports.tlsrptdb import FILENAME, TLSRPTDatabase

    data_dir = _data_dir(ctx)
    states: list[tuple[str, str, str, str, int, str]] = []
    if (data_dir / FILENAME).exists():
        db = TLSRPTDatabase(data_dir)
        try:
            states = db.outgoing_states()
        finally:
            db.close()
    if as_json:
        print_json([{"day": d, "kind": k, "policy_domain": p, "state": s, "attempts": a,
                     "error": e} for d, k, p, s, a, e in states])
        return
    if not states:
        click.echo("no TLS reports made yet")
        return
    click.echo(table([[d, p, k, s, str(a), e or "-"] for d, k, p, s, a, e in states],
                     ["DAY", "POLICY DOMAIN", "KIND", "STATE", "ATTEMPTS", "ERROR"]))
