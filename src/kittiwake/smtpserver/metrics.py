"""Metrics of the SMTP server (MX and submission), all ``kittiwake_smtpserver_*``.

Every label value that is known in advance starts at 0 (DESIGN.md
"Metrics"). Labels never carry addresses, IPs or message ids: verbs outside
RFC 5321's and its extensions' list count as ``other``, mechanisms outside
the offered list as ``other``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kittiwake import dkim, dmarc, iprev, metrics, spf

if TYPE_CHECKING:
    from kittiwake.smtpserver.incoming import Analysis

SERVICES = ("smtp", "submission", "submissions")

# RFC 5321 §4.1 commands, plus STARTTLS (RFC 3207), AUTH (RFC 4954) and BDAT (RFC 3030).
VERBS = ("HELO", "EHLO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "VRFY", "EXPN", "HELP",
         "NOOP", "QUIT", "STARTTLS", "AUTH", "other")
REPLY_CLASSES = ("2", "3", "4", "5")
MECHANISMS = ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-1",
              "CRAM-MD5", "PLAIN", "LOGIN", "other")
DNSSEC = ("yes", "no")

CONNECTIONS = metrics.counter(
    "smtpserver_connections",
    "SMTP connections by service and how they were received (accepted, or refused by the"
    " per-network connection rate limit).",
    {"service": SERVICES, "result": ("accepted", "refused")})

OPEN_CONNECTIONS = metrics.gauge(
    "smtpserver_open_connections", "SMTP sessions being served now, by service.", ["service"])
for _service in SERVICES:
    OPEN_CONNECTIONS.labels(service=_service).set(0)

COMMANDS = metrics.counter(
    "smtpserver_commands",
    "SMTP commands answered, by verb and reply class (first digit of the reply code).",
    {"verb": VERBS, "class": REPLY_CLASSES})

DELIVERY_SECONDS = metrics.histogram(
    "smtpserver_delivery_duration_seconds",
    "Time from the end of the message data to the final reply (checks, store, queue).",
    ["service"], buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
metrics.preinit(DELIVERY_SECONDS, service=SERVICES)

AUTH = metrics.counter(
    "smtpserver_auth",
    "AUTH attempts by SASL mechanism and result (RFC 4954).",
    {"mechanism": MECHANISMS, "result": ("ok", "badcreds", "malformed", "unsupported",
                                         "refused")})

TLS_HANDSHAKES = metrics.counter(
    "smtpserver_tls_handshakes",
    "TLS sessions started (STARTTLS or implicit TLS) by protocol version and cipher.",
    ["version", "cipher"])

SPF_RESULTS = metrics.counter(
    "smtpserver_spf_results", "SPF verdicts on incoming mail (RFC 7208 §2.6), by DNSSEC.",
    {"result": tuple(str(s) for s in spf.Status), "dnssec": DNSSEC})
DKIM_RESULTS = metrics.counter(
    "smtpserver_dkim_results",
    "DKIM verdicts on incoming mail, one per signature (none: unsigned), by DNSSEC.",
    {"result": tuple(str(s) for s in dkim.Status), "dnssec": DNSSEC})
DMARC_RESULTS = metrics.counter(
    "smtpserver_dmarc_results", "DMARC verdicts on incoming mail (RFC 7489), by DNSSEC.",
    {"result": tuple(str(s) for s in dmarc.Status), "dnssec": DNSSEC})
IPREV_RESULTS = metrics.counter(
    "smtpserver_iprev_results", "iprev verdicts on incoming connections (RFC 8601 §3), by DNSSEC.",
    {"result": tuple(str(s) for s in iprev.Status), "dnssec": DNSSEC})

DNSBL_HITS = metrics.counter(
    "smtpserver_dnsbl_hits",
    "Incoming connections refused because their IP is listed in a configured DNSBL zone.",
    ["zone"])

RATE_LIMITED = metrics.counter(
    "smtpserver_ratelimit_refusals",
    "Requests refused by a limit, by kind: new connections or messages per minute from a"
    " network (connection-rate, message-rate), open connections per IP or in all"
    " (per-ip-connections, total-connections), AUTH attempts by the login limiter (login).",
    {"kind": ("connection-rate", "message-rate", "per-ip-connections", "total-connections",
              "login")})

LOCAL_DELIVERIES = metrics.counter(
    "smtpserver_local_deliveries",
    "Deliveries of a received message into a local account's mailbox, by result"
    " (delivered, overquota, failed: a store or disk error).",
    {"result": ("delivered", "overquota", "failed")})

LOCAL_DELIVERY_SECONDS = metrics.histogram(
    "smtpserver_local_delivery_duration_seconds",
    "Time to store a message in one mailbox (file written and synced, row committed).",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))


def verb_label(verb: str) -> str:
    """The ``verb`` label of a command: one of :data:`VERBS`."""
    upper = verb.upper()
    return upper if upper in VERBS else "other"


def mechanism_label(mechanism: str) -> str:
    upper = mechanism.upper()
    return upper if upper in MECHANISMS else "other"


def dnssec_label(authentic: bool) -> str:
    return "yes" if authentic else "no"


_COMMAND_CHILDREN: dict[tuple[str, int], Any] = {}  # (verb label, code class) -> child


def count_replies(replies: list[tuple[str, int]]) -> None:
    """Count ``(verb, code)`` pairs the protocol session sent and clear the list (the
    counters' children are looked up once: ``labels()`` takes a lock each time)."""
    for verb, code in replies:
        key = (verb_label(verb), code // 100)  # bounded: client verbs map to VERBS
        child = _COMMAND_CHILDREN.get(key)
        if child is None:
            cls = str(key[1])
            if cls not in REPLY_CLASSES:
                continue
            child = _COMMAND_CHILDREN[key] = COMMANDS.labels(verb=key[0], **{"class": cls})
        child.inc()
    replies.clear()


def preinit_zones(zones: list[str]) -> None:
    """Create the DNSBL hit counters of the configured zones at 0."""
    for zone in zones:
        DNSBL_HITS.labels(zone=zone)


def count_analysis(analysis: Analysis) -> None:
    """Count the SPF, DKIM, DMARC and iprev verdicts of one incoming message."""
    if analysis.iprev is not None:
        metrics.child(IPREV_RESULTS, str(analysis.iprev.status),
                      dnssec_label(analysis.iprev.authentic)).inc()
    if analysis.spf is not None:
        metrics.child(SPF_RESULTS, str(analysis.spf.status),
                      dnssec_label(analysis.spf.authentic)).inc()
    if not analysis.dkim:
        metrics.child(DKIM_RESULTS, str(dkim.Status.NONE), "no").inc()
    for result in analysis.dkim:
        metrics.child(DKIM_RESULTS, str(result.status), dnssec_label(result.authentic)).inc()
    if analysis.dmarc is not None:
        metrics.child(DMARC_RESULTS, str(analysis.dmarc.status),
                      dnssec_label(analysis.dmarc.authentic)).inc()


# Messages accepted per service since midnight UTC (for ``kittiwake status``).
TODAY = metrics.DayCounts(SERVICES)
