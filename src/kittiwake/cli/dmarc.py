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


# --- aggregate reports received (kittiwake.reports.dmarcdb) ---------------------------


def _reports_db(ctx: click.Context) -> Any:
    """The reports database of the configured data dir, or None when none exists yet."""
    from pathlib import Path

    from kittiwake.config import ConfigError, load
    from kittiwake.reports.dmarcdb import DMARCDatabase, database_path

    try:
        config = load(Path(ctx.find_root().obj["config_dir"]))
    except ConfigError as exc:
        for problem in exc.problems[:-1]:
            click.echo(problem, err=True)
        raise UserError(exc.problems[-1]) from None
    path = database_path(config.data_dir)
    return DMARCDatabase(path) if path.exists() else None


def _since(text: str | None) -> int | None:
    import datetime as dt

    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise UserError(f"--since {text!r}: expected a date YYYY-MM-DD (UTC)") from None
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


def _date(ts: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M")


def _row_counts(feedback: dict[str, Any]) -> tuple[int, int]:
    """(messages with an aligned pass, messages without) of a stored report."""
    ok = bad = 0
    for r in feedback["records"]:
        ev = r["row"]["policy_evaluated"]
        if "pass" in (ev["dkim"], ev["spf"]):
            ok += r["row"]["count"]
        else:
            bad += r["row"]["count"]
    return ok, bad


@dmarc_group.command("reports")
@click.option("--domain", help="Only reports about this domain (or received for it).")
@click.option("--since", help="Only reports whose period ends on or after DATE (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def reports_command(ctx: click.Context, domain: str | None, since: str | None,
                    as_json: bool) -> None:
    """DMARC aggregate reports received for our domains (RFC 7489 §7.2).

    One line per report (reporter, period, messages passing/failing DMARC),
    then the totals per source IP and From domain.
    """
    from kittiwake.cli.common import table

    start = _since(since)
    domain = domain.lower().rstrip(".") if domain else None
    db = _reports_db(ctx)
    stored = db.reports(domain, start) if db else []
    sources = db.sources(domain, start) if db else []
    if db:
        db.close()
    if as_json:
        print_json({
            "reports": [{"id": r.id, "received_for": r.our_domain, "received": r.received,
                         **r.feedback} for r in stored],
            "sources": [{"source_ip": s[0], "header_from": s[1], "messages": s[2],
                         "dkim_pass": s[3], "spf_pass": s[4], "dmarc_pass": s[5],
                         "dmarc_fail": s[2] - s[5], "policy_applied": s[6]}
                        for s in sources]})
        return
    if not stored:
        click.echo("no DMARC reports" + (f" for {domain}" if domain else "")
                   + (f" since {since}" if since else ""))
        return
    rows = []
    for r in stored:
        f = r.feedback
        m = f["report_metadata"]
        ok, bad = _row_counts(f)
        rows.append([str(r.id), m["org_name"], m["report_id"], f["policy_published"]["domain"],
                     _date(m["date_range"]["begin"]), _date(m["date_range"]["end"]),
                     str(ok + bad), str(ok), str(bad)])
    click.echo(table(rows, ["ID", "REPORTER", "REPORT-ID", "DOMAIN", "BEGIN (UTC)",
                            "END (UTC)", "MESSAGES", "PASS", "FAIL"]))
    click.echo("")
    click.echo(table([[s[0], s[1], str(s[2]), str(s[5]), str(s[2] - s[5]), str(s[3]),
                       str(s[4]), str(s[6])] for s in sources],
                     ["SOURCE IP", "FROM DOMAIN", "MESSAGES", "DMARC PASS", "DMARC FAIL",
                      "DKIM PASS", "SPF PASS", "QUARANTINED/REJECTED"]))


@dmarc_group.command("report")
@click.argument("report_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def report_command(ctx: click.Context, report_id: str, as_json: bool) -> None:
    """One received DMARC report, by the ID `dmarc reports` shows or by its report id."""
    from kittiwake.cli.common import table

    db = _reports_db(ctx)
    found = db.report(report_id) if db else None
    if db:
        db.close()
    if found is None:
        raise UserError(f"no DMARC report {report_id!r} (see kittiwake dmarc reports)")
    f = found.feedback
    if as_json:
        print_json({"id": found.id, "received_for": found.our_domain,
                    "received": found.received, **f})
        return
    m, p = f["report_metadata"], f["policy_published"]
    click.echo(f"report {m['report_id']} from {m['org_name']} <{m['email']}>")
    click.echo(f"  period: {_date(m['date_range']['begin'])} to"
               f" {_date(m['date_range']['end'])} UTC")
    click.echo(f"  policy: {p['domain']} p={p['p']} sp={p['sp'] or '-'}"
               f" pct={p['pct'] if p['pct'] is not None else '-'}"
               f" adkim={p['adkim'] or '-'} aspf={p['aspf'] or '-'}")
    for error in m["errors"]:
        click.echo(f"  error: {error}")
    rows = []
    for r in f["records"]:
        ev = r["row"]["policy_evaluated"]
        auth = r["auth_results"]
        rows.append([
            r["row"]["source_ip"], str(r["row"]["count"]), ev["disposition"], ev["dkim"],
            ev["spf"], r["identifiers"]["header_from"],
            " ".join(f"{d['domain']}={d['result']}" for d in auth["dkim"]) or "-",
            " ".join(f"{s['domain']}={s['result']}" for s in auth["spf"]) or "-",
            ",".join(x["type"] for x in ev["reasons"]) or "-"])
    click.echo(table(rows, ["SOURCE IP", "COUNT", "DISPOSITION", "DKIM", "SPF", "FROM",
                            "DKIM RESULTS", "SPF RESULTS", "OVERRIDE"]))


@dmarc_group.command("sent")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def sent_command(ctx: click.Context, as_json: bool) -> None:
    """The aggregate reports we sent (RFC 7489 §7.2): per day and policy domain, whether
    the report was queued, and the destinations skipped with why."""
    import datetime as dt

    from kittiwake.cli.common import table

    db = _reports_db(ctx)
    rows = db.sent() if db else []
    if db:
        db.close()
    out = [{"day": dt.datetime.fromtimestamp(day * 86400, dt.UTC).strftime("%Y-%m-%d"),
            "domain": domain, "report_id": rid, "outcome": outcome,
            "skipped": detail.split(",") if detail else [], "at": at}
           for day, domain, rid, outcome, detail, at in rows]
    if as_json:
        print_json({"sent": out})
        return
    if not out:
        click.echo("no DMARC reports sent")
        return
    click.echo(table([[o["day"], o["domain"], o["outcome"], o["report_id"],
                       " ".join(o["skipped"]) or "-"] for o in out],
                     ["DAY (UTC)", "DOMAIN", "OUTCOME", "REPORT-ID", "SKIPPED"]))
