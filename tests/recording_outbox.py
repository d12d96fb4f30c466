"""The outgoing queue as the SMTP server sees it, recording what was enqueued.

Both ways in end up as one dict per call with the message as ``data`` (a
spooled message is read back), so a test looks at what the queue would send.
"""

from __future__ import annotations


class RecordingOutbox:
    def __init__(self, sink: list[dict[str, object]] | None = None) -> None:
        self.sink: list[dict[str, object]] = [] if sink is None else sink

    async def enqueue(self, **kwargs: object) -> list[int]:
        self.sink.append(kwargs)
        return [len(self.sink)]

    async def enqueue_spooled(self, **kwargs: object) -> list[int]:
        message = kwargs.pop("message")
        kwargs["data"] = message.read()  # type: ignore[attr-defined]
        return await self.enqueue(**kwargs)
