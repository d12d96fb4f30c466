"""The Grafana dashboard in contrib/: valid JSON, and every query names only metrics
that kittiwake registers (so a renamed metric cannot leave an empty panel behind)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

DASHBOARD = Path(__file__).resolve().parent.parent / "contrib" / "grafana" / \
    "kittiwake-dashboard.json"
# Functions, keywords and label names that the metric-name pattern below could catch.
PROMQL_WORDS = {"sum", "by", "rate", "increase", "histogram_quantile", "time", "min", "max",
                "label_values", "le", "without", "on", "ignoring"}


def registered_metric_names() -> set[str]:
    """Every sample name kittiwake's registry exposes, also for series not yet set."""
    from kittiwake import metrics
    from kittiwake.queue.metrics import QueueCollector, QueueSummary
    from kittiwake.server.metrics_http import load_metric_modules

    load_metric_modules()
    families = list(metrics.REGISTRY.collect())
    families += list(QueueCollector(QueueSummary).describe())
    names: set[str] = set()
    for family in families:
        if isinstance(family, CounterMetricFamily) or family.type == "counter":
            names |= {family.name + "_total", family.name + "_created"}
        elif isinstance(family, HistogramMetricFamily) or family.type == "histogram":
            names |= {family.name + s for s in ("_bucket", "_count", "_sum", "_created")}
        else:
            names.add(family.name)
    return names


def panels(dashboard: dict) -> list[dict]:  # type: ignore[type-arg]
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def queries(dashboard: dict) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    """(panel title, PromQL) of every panel target and template variable."""
    out = [(p["title"], t["expr"]) for p in panels(dashboard) for t in p.get("targets", [])]
    for var in dashboard["templating"]["list"]:
        query = var.get("query")
        if isinstance(query, dict):
            # label_values(METRIC, LABEL): the metric is the query, LABEL is no name.
            text = re.sub(r"^label_values\((.*),\s*\w+\)$", r"\1", query["query"])
            out.append((var["name"], text))
    return out


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers not followed by ``(``, outside
    label matchers and strings."""
    text = re.sub(r'"[^"]*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "{}", text)
    text = re.sub(r"\[[^\]]*\]", "[]", text)
    text = re.sub(r"\bby \([^)]*\)", "", text)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        following = text[m.end():m.end() + 1]
        if following == "(" or m.group() in PROMQL_WORDS:
            continue
        names.add(m.group())
    return names


def test_dashboard_is_json_with_panels() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] == "kittiwake" and dashboard["uid"]
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)) > 20
    for panel in panels(dashboard):
        assert panel["type"] == "row" or panel["targets"], panel["title"]


def test_every_query_names_only_registered_metrics() -> None:
    registered = registered_metric_names()
    assert "kittiwake_queue_delivery_attempts_total" in registered
    assert "kittiwake_smtpserver_delivery_duration_seconds_bucket" in registered
    dashboard = json.loads(DASHBOARD.read_text())
    used: set[str] = set()
    for title, expr in queries(dashboard):
        names = metric_names(expr)
        assert names, (title, expr)
        unknown = names - registered
        assert not unknown, f"panel {title!r}: {sorted(unknown)} not registered ({expr})"
        used |= names
    # The dashboard shows each part.
    for prefix in ("kittiwake_smtpserver_", "kittiwake_queue_", "kittiwake_dns_",
                   "kittiwake_tls_certificate_", "kittiwake_dns_dnsbl_", "kittiwake_panic",
                   "kittiwake_acme_", "kittiwake_http_", "kittiwake_http_listener_",
                   "kittiwake_tls_handshake_failures", "kittiwake_junk_", "kittiwake_tlsrpt_",
                   "kittiwake_dns_cache_", "kittiwake_store_group_commit_",
                   "kittiwake_queue_connections", "kittiwake_queue_destination_pauses",
                   "kittiwake_imapserver_notify"):
        assert any(n.startswith(prefix) for n in used), prefix


def test_every_kittiwake_metric_has_a_panel() -> None:
    """A part that adds a metrics module (METRIC_MODULES) also adds its panels."""
    import subprocess
    import sys

    # In a fresh interpreter: other tests in this process register metrics of their own.
    families = set(subprocess.run([sys.executable, "-c", (
        "from kittiwake import metrics\n"
        "from kittiwake.queue.metrics import QueueCollector, QueueSummary\n"
        "from kittiwake.server.metrics_http import load_metric_modules\n"
        "load_metric_modules()\n"
        "for f in [*metrics.REGISTRY.collect(), *QueueCollector(QueueSummary).describe()]:\n"
        "    print(f.name)\n")], capture_output=True, text=True, check=True,
        timeout=60).stdout.split())
    assert "kittiwake_acme_orders" in families and "kittiwake_queue_messages" in families
    dashboard = json.loads(DASHBOARD.read_text())
    used: set[str] = set()
    for _title, expr in queries(dashboard):
        used |= metric_names(expr)
    suffixes = ("", "_total", "_bucket", "_count", "_sum")
    missing = sorted(f for f in families if f.startswith("kittiwake_")
                     and not any(f + s in used for s in suffixes))
    assert not missing, f"no panel shows {missing}: add one in contrib/grafana/make_dashboard.py"


def test_name_extraction_catches_unknown_names() -> None:
    assert metric_names('sum by (le) (rate(kittiwake_x_bucket{a="b"}[5m])) / foo') == {
        "kittiwake_x_bucket", "foo"}
    assert metric_names("time() - process_start_time_seconds{instance=~\"$i\"}") == {
        "process_start_time_seconds"}


def test_dashboard_is_the_generated_one() -> None:
    import subprocess
    import sys

    script = DASHBOARD.parent / "make_dashboard.py"
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out == DASHBOARD.read_text(), f"regenerate: python3 {script} > {DASHBOARD}"


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    """Each query, with Grafana's variables filled in, parses: promtool checks them as
    recording rules."""
    import shutil
    import subprocess

    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: install the Debian package prometheus"
    dashboard = json.loads(DASHBOARD.read_text())
    rules = []
    for i, (_title, expr) in enumerate(queries(dashboard)):
        filled = expr.replace("$__rate_interval", "5m").replace("$instance", ".*")
        rules.append({"record": f"kittiwake:dashboard_query_{i}", "expr": filled})
    path = tmp_path / "queries.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    proc = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(rules)} rules found" in proc.stdout
