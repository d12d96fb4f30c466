"""Prometheus alerting rules for kittiwake, as data (``kittiwake config describe-alerts``).

:data:`ALERTS` is the one source: :func:`alert_rules_yaml` renders it in
Prometheus' rule file format, and ``contrib/prometheus/kittiwake-alerts.yml``
is that output (a test keeps the two equal, and checks each rule with
``promtool check rules`` and ``promtool test rules``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    summary: str
    description: str
    severity: str = "warning"
    for_: str = ""


ALERTS: tuple[Alert, ...] = (
    Alert("KittiwakePanic",
          "increase(kittiwake_panic_total[15m]) > 0",
          "kittiwake caught an unexpected error in {{ $labels.origin }}",
          "An exception reached the top of a connection or task ({{ $labels.origin }});"
          " the log has the traceback. Please report it.",
          "critical"),
    Alert("KittiwakeDeliveriesFailingFromFourthAttempt",
          'sum by (instance, transport) (increase(kittiwake_queue_delivery_attempts_total'
          '{attempt="4+",result!="ok"}[1h])) > 0',
          "Deliveries keep failing after 3 attempts ({{ $labels.transport }})",
          "Recipients were tried a 4th time or more and failed again: a remote domain is"
          " down or refuses us. `kittiwake status` and `kittiwake queue list` show which."),
    Alert("KittiwakeMessagesOnHold",
          "kittiwake_queue_oldest_held_message_age_seconds > 3 * 3600",
          "A message has been on hold for over 3 hours",
          "Held messages are not delivered until released (`kittiwake queue release`)."),
    Alert("KittiwakeQueueOldestMessageOverADay",
          "kittiwake_queue_oldest_message_age_seconds > 86400",
          "The oldest queued message is over a day old",
          "Senders have been (or soon are) told their message is delayed."),
    Alert("KittiwakeCertificateExpiringSoon",
          "kittiwake_tls_certificate_expiry_timestamp_seconds - time() < 14 * 86400",
          "The certificate for {{ $labels.host }} expires within 14 days",
          "Renew it and restart kittiwake; after expiry, TLS clients and senders with"
          " DANE or MTA-STS refuse to connect.",
          "critical"),
    Alert("KittiwakeCertificateUnreadable",
          "kittiwake_tls_certificate_unreadable == 1",
          "A configured certificate file cannot be read: {{ $labels.file }}",
          "A renewed certificate may have been written wrongly; kittiwake keeps serving the"
          " one it loaded at start until then.",
          "critical"),
    Alert("KittiwakeACMERenewalFailing",
          "increase(kittiwake_acme_renewal_errors_total[3h]) > 1",
          "Getting a certificate from ACME authority {{ $labels.authority }} keeps failing",
          "kittiwake retries with backoff; the log line \"certificate order failed\" says"
          " why (challenge not reachable on port 80/443, CAA, rate limit). The current"
          " certificate is served until it expires."),
    Alert("KittiwakeACMECertificateExpiring",
          "kittiwake_acme_certificate_expiry_timestamp_seconds - time() < 20 * 86400",
          "The ACME certificate for {{ $labels.name }} ({{ $labels.key_type }}) expires within"
          " 20 days",
          "Renewal starts 30 days before expiry (acme.NAME.renew_before_days), so it has been"
          " failing for days; see KittiwakeACMERenewalFailing and the log.",
          "critical"),
    Alert("KittiwakeIPOnBlocklist",
          "kittiwake_dns_dnsbl_listed == 1",
          "Our IP {{ $labels.ip }} is listed in {{ $labels.zone }}",
          "Receivers using this block list refuse our mail. Find out why (open relay,"
          " compromised account) and request delisting.",
          "critical"),
    Alert("KittiwakeResolverNotValidatingDNSSEC",
          'kittiwake_dns_resolver_dnssec_status{status="validates"} == 0',
          "The DNS resolver does not validate DNSSEC",
          "DANE and DNSSEC-backed SPF/DKIM/DMARC results are off. Use a validating"
          " resolver (e.g. unbound) in dns.resolvers or /etc/resolv.conf.",
          for_="30m"),
    Alert("KittiwakeTLSFailuresToPolicyDomains",
          'sum by (instance, policy) (increase(kittiwake_queue_tls_connections_total'
          '{policy=~"dane|mtasts",result="failure"}[1h])) > 0',
          "Outgoing TLS failed for domains with a {{ $labels.policy }} policy",
          "Mail to those domains is not delivered until TLS verifies; check the TLSRPT"
          " results and our own TLS trust store."),
    Alert("KittiwakeAuthenticationFailureSpike",
          'sum by (instance) (increase(kittiwake_smtpserver_auth_total'
          '{result=~"badcreds|refused"}[10m])) > 30',
          "Many failed SMTP logins",
          "More than 30 failed AUTH attempts in 10 minutes: password guessing, or a client"
          " with an old password."),
)


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted one


def alert_rules_yaml() -> str:
    """The rules as a Prometheus rule file (YAML)."""
    lines = [
        "# Prometheus alerting rules for kittiwake.",
        "# Generated by `kittiwake config describe-alerts`; do not edit by hand.",
        "groups:",
        "  - name: kittiwake",
        "    rules:",
    ]
    for a in ALERTS:
        lines.append(f"      - alert: {a.name}")
        lines.append(f"        expr: {_quote(a.expr)}")
        if a.for_:
            lines.append(f"        for: {a.for_}")
        lines.append("        labels:")
        lines.append(f"          severity: {a.severity}")
        lines.append("        annotations:")
        lines.append(f"          summary: {_quote(a.summary)}")
        lines.append(f"          description: {_quote(a.description)}")
    return "\n".join(lines) + "\n"
