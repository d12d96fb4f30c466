"""Settings of the outgoing queue (to hang in StaticConfig as ``queue``)."""

from __future__ import annotations

from pydantic import Field

from kittiwake.config.base import Section


class QueueConfig(Section):
    """The outgoing queue."""

    concurrency: int = Field(10, ge=1, le=1000)
    """How many destination domains are delivered to at the same time
    (one connection per domain)."""

    history_keep: int = Field(1000, ge=0, le=1_000_000)
    """How many delivered/failed recipients `kittiwake queue list --all` remembers."""

    history_days: float = Field(7.0, ge=0, le=365)
    """How long delivered/failed recipients are remembered, in days."""
