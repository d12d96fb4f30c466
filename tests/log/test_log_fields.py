"""Lines that used to carry their values inside the message now come out as logfmt fields."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from kittiwake.queue import (
    Batch,
    DeliveryError,
    DeliveryResult,
    Envelope,
    NewRecipient,
    Outcome,
    Queue,
    Scheduler,
)


async def _deliver_once(tmp_path: Path, outcome: Outcome, error: DeliveryError | None) -> int:
    """Queue one message to two recipients and let the scheduler deliver it once."""

    async def deliver(batch: Batch) -> Sequence[DeliveryResult]:
        return [DeliveryResult(r.id, outcome, error) for r in batch.recipients]

    queue = Queue(tmp_path)
    scheduler = Scheduler(queue, deliver)
    try:
        message = await queue.enqueue(Envelope(
            mail_from="alice@example.org",
            recipients=(NewRecipient("bob@remote.example"), NewRecipient("carol@remote.example"))),
            b"Subject: hi\r\n\r\nhello\r\n")
        assert await scheduler.dispatch() == 1
        await scheduler.wait_idle()
    finally:
        await scheduler.close()
        queue.close()
    return message.id


async def test_queue_delivery_line_is_fields(logs, tmp_path: Path) -> None:
    logs.setup("info")
    error = DeliveryError(451, "4.3.0", 'greylisted, "try again" later', "mx.remote.example")
    message_id = await _deliver_once(tmp_path, Outcome.TEMPORARY, error)
    [line] = [r for r in logs.records() if r["pkg"] == "queue"]
    del line["t"]
    assert line == {
        "level": "info", "pkg": "queue", "msg": "delivery attempt",
        "message": str(message_id), "domain": "remote.example", "recipients": "2",
        "outcome": "temporary", "error": '451 4.3.0 greylisted, "try again" later',
    }


async def test_queue_delivery_line_without_error_has_no_error_field(logs, tmp_path: Path) -> None:
    logs.setup("info", format="json")
    message_id = await _deliver_once(tmp_path, Outcome.OK, None)
    [line] = [r for r in logs.records() if r["pkg"] == "queue"]
    assert line["msg"] == "delivery attempt"
    assert (line["message"], line["recipients"], line["outcome"]) == (message_id, 2, "ok")
    assert "error" not in line


def test_levels_per_package_reach_the_converted_loggers(logs) -> None:
    """``[log] packages`` names packages; the loggers of the converted modules are theirs."""
    import logging

    from kittiwake.message import part
    from kittiwake.queue import deliver, direct, scheduler
    from kittiwake.queue import notices as sender

    logs.setup("info", {"queue": "debug", "message": "error"})
    for module in (scheduler, direct, deliver):
        assert module.logger.name == "kittiwake.queue"
        assert module.logger.is_enabled("debug")
    assert part.logger.name == "kittiwake.message" and not part.logger.is_enabled("warn")
    assert sender.logger.name == "kittiwake.dsn" and not sender.logger.is_enabled("debug")
    assert logging.getLogger("kittiwake.queue").getEffectiveLevel() == logging.DEBUG
