"""``kittiwake status``: one screen about the running server (the ``status`` control command)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import click

from kittiwake.cli.common import print_json, table
from kittiwake.cli.queue import duration
from kittiwake.cli.serve import call_server

CERT_WARN_SECONDS = 14 * 86400


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _error_line(e: dict[str, Any]) -> str:
    code = f"{e['code']} " if e["code"] else ""
    enhanced = f"{e['enhanced']} " if e["enhanced"] else ""
    host = f" ({e['host']})" if e["host"] else ""
    text = " ".join(str(e["text"]).split())
    if len(text) > 100:
        text = text[:99] + "…"
    return (f"  {_when(e['time'])}  {e['to']}  {e['status']}, attempt {e['attempts']}:"
            f" {code}{enhanced}{text}{host}")


def _acme_rows(certs: list[dict[str, Any]], now: float) -> list[str]:
    """The ACME certificates as an aligned table, indented under their heading."""
    rows = []
    for c in certs:
        names = c["names"][0] + (f" (+{len(c['names']) - 1})" if len(c["names"]) > 1 else "")
        left = c["expires_in_seconds"]
        if left is None:
            expires = "none yet"
        else:
            expires = f"{_when(c['not_after'])} ({'EXPIRED' if left <= 0 else duration(left)})"
        if c["renew_at"] is None or c["renew_at"] <= now:
            renews = "due now"
        else:
            renews = ("retry " if c["failures"] else "") + _when(c["renew_at"])
        error = " ".join(str(c["last_error"] or "-").split())
        if len(error) > 80:  # the start says what failed, the end why
            error = error[:40] + "…" + error[-39:]
        rows.append([names, c["key_type"], c["authority"], expires, renews,
                     str(c["failures"]), error])
    text = table(rows, ["NAME", "KEY", "AUTHORITY", "EXPIRES", "RENEWAL", "FAILURES",
                        "LAST ERROR"])
    return ["  " + line for line in text.splitlines()]


def _tls_failures(failures: dict[str, dict[str, int]]) -> str:
    total = sum(n for reasons in failures.values() for n in reasons.values())
    if not total:
        return "none"
    return f"{total} (" + "; ".join(
        f"{service}: " + ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items()))
        for service, reasons in sorted(failures.items())) + ")"


def render(s: dict[str, Any], now: float | None = None) -> str:
    """The one-screen text of a ``status`` result."""
    now = time.time() if now is None else now
    lines = [f"kittiwake on {s['hostname']} (pid {s['pid']}), up {duration(s['uptime_seconds'])}"
             f" since {_when(s['started'])}"]
    lines.append("listeners:")
    for listener in s["listeners"]:
        lines.append(f"  {listener['service']:<12} {', '.join(listener['addresses'])}")
    if not s["listeners"]:
        lines.append("  none")
    dnssec = s["dnssec"]
    lines.append(f"DNSSEC: resolver {dnssec['status']} ({dnssec['detail']})")
    lines.append("certificates:")
    for cert in s["certificates"]:
        left = cert["expires_in_seconds"]
        note = "EXPIRED" if left <= 0 else f"in {duration(left)}"
        if 0 < left < CERT_WARN_SECONDS:
            note += " (renew soon)"
        lines.append(f"  {cert['host']:<30} expires {_when(cert['not_after'])}, {note}")
    for file, error in s["certificate_errors"].items():
        lines.append(f"  {file}: unreadable: {error}")
    if not s["certificates"] and not s["certificate_errors"]:
        lines.append("  none from files" if s["acme_certificates"] else "  none configured")
    if s["acme_certificates"]:
        lines.append("ACME certificates:")
        lines.extend(_acme_rows(s["acme_certificates"], now))
    if s["dnsbl_listed"]:
        lines.append("blocklisted: " + ", ".join(s["dnsbl_listed"]))
    q = s["queue"]
    if q is None:
        lines.append("queue: not open")
    else:
        oldest = "-" if q["oldest_age_seconds"] is None else duration(q["oldest_age_seconds"])
        lines.append(f"queue: {q['messages']} messages ({q['recipients']} recipients),"
                     f" oldest {oldest}, {q['held_messages']} on hold")
        if q["failing_domains"]:
            lines.append("  failing domains: " + ", ".join(
                f"{d['domain']} ({d['recipients']})" for d in q["failing_domains"]))
        if q["last_errors"]:
            lines.append("last delivery errors:")
            lines.extend(_error_line(e) for e in q["last_errors"])
    today = s["messages_today"]
    out = (f", delivered {today['delivered']}, failed {today['failed']}"
           if "delivered" in today else "")
    lines.append(f"today (UTC): received {today['received']}, submitted {today['submitted']}"
                 f"{out}")
    junk = s["junk"]
    if junk is None:
        lines.append("junk filter: not running")
    else:
        verdicts = ", ".join(f"{action} {n}" for action, n in junk["verdicts_today"].items())
        lines.append(f"junk filter: {junk['accounts_filtered']} accounts filtered;"
                     f" today: {verdicts}")
    lines.append("TLS handshake failures since start: "
                 + _tls_failures(s["tls_handshake_failures"]))
    panics = s["panics"]
    lines.append("panics since start: " + (", ".join(f"{origin} {n}" for origin, n in
                                                       sorted(panics.items())) or "none"))
    return "\n".join(lines)


@click.command(name="status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.pass_context
def status_command(ctx: click.Context, as_json: bool) -> None:
    """Show the running server: uptime, listeners, DNSSEC, certificates (ACME too), queue,
    errors, junk filter, TLS failures."""
    result = call_server(ctx, "status")
    if as_json:
        print_json(result)
    else:
        click.echo(render(result))
