"""Metrics of the IMAP server, all ``kittiwake_imapserver_*``.

Label values are known in advance and start at 0 (DESIGN.md "Metrics"):
commands are the names of RFC 9051 and its extensions' commands (``other``
for none), never mailbox names, accounts or addresses.
"""

from __future__ import annotations

from kittiwake import metrics
from kittiwake.imap.notify import EVENTS
from kittiwake.imap.server import ALLOWED
from kittiwake.store import metrics as store_metrics

SERVICES = ("imap", "imaps")
COMMAND_NAMES = (*sorted({cls.NAME for cls in ALLOWED}), "other")
STATUSES = ("OK", "NO", "BAD")
MECHANISMS = ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-1",
              "CRAM-MD5", "PLAIN", "LOGIN", "other")

CONNECTIONS = metrics.counter(
    "imapserver_connections",
    "IMAP connections by service and whether they were accepted or refused by a limit.",
    {"service": SERVICES, "result": ("accepted", "refused")})

OPEN_CONNECTIONS = metrics.gauge(
    "imapserver_open_connections", "IMAP sessions being served now, by service.", ["service"])
for _service in SERVICES:
    OPEN_CONNECTIONS.labels(service=_service).set(0)

IDLE_SESSIONS = metrics.gauge(
    "imapserver_idle_sessions", "IMAP sessions in IDLE now (RFC 2177).")

COMMANDS = metrics.counter(
    "imapserver_commands",
    "IMAP commands answered, by command and tagged status.",
    {"command": COMMAND_NAMES, "status": STATUSES})

COMMAND_SECONDS = metrics.histogram(
    "imapserver_command_duration_seconds",
    "Time to answer an IMAP command (IDLE excluded), by command.",
    ["command"], buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
metrics.preinit(COMMAND_SECONDS, command=COMMAND_NAMES)

LOGINS = metrics.counter(
    "imapserver_logins",
    "LOGIN and AUTHENTICATE attempts by mechanism (LOGIN counts as PLAIN) and result.",
    {"mechanism": MECHANISMS, "result": ("ok", "badcreds", "malformed", "refused")})

APPENDED = metrics.counter(
    "imapserver_appended_messages", "Messages stored by APPEND (each of a MULTIAPPEND).")


def command_label(name: str) -> str:
    return name if name in COMMAND_NAMES else "other"


def mechanism_label(name: str) -> str:
    return name if name in MECHANISMS else "other"

NOTIFY_SESSIONS = metrics.gauge(
    "imapserver_notify_sessions", "IMAP sessions with a NOTIFY SET in force now (RFC 5465).")

NOTIFICATIONS = metrics.counter(
    "imapserver_notifications",
    "Changes told to NOTIFY sessions unasked (RFC 5465 §5), by event type; the selected "
    "mailbox's EXISTS/EXPUNGE/FETCH count as MessageNew only for fetched new messages.",
    {"event": tuple(e for e in EVENTS if e != "AnnotationChange")})

CHANGE_OVERFLOWS = metrics.counter(
    "imapserver_change_overflows",
    "Sessions ended with BYE because changes piled up while the client did not read.")

NOTIFY_OVERFLOWS = metrics.counter(
    "imapserver_notify_overflows",
    "NOTIFY sessions switched off with NOTIFICATIONOVERFLOW (RFC 5465 §5.8).")

FETCHED = metrics.counter(
    "imapserver_fetched_messages",
    "FETCH responses written, by path: fast (kittiwake.imapserver.fastfetch) or general.",
    {"path": ("fast", "general")})

FETCH_FACTS = metrics.counter(
    "imapserver_fetch_facts",
    "Facts of messages (ENVELOPE, BODYSTRUCTURE, header octets) the FETCH fast path took,"
    " by where from: memory, the store's message cache, or made from the part tree.",
    {"source": ("memory", "store", "made")})

# Account operations only the IMAP server asks for, which the store's own list
# (kittiwake.store.metrics.OPERATIONS) does not start at 0: started here, so that
# kittiwake_store_operations_total{op="text_matches"} (SEARCH TEXT/BODY by the
# full-text index) and the others are there before their first use.
STORE_OPERATIONS = ("text_matches", "selection", "subscriptions", "total_size",
                    "update_flags", "get_metadata", "set_metadata")
metrics.preinit(store_metrics.OPERATIONS_TOTAL, op=STORE_OPERATIONS, result=("ok", "error"))
metrics.preinit(store_metrics.OPERATION_SECONDS, op=STORE_OPERATIONS)
