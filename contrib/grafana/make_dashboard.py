"""Writes kittiwake-dashboard.json (Grafana) to stdout: the one place to edit the panels.

    python3 contrib/grafana/make_dashboard.py > contrib/grafana/kittiwake-dashboard.json

tests/test_dashboard.py checks that the JSON is this output and that every query names
only metrics kittiwake registers.
"""

from __future__ import annotations

import json
import sys
from typing import Any

SEL = 'instance=~"$instance"'
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def rate(metric: str, by: str, extra: str = "", fn: str = "rate") -> str:
    """``sum by (BY) (FN(METRIC{instance, EXTRA}[$__rate_interval]))``."""
    matchers = SEL + ("," + extra if extra else "")
    return f"sum by ({by}) ({fn}({metric}{{{matchers}}}[$__rate_interval]))"


def quantile(q: float, metric: str, by: str = "") -> str:
    group = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, {rate(metric + '_bucket', group)})"


def gauge(metric: str, extra: str = "") -> str:
    return f"{metric}{{{SEL}{',' + extra if extra else ''}}}"


class Layout:
    """Panels placed left to right, rows of 24 grid units."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = 0
        self.y = 0
        self.height = 0

    def _id(self) -> int:
        return len(self.panels) + 1

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append({"type": "row", "title": title, "id": self._id(),
                            "collapsed": False, "panels": [],
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}})
        self.y += 1

    def _newline(self) -> None:
        if self.x:
            self.y += self.height
        self.x, self.height = 0, 0

    def panel(self, kind: str, title: str, targets: list[tuple[str, str]], *, w: int = 12,
              h: int = 8, unit: str = "short") -> None:
        if self.x + w > 24:
            self._newline()
        self.panels.append({
            "type": kind, "title": title, "id": self._id(), "datasource": DATASOURCE,
            "gridPos": {"h": h, "w": w, "x": self.x, "y": self.y},
            "targets": [{"refId": chr(65 + i), "expr": expr, "legendFormat": legend,
                         "datasource": DATASOURCE}
                        for i, (expr, legend) in enumerate(targets)],
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {},
        })
        self.x += w
        self.height = max(self.height, h)


def build() -> dict[str, Any]:
    d = Layout()
    d.row("Overview")
    d.panel("stat", "Uptime", [(f"time() - {gauge('process_start_time_seconds')}",
                                "{{instance}}")], w=4, h=4, unit="s")
    d.panel("stat", "Panics (24h)", [(f"sum(increase({gauge('kittiwake_panic_total')}[24h]))",
                                      "")], w=4, h=4)
    d.panel("stat", "Queued messages", [(f"sum({gauge('kittiwake_queue_messages')})", "")],
            w=4, h=4)
    d.panel("stat", "Oldest queued message",
            [(f"max({gauge('kittiwake_queue_oldest_message_age_seconds')})", "")],
            w=4, h=4, unit="s")
    d.panel("stat", "On hold", [(f"sum({gauge('kittiwake_queue_held_messages')})", "")],
            w=4, h=4)
    d.panel("stat", "Resolver validates DNSSEC",
            [("min(" + gauge("kittiwake_dns_resolver_dnssec_status", 'status="validates"')
              + ")", "")], w=4, h=4)
    d.panel("table", "Certificate expiry (days)",
            [(f"({gauge('kittiwake_tls_certificate_expiry_timestamp_seconds')} - time())"
              " / 86400", "{{host}}")], h=6, unit="d")
    d.panel("table", "Own IPs on block lists (1 = listed)",
            [(gauge("kittiwake_dns_dnsbl_listed"), "{{ip}} {{zone}}")], h=6)
    d.panel("table", "Unreadable certificate files (1 = unreadable)",
            [(gauge("kittiwake_tls_certificate_unreadable") + " == 1", "{{file}}")],
            w=24, h=4)
    d.panel("stat", "ACME certificate expiring first",
            [(f"min(({gauge('kittiwake_acme_certificate_expiry_timestamp_seconds')} - time())"
              " / 86400)", "")], w=6, h=4, unit="d")
    d.panel("stat", "TLS handshake failures (24h)",
            [(f"sum(increase({gauge('kittiwake_tls_handshake_failures_total')}[24h]))", "")],
            w=6, h=4)
    d.panel("stat", "Mail judged junk or rejected (24h)",
            [("sum(increase(" + gauge("kittiwake_junk_verdicts_total", 'action!="accept"')
              + "[24h]))", "")], w=6, h=4)
    d.panel("stat", "ACME renewal errors (24h)",
            [(f"sum(increase({gauge('kittiwake_acme_renewal_errors_total')}[24h]))", "")],
            w=6, h=4)

    d.row("SMTP server")
    d.panel("timeseries", "Connections",
            [(rate("kittiwake_smtpserver_connections_total", "service, result"),
              "{{service}} {{result}}")], unit="reqps")
    d.panel("timeseries", "Open sessions",
            [(f"sum by (service) ({gauge('kittiwake_smtpserver_open_connections')})",
              "{{service}}")])
    d.panel("timeseries", "Messages received",
            [(rate("kittiwake_smtpserver_messages_total", "service, result"),
              "{{service}} {{result}}")], unit="reqps")
    d.panel("timeseries", "Commands by reply class",
            [(rate("kittiwake_smtpserver_commands_total", "verb, class") + " > 0",
              "{{verb}} {{class}}xx")], unit="reqps")
    d.panel("timeseries", "Time to accept a message (p50, p95)",
            [(quantile(q, "kittiwake_smtpserver_delivery_duration_seconds", "service"),
              f"p{int(q * 100)} {{{{service}}}}") for q in (0.5, 0.95)], unit="s")
    d.panel("timeseries", "AUTH attempts", [
        (rate("kittiwake_smtpserver_auth_total", "mechanism, result") + " > 0",
         "{{mechanism}} {{result}}"),
        (rate("kittiwake_smtpserver_logins_limited_total", "result") + " > 0",
         "login limiter {{result}}")], unit="reqps")
    d.panel("timeseries", "TLS versions and ciphers", [
        (rate("kittiwake_smtpserver_tls_handshakes_total", "version, cipher"),
         "{{version}} {{cipher}}"),
        (rate("kittiwake_tls_handshake_failures_total", "service"),
         "failed {{service}}")], unit="reqps")
    d.panel("timeseries", "SPF and DMARC results", [
        (rate(f"kittiwake_smtpserver_{check}_results_total", "result, dnssec") + " > 0",
         f"{check} {{{{result}}}} dnssec={{{{dnssec}}}}") for check in ("spf", "dmarc")],
        unit="reqps")
    d.panel("timeseries", "DKIM and iprev results", [
        (rate(f"kittiwake_smtpserver_{check}_results_total", "result, dnssec") + " > 0",
         f"{check} {{{{result}}}} dnssec={{{{dnssec}}}}") for check in ("dkim", "iprev")],
        unit="reqps")
    d.panel("timeseries", "DNSBL hits and limit refusals", [
        (rate("kittiwake_smtpserver_dnsbl_hits_total", "zone"), "dnsbl {{zone}}"),
        (rate("kittiwake_smtpserver_ratelimit_refusals_total", "kind"), "limit {{kind}}")],
        w=24, unit="reqps")
    d.panel("timeseries", "Local deliveries into mailboxes",
            [(rate("kittiwake_smtpserver_local_deliveries_total", "result"), "{{result}}")],
            unit="reqps")
    d.panel("timeseries", "Local delivery time (p95)",
            [(quantile(0.95, "kittiwake_smtpserver_local_delivery_duration_seconds"), "p95")],
            unit="s")

    d.row("TLS on our listeners")
    d.panel("timeseries", "TLS handshake failures by service and reason",
            [(rate("kittiwake_tls_handshake_failures_total", "service, reason") + " > 0",
              "{{service}} {{reason}}")], unit="reqps")
    d.panel("timeseries", "HTTPS ClientHello and handshake outcomes",
            [(rate("kittiwake_http_listener_tls_handshakes_total", "result") + " > 0",
              "{{result}}")], unit="reqps")

    d.row("IMAP server")
    d.panel("timeseries", "IMAP sessions", [
        (gauge("kittiwake_imapserver_open_connections"), "{{service}} open"),
        (gauge("kittiwake_imapserver_idle_sessions"), "in IDLE")])
    d.panel("timeseries", "IMAP connections and APPENDed messages", [
        (rate("kittiwake_imapserver_connections_total", "service, result"),
         "{{service}} {{result}}"),
        (rate("kittiwake_imapserver_appended_messages_total", "instance"), "appended")],
        unit="reqps")
    d.panel("timeseries", "IMAP commands", [
        (rate("kittiwake_imapserver_commands_total", "command, status") + " > 0",
         "{{command}} {{status}}")], unit="reqps")
    d.panel("timeseries", "IMAP command time (p95)", [
        (quantile(0.95, "kittiwake_imapserver_command_duration_seconds", "command"),
         "{{command}}")], unit="s")
    d.panel("timeseries", "IMAP FETCH: messages by path, facts by source", [
        (rate("kittiwake_imapserver_fetched_messages_total", "path"), "{{path}} path"),
        (rate("kittiwake_imapserver_fetch_facts_total", "source"), "facts from {{source}}")],
        unit="reqps")
    d.panel("timeseries", "IMAP logins", [
        (rate("kittiwake_imapserver_logins_total", "mechanism, result") + " > 0",
         "{{mechanism}} {{result}}")], unit="reqps")
    d.panel("timeseries", "IMAP NOTIFY sessions", [
        (gauge("kittiwake_imapserver_notify_sessions"), "NOTIFY in force"),
        (rate("kittiwake_imapserver_notify_overflows_total", "instance", fn="increase"),
         "overflows"),
        (rate("kittiwake_imapserver_change_overflows_total", "instance", fn="increase"),
         "sessions closed: not reading")])
    d.panel("timeseries", "IMAP NOTIFY notifications by event", [
        (rate("kittiwake_imapserver_notifications_total", "event") + " > 0", "{{event}}")],
        unit="reqps")

    d.row("Store")
    d.panel("timeseries", "Account operations",
            [(rate("kittiwake_store_operations_total", "op, result") + " > 0",
              "{{op}} {{result}}")], unit="reqps")
    d.panel("timeseries", "Account operation time (p95)",
            [(quantile(0.95, "kittiwake_store_operation_duration_seconds", "op"), "{{op}}")],
            unit="s")
    d.panel("timeseries", "Deliveries per group commit", [
        (quantile(0.5, "kittiwake_store_group_commit_deliveries"), "p50"),
        (quantile(0.95, "kittiwake_store_group_commit_deliveries"), "p95"),
        (rate("kittiwake_store_group_commit_deliveries_sum", "instance") + " / "
         + rate("kittiwake_store_group_commit_deliveries_count", "instance"), "mean")])
    d.panel("timeseries", "Group commit time (p50, p95)",
            [(quantile(q, "kittiwake_store_group_commit_duration_seconds"),
              f"p{int(q * 100)}") for q in (0.5, 0.95)], unit="s")

    d.row("CPU workers")
    d.panel("timeseries", "CPU jobs by where they ran, inline fallbacks", [
        (rate("kittiwake_cpu_jobs_total", "where"), "{{where}}"),
        (rate("kittiwake_cpu_inline_fallbacks_total", "reason") + " > 0",
         "fallback {{reason}}")], w=8, unit="reqps")
    d.panel("timeseries", "CPU job time (p50, p95)",
            [(quantile(q, "kittiwake_cpu_job_duration_seconds"), f"p{int(q * 100)}")
             for q in (0.5, 0.95)], w=8, unit="s")
    d.panel("timeseries", "CPU worker processes, restarts", [
        (gauge("kittiwake_cpu_workers"), "workers {{instance}}"),
        (rate("kittiwake_cpu_worker_restarts_total", "instance", fn="increase"),
         "restarts")], w=8)
    d.panel("timeseries", "SMTP worker processes, restarts", [
        (gauge("kittiwake_smtp_workers"), "smtp workers {{instance}}"),
        (rate("kittiwake_smtp_worker_restarts_total", "instance", fn="increase"),
         "restarts")], w=8)

    d.row("Queue")
    d.panel("timeseries", "Queue size", [
        (gauge("kittiwake_queue_messages"), "messages"),
        (gauge("kittiwake_queue_recipients"), "recipients"),
        (gauge("kittiwake_queue_held_messages"), "held")])
    d.panel("timeseries", "Oldest message age", [
        (gauge("kittiwake_queue_oldest_message_age_seconds"), "queued"),
        (gauge("kittiwake_queue_oldest_held_message_age_seconds"), "on hold")], unit="s")
    d.panel("timeseries", "Delivery attempts",
            [(rate("kittiwake_queue_delivery_attempts_total", "transport, result"),
              "{{transport}} {{result}}")], unit="reqps")
    d.panel("timeseries", "Failing attempts by attempt number",
            [(rate("kittiwake_queue_delivery_attempts_total", "attempt", 'result!="ok"'),
              "attempt {{attempt}}")], unit="reqps")
    d.panel("timeseries", "Delivery duration (p95)",
            [(quantile(0.95, "kittiwake_queue_delivery_duration_seconds", "transport"),
              "{{transport}}")], unit="s")
    d.panel("timeseries", "Outgoing TLS",
            [(rate("kittiwake_queue_tls_connections_total", "policy, result"),
              "{{policy}} {{result}}")], unit="reqps")
    d.panel("timeseries", "DSNs sent",
            [(rate("kittiwake_queue_dsns_sent_total", "kind", fn="increase"), "{{kind}}")])
    d.panel("timeseries", "MTA-STS policy fetches",
            [(rate("kittiwake_mtasts_policy_fetches_total", "result", fn="increase"),
              "{{result}}")])

    d.panel("timeseries", "Outgoing connections: new, reused, retired",
            [(rate("kittiwake_queue_connections_total", "use"), "{{use}}")], unit="reqps")
    d.panel("timeseries", "Destination pauses and paced deferrals", [
        (rate("kittiwake_queue_destination_pauses_total", "instance", fn="increase"),
         "destinations paused"),
        (rate("kittiwake_queue_paced_deferrals_total", "instance", fn="increase"),
         "recipients deferred (paused destination)")])

    d.row("DNS")
    d.panel("timeseries", "Queries by result",
            [(rate("kittiwake_dns_queries_total", "result"), "{{result}}")], unit="reqps")
    d.panel("timeseries", "Query latency (p50, p95)",
            [(quantile(q, "kittiwake_dns_query_duration_seconds"), f"p{int(q * 100)}")
             for q in (0.5, 0.95)], unit="s")
    d.panel("timeseries", "Queries by type",
            [(rate("kittiwake_dns_queries_total", "type"), "{{type}}")], unit="reqps")
    d.panel("timeseries", "Resolver DNSSEC status",
            [(gauge("kittiwake_dns_resolver_dnssec_status") + " == 1", "{{status}}")])
    d.panel("timeseries", "Cache: lookups not sent to the resolver (hit or shared)",
            [(rate("kittiwake_dns_cache_lookups_total", "instance", 'result=~"hit|shared"')
              + " / " + rate("kittiwake_dns_cache_lookups_total", "instance"),
              "{{instance}}")], unit="percentunit")
    d.panel("timeseries", "Cache lookups by result",
            [(rate("kittiwake_dns_cache_lookups_total", "result"), "{{result}}")],
            unit="reqps")

    d.row("Certificates (ACME)")
    d.panel("table", "ACME certificate expiry per name and key type (days)",
            [(f"({gauge('kittiwake_acme_certificate_expiry_timestamp_seconds')} - time())"
              " / 86400", "{{name}} {{key_type}}")], w=24, h=6, unit="d")
    d.panel("timeseries", "ACME orders by result",
            [(rate("kittiwake_acme_orders_total", "authority, result", fn="increase"),
              "{{authority}} {{result}}")])
    d.panel("timeseries", "ACME renewal errors",
            [(rate("kittiwake_acme_renewal_errors_total", "authority", fn="increase"),
              "{{authority}}")])
    d.panel("table", "ACME certificates failing for (hours)",
            [("(time() - ("
              f"{gauge('kittiwake_acme_certificate_failing_since_timestamp_seconds')} > 0))"
              " / 3600", "{{name}} {{key_type}}")], w=24, h=5, unit="h")

    d.row("HTTP")
    d.panel("timeseries", "Content requests by route and status",
            [(rate("kittiwake_http_requests_total", "route, status") + " > 0",
              "{{route}} {{status}}")], unit="reqps")
    d.panel("timeseries", "Content request time (p50, p95)",
            [(quantile(q, "kittiwake_http_request_duration_seconds", "route"),
              f"p{int(q * 100)} {{{{route}}}}") for q in (0.5, 0.95)], unit="s")
    d.panel("timeseries", "Listener requests by service and answer",
            [(rate("kittiwake_http_listener_requests_total", "service, kind") + " > 0",
              "{{service}} {{kind}}")], unit="reqps")
    d.panel("timeseries", "Refused and closed connections", [
        (rate("kittiwake_http_listener_connections_refused_total", "service, limit",
              fn="increase"), "refused {{service}} {{limit}}"),
        (rate("kittiwake_http_listener_slow_requests_closed_total", "service", fn="increase"),
         "slow request head {{service}}"),
        (rate("kittiwake_http_profile_requests_refused_total", "instance", fn="increase"),
         "profile requests refused")])

    d.row("Junk filter")
    d.panel("timeseries", "Verdicts by action and reason",
            [(rate("kittiwake_junk_verdicts_total", "action, reason") + " > 0",
              "{{action}} {{reason}}")], unit="reqps")
    d.panel("timeseries", "Training events",
            [(rate("kittiwake_junk_training_events_total", "class, direction", fn="increase")
              + " > 0", "{{class}} {{direction}}")])
    d.panel("timeseries", "Classify and train time (p95)", [
        (quantile(0.95, "kittiwake_junk_classify_duration_seconds"), "classify p95"),
        (quantile(0.5, "kittiwake_junk_classify_duration_seconds"), "classify p50"),
        (quantile(0.95, "kittiwake_junk_train_duration_seconds"), "train p95")], unit="s")
    d.panel("timeseries", "Rejected messages expunged after retention",
            [(rate("kittiwake_junk_rejects_expunged_total", "instance", fn="increase"),
              "expunged")])

    d.row("Reports")
    d.panel("timeseries", "TLSRPT reports received by outcome",
            [(rate("kittiwake_tlsrpt_reports_received_total", "outcome", fn="increase")
              + " > 0", "{{outcome}}")])
    d.panel("timeseries", "TLS sessions to us in received reports",
            [(rate("kittiwake_tlsrpt_received_sessions_total", "policy_type, result",
                   fn="increase") + " > 0", "{{policy_type}} {{result}}")])
    d.panel("timeseries", "TLSRPT reports sent by method and result",
            [(rate("kittiwake_tlsrpt_reports_sent_total", "method, result", fn="increase")
              + " > 0", "{{method}} {{result}}")])
    d.panel("timeseries", "DMARC reports received by result",
            [(rate("kittiwake_dmarc_reports_received_total", "result", fn="increase")
              + " > 0", "{{result}}"),
             (rate("kittiwake_dmarc_reports_refused_total", "problem", fn="increase")
              + " > 0", "refused: {{problem}}")])
    d.panel("timeseries", "DMARC reports sent by outcome",
            [(rate("kittiwake_dmarc_reports_sent_total", "outcome", fn="increase")
              + " > 0", "{{outcome}}")])
    d.panel("timeseries", "DMARC evaluations recorded for reports",
            [(rate("kittiwake_dmarc_reports_evaluations_recorded_total", "instance"),
              "recorded"),
             (rate("kittiwake_dmarc_reports_evaluations_dropped_total", "instance"),
              "dropped (buffer full)")])

    instance_query = "label_values(kittiwake_panic_total, instance)"
    return {
        "title": "kittiwake", "uid": "kittiwake", "tags": ["kittiwake", "mail"],
        "description": ("kittiwake mail server: SMTP, IMAP, queue, store, DNS, certificates"
                        " (ACME), HTTP, junk filter, TLS reports, block lists."),
        "timezone": "utc", "schemaVersion": 39, "version": 1, "editable": True,
        "refresh": "1m", "time": {"from": "now-24h", "to": "now"},
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus",
             "label": "Data source"},
            {"name": "instance", "type": "query", "label": "Instance", "multi": True,
             "includeAll": True, "datasource": DATASOURCE, "refresh": 2,
             "query": {"query": instance_query, "refId": "instance"},
             "definition": instance_query}]},
        "annotations": {"list": []},
        "panels": d.panels,
    }


if __name__ == "__main__":
    json.dump(build(), sys.stdout, indent=2)
    sys.stdout.write("\n")
