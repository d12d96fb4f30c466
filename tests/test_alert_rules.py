"""The shipped alerting rules: generated from kittiwake.monitoring, valid for promtool,
and each alert unit-tested with synthetic series (`promtool test rules`).

contrib/prometheus/kittiwake-alerts.test.yml is rendered from CASES below; after
changing either, regenerate both with ``KITTIWAKE_REGEN=1 pytest tests/test_alert_rules.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from kittiwake.monitoring import ALERTS, alert_rules_yaml

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "contrib" / "prometheus" / "kittiwake-alerts.yml"
RULE_TESTS = ROOT / "contrib" / "prometheus" / "kittiwake-alerts.test.yml"
REGEN = os.environ.get("KITTIWAKE_REGEN") == "1"


@dataclass
class Case:
    """Series (name{labels} -> promtool values, 1m apart); when it must fire with which
    labels, and when it must not."""

    alert: str
    series: dict[str, str]
    fires_at: str
    fired: list[dict[str, str]]
    quiet_at: str
    extra: dict[str, str] = field(default_factory=dict)
    also_quiet: list[str] = field(default_factory=list)


INST = 'instance="mx1"'
CASES = [
    Case("KittiwakePanic", {f'kittiwake_panic_total{{{INST},origin="queue"}}': "0x10 1x20"},
         "15m", [{"instance": "mx1", "origin": "queue"}], "5m"),
    Case("KittiwakeDeliveriesFailingFromFourthAttempt", {
        f'kittiwake_queue_delivery_attempts_total{{{INST},transport="direct",attempt="4+",'
        'result="temporary"}': "0x30 1x30",
        f'kittiwake_queue_delivery_attempts_total{{{INST},transport="direct",attempt="3",'
        'result="temporary"}': "0+1x60",
        f'kittiwake_queue_delivery_attempts_total{{{INST},transport="relay",attempt="4+",'
        'result="ok"}': "0+1x60"},
         "45m", [{"instance": "mx1", "transport": "direct"}], "25m"),
    Case("KittiwakeMessagesOnHold",
         {f"kittiwake_queue_oldest_held_message_age_seconds{{{INST}}}": "10560+60x10"},
         "5m", [{"instance": "mx1"}], "1m"),
    Case("KittiwakeQueueOldestMessageOverADay",
         {f"kittiwake_queue_oldest_message_age_seconds{{{INST}}}": "86280+60x10"},
         "5m", [{"instance": "mx1"}], "1m"),
    # time() is 0 at the start of a promtool test: expiry 15 days out, then 13 days.
    Case("KittiwakeCertificateExpiringSoon", {
        f'kittiwake_tls_certificate_expiry_timestamp_seconds{{{INST},host="mail.example.org"}}':
            "1296000x5 1123200x5",
        f'kittiwake_tls_certificate_expiry_timestamp_seconds{{{INST},host="other.example.org"}}':
            "7776000x10"},
         "8m", [{"instance": "mx1", "host": "mail.example.org"}], "2m"),
    Case("KittiwakeCertificateUnreadable", {
        f'kittiwake_tls_certificate_unreadable{{{INST},file="/etc/kittiwake/cert.pem"}}':
            "0x5 1x5"},
         "7m", [{"instance": "mx1", "file": "/etc/kittiwake/cert.pem"}], "3m"),
    # time() is 0 at the start. mail.example.org's RSA orders fail from 1h on (the gauge
    # holds 3600) until one succeeds at 2300m: the alert fires once they have failed
    # for 6 hours (7h), not before (6h), and ends at the success (39h). The ECDSA
    # certificate of other.example.org fails once and succeeds 10 minutes later: no
    # alert, and its success does not end the other's.
    Case("KittiwakeACMERenewalFailing", {
        f'kittiwake_acme_certificate_failing_since_timestamp_seconds{{{INST},'
        'name="mail.example.org",key_type="rsa"}': "0x59 3600x2240 0x100",
        f'kittiwake_acme_certificate_failing_since_timestamp_seconds{{{INST},'
        'name="other.example.org",key_type="ecdsa"}': "0x59 3600x10 0x2300"},
         "8h", [{"instance": "mx1", "name": "mail.example.org", "key_type": "rsa"}], "39h",
         also_quiet=["6h", "65m"]),
    # time() is 0 at the start: expiry 15 days out, then 13 days.
    Case("KittiwakeACMECertificateExpiring", {
        f'kittiwake_acme_certificate_expiry_timestamp_seconds{{{INST},name="mail.example.org",'
        'key_type="rsa"}': "1296000x5 1123200x5",
        f'kittiwake_acme_certificate_expiry_timestamp_seconds{{{INST},name="mail.example.org",'
        'key_type="ecdsa"}': "7776000x10"},
         "8m", [{"instance": "mx1", "name": "mail.example.org", "key_type": "rsa"}], "2m"),
    Case("KittiwakeIPOnBlocklist", {
        f'kittiwake_dns_dnsbl_listed{{{INST},ip="192.0.2.10",zone="bl.example"}}': "0x5 1x5",
        f'kittiwake_dns_dnsbl_listed{{{INST},ip="192.0.2.11",zone="bl.example"}}': "0x10"},
         "7m", [{"instance": "mx1", "ip": "192.0.2.10", "zone": "bl.example"}], "3m"),
    Case("KittiwakeResolverNotValidatingDNSSEC", {
        f'kittiwake_dns_resolver_dnssec_status{{{INST},status="validates"}}': "1x10 0x60",
        f'kittiwake_dns_resolver_dnssec_status{{{INST},status="not-validating"}}': "0x10 1x60"},
         "50m", [{"instance": "mx1", "status": "validates"}], "30m"),
    Case("KittiwakeTLSFailuresToPolicyDomains", {
        f'kittiwake_queue_tls_connections_total{{{INST},policy="dane",result="failure"}}':
            "0x30 2x30",
        f'kittiwake_queue_tls_connections_total{{{INST},policy="opportunistic",'
        'result="failure"}': "0+1x60",
        f'kittiwake_queue_tls_connections_total{{{INST},policy="mtasts",result="success"}}':
            "0+1x60"},
         "40m", [{"instance": "mx1", "policy": "dane"}], "20m"),
    Case("KittiwakeAuthenticationFailureSpike", {
        f'kittiwake_smtpserver_auth_total{{{INST},mechanism="PLAIN",result="badcreds"}}':
            "0+1x20 20+10x20",
        f'kittiwake_smtpserver_auth_total{{{INST},mechanism="LOGIN",result="refused"}}':
            "0+1x40",
        f'kittiwake_smtpserver_auth_total{{{INST},mechanism="PLAIN",result="ok"}}': "0+100x40"},
         "35m", [{"instance": "mx1"}], "15m"),
    Case("KittiwakeIMAPAuthenticationFailureSpike", {
        f'kittiwake_imapserver_logins_total{{{INST},mechanism="PLAIN",result="badcreds"}}':
            "0+1x20 20+10x20",
        f'kittiwake_imapserver_logins_total{{{INST},mechanism="PLAIN",result="ok"}}':
            "0+100x40"},
         "35m", [{"instance": "mx1"}], "15m"),
    # smtp: one failure per 10 minutes for a day, then 2 a minute; imaps: 2 a minute all
    # along (a steady scanner), never "rising".
    Case("KittiwakeTLSHandshakeFailuresRising", {
        f'kittiwake_tls_handshake_failures_total{{{INST},service="smtp",reason="closed"}}':
            "0+0.1x1440 144+2x120",
        f'kittiwake_tls_handshake_failures_total{{{INST},service="smtp",reason="version"}}':
            "0x1560",
        f'kittiwake_tls_handshake_failures_total{{{INST},service="imaps",reason="closed"}}':
            "0+2x1560"},
         "1500m", [{"instance": "mx1", "service": "smtp"}], "1440m"),
    Case("KittiwakeTLSClientsRejectOurCertificate", {
        f'kittiwake_tls_handshake_failures_total{{{INST},service="submissions",'
        'reason="certificate"}': "0x30 0+1x30",
        f'kittiwake_tls_handshake_failures_total{{{INST},service="smtp",reason="closed"}}':
            "0+5x60"},
         "50m", [{"instance": "mx1", "service": "submissions"}], "33m"),
    Case("KittiwakeTLSReportsShowFailuresToUs", {
        f'kittiwake_tlsrpt_received_sessions_total{{{INST},policy_type="sts",'
        'result="failed"}': "0x60 3x60",
        f'kittiwake_tlsrpt_received_sessions_total{{{INST},policy_type="sts",'
        'result="successful"}': "0x60 118x60",
        f'kittiwake_tlsrpt_received_sessions_total{{{INST},policy_type="tlsa",'
        'result="failed"}': "0x120"},
         "90m", [{"instance": "mx1", "policy_type": "sts"}], "50m"),
    # 20 queries a minute; from 30m on, 15 of them time out.
    Case("KittiwakeResolverFailing", {
        f'kittiwake_dns_queries_total{{{INST},type="MX",result="NOERROR"}}':
            "0+20x30 600+5x40",
        f'kittiwake_dns_queries_total{{{INST},type="MX",result="timeout"}}':
            "0x30 0+15x40"},
         "55m", [{"instance": "mx1"}], "42m"),
]


def _annotations(alert: str, labels: dict[str, str]) -> dict[str, str]:
    rule = next(a for a in ALERTS if a.name == alert)

    def expand(text: str) -> str:
        return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], text)

    return {"summary": expand(rule.summary), "description": expand(rule.description)}


def render_tests() -> str:
    severity = {a.name: a.severity for a in ALERTS}
    tests = []
    for case in CASES:
        fired = [{"exp_labels": {**labels, "severity": severity[case.alert]},
                  "exp_annotations": _annotations(case.alert, labels)}
                 for labels in case.fired]
        tests.append({
            "interval": "1m",
            "input_series": [{"series": s, "values": v} for s, v in case.series.items()],
            "alert_rule_test": [
                *({"eval_time": t, "alertname": case.alert, "exp_alerts": []}
                  for t in (case.quiet_at, *case.also_quiet)),
                {"eval_time": case.fires_at, "alertname": case.alert, "exp_alerts": fired},
            ],
        })
    doc = {"rule_files": [RULES.name], "evaluation_interval": "1m", "tests": tests}
    header = ("# promtool test rules kittiwake-alerts.test.yml: every alert with synthetic"
              " series.\n# Generated by tests/test_alert_rules.py; do not edit by hand.\n")
    return header + json.dumps(doc, indent=2) + "\n"  # JSON is YAML


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool missing: install the Debian package prometheus"
    return path


if REGEN:
    RULES.write_text(alert_rules_yaml())
    RULE_TESTS.write_text(render_tests())


def test_contrib_rules_are_the_generated_ones() -> None:
    assert RULES.read_text() == alert_rules_yaml(), "regenerate: KITTIWAKE_REGEN=1"
    assert RULE_TESTS.read_text() == render_tests(), "regenerate: KITTIWAKE_REGEN=1"


def test_describe_alerts_prints_the_rules() -> None:
    out = subprocess.run([sys.executable, "-m", "kittiwake.cli.main", "config",
                          "describe-alerts"], capture_output=True, text=True, check=True,
                         timeout=60).stdout
    assert out == RULES.read_text()
    names = [r["alert"] for r in yaml.safe_load(out)["groups"][0]["rules"]]
    assert names == [a.name for a in ALERTS]


def test_promtool_check_rules() -> None:
    proc = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in proc.stdout


def test_every_alert_has_a_unit_test() -> None:
    assert sorted(c.alert for c in CASES) == sorted(a.name for a in ALERTS)


def test_promtool_test_rules() -> None:
    proc = subprocess.run([promtool(), "test", "rules", RULE_TESTS.name],
                          capture_output=True, text=True, timeout=120, cwd=RULE_TESTS.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr


@pytest.mark.parametrize("alert", [a.name for a in ALERTS])
def test_rules_name_only_registered_metrics(alert: str) -> None:
    from tests.test_dashboard import registered_metric_names

    expr = next(a.expr for a in ALERTS if a.name == alert)
    used = set(re.findall(r"kittiwake_[a-z0-9_]+", expr))
    assert used and used <= registered_metric_names(), used - registered_metric_names()
