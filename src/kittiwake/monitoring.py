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
    # One gauge per certificate (first name, key type): set when its orders start
    # failing, back to 0 at its next successful order. Retries back off up to 6 hours,
    # so 6 hours of failing is more than a passing outage of the authority or the
    # network; another name set's success does not end it.
    Alert("KittiwakeACMERenewalFailing",
          "kittiwake_acme_certificate_failing_since_timestamp_seconds > 0"
          " and time() - kittiwake_acme_certificate_failing_since_timestamp_seconds"
          " > 6 * 3600",
          "Getting the ACME certificate for {{ $labels.name }} ({{ $labels.key_type }})"
          " keeps failing",
          "kittiwake retries with backoff; the log line \"certificate order failed\" and"
          " `kittiwake status` say why (challenge not reachable on port 80/443, CAA, rate"
          " limit). The current certificate is served until it expires."),
    Alert("KittiwakeACMECertificateExpiring",
          "kittiwake_acme_certificate_expiry_timestamp_seconds - time() < 14 * 86400",
          "The ACME certificate for {{ $labels.name }} ({{ $labels.key_type }}) expires within"
          " 14 days",
          "Renewal starts acme.NAME.renew_before_days (default 30) before expiry, so it has"
          " been failing for days; see KittiwakeACMERenewalFailing, `kittiwake status` and"
          " the log.",
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
    Alert("KittiwakeIMAPAuthenticationFailureSpike",
          'sum by (instance) (increase(kittiwake_imapserver_logins_total'
          '{result=~"badcreds|refused"}[10m])) > 30',
          "Many failed IMAP logins",
          "More than 30 failed LOGIN/AUTHENTICATE attempts in 10 minutes: password guessing,"
          " or a client with an old password."),
    # Scanners cause a steady background of failed handshakes; compare with the day before.
    Alert("KittiwakeTLSHandshakeFailuresRising",
          "sum by (instance, service) (rate(kittiwake_tls_handshake_failures_total[1h]))"
          " > 3 * sum by (instance, service)"
          " (rate(kittiwake_tls_handshake_failures_total[1d] offset 1h))"
          " and sum by (instance, service)"
          " (increase(kittiwake_tls_handshake_failures_total[1h])) > 20",
          "Failed TLS handshakes on {{ $labels.service }} tripled",
          "Clients fail to set up TLS with us far more often than the day before: a changed"
          " certificate, TLS version or cipher settings, or a scan. The reason label of"
          " kittiwake_tls_handshake_failures_total and the log (\"tls handshake failed\")"
          " tell which."),
    Alert("KittiwakeTLSClientsRejectOurCertificate",
          'sum by (instance, service) (increase(kittiwake_tls_handshake_failures_total'
          '{reason="certificate"}[1h])) > 5',
          "Clients reject our certificate on {{ $labels.service }}",
          "TLS clients ended the handshake with a certificate alert: the certificate is"
          " expired, lacks the name they asked for, or its chain is incomplete."
          " `kittiwake status` shows the certificates in use."),
    Alert("KittiwakeTLSReportsShowFailuresToUs",
          'sum by (instance, policy_type) (increase(kittiwake_tlsrpt_received_sessions_total'
          '{result="failed"}[1d])) > 0',
          "TLS reports from other servers count failed sessions to us ({{ $labels.policy_type"
          " }} policy)",
          "Senders could not set up TLS to our MX as our policy demands (sts: MTA-STS, tlsa:"
          " DANE) or at all; with a policy, their mail is not delivered. `kittiwake tlsrpt"
          " reports` shows which hosts and failure types."),
    Alert("KittiwakeResolverFailing",
          'sum by (instance) (rate(kittiwake_dns_queries_total{result=~"timeout|error|SERVFAIL"}'
          "[10m])) > 0.5 * sum by (instance) (rate(kittiwake_dns_queries_total[10m]))"
          " and sum by (instance) (increase(kittiwake_dns_queries_total[10m])) > 10",
          "Most DNS queries fail",
          "More than half of the queries to the resolvers time out or fail: incoming mail"
          " gets temporary errors, deliveries wait. Check dns.resolvers and the resolver.",
          "critical", for_="10m"),
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
