"""The durable outgoing queue: storage, retry schedule, scheduling, management.

    queue = Queue(data_dir)                      # data_dir/queue/index.db + msg/
    scheduler = Scheduler(queue, deliver)        # deliver(batch) -> [DeliveryResult]
    scheduler.start()
    await queue.enqueue(envelope, data)          # durable: now answer 250
    ...
    await scheduler.close(grace)

Retries follow :mod:`kittiwake.queue.schedule`; DSNs (RFC 3464) and the SMTP
client are built on top (``Recorded.finished``, ``needs_delay_dsn``).
"""

from kittiwake.queue.config import QueueConfig
from kittiwake.queue.model import (
    Batch,
    DeliveryError,
    DeliveryResult,
    Dropped,
    Envelope,
    Filter,
    HoldRule,
    MessageNotFound,
    NewRecipient,
    Outcome,
    QueuedMessage,
    QueueError,
    Recipient,
    Recorded,
    Retired,
    Status,
)
from kittiwake.queue.queue import Queue
from kittiwake.queue.schedule import DELAY_DSN_AFTER, MAX_ATTEMPTS, schedule
from kittiwake.queue.scheduler import Deliver, Scheduler
from kittiwake.queue.store import QueueStore

__all__ = [
    "DELAY_DSN_AFTER", "MAX_ATTEMPTS", "Batch", "Deliver", "DeliveryError", "DeliveryResult",
    "Dropped", "Envelope", "Filter", "HoldRule", "MessageNotFound", "NewRecipient", "Outcome",
    "Queue", "QueueConfig", "QueueError", "QueueStore", "QueuedMessage", "Recipient",
    "Recorded", "Retired", "Scheduler", "Status", "schedule",
]
