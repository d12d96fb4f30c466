"""Delivery Status Notifications for the outgoing queue (RFC 3464, RFC 3461, RFC 6522, RFC 6533).

    sender = DSNSender(hostname=..., store=store, queue=queue, index=lambda: current_index)
    scheduler = Scheduler(queue, deliver, on_recorded=sender.on_recorded)
    register_control(control, queue, on_dropped=sender.on_dropped)
    await sender.send_pending_delays()         # at start: "delayed" notices still owed

:func:`compose` builds a DSN message (pure); :class:`DSNSender` decides and
delivers: a local sender gets it in the Inbox, a remote one through the
queue with ``MAIL FROM:<>``.
"""

from kittiwake.dsn.compose import DSN, MAX_ORIGINAL_BODY, SUBJECTS, compose, human_text
from kittiwake.dsn.report import Action, RecipientReport, delivery_status, wants_notice

__all__ = [
    "DSN", "MAX_ORIGINAL_BODY", "SUBJECTS", "Action", "RecipientReport", "compose",
    "delivery_status", "human_text", "wants_notice",
]
