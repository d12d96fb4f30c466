"""Catching unexpected exceptions at the top of a connection or task (DESIGN.md §6).

This forwards to :func:`kittiwake.metrics.panic` once metrics exist; it logs the
traceback with the connection id and counts ``kittiwake_panic_total{origin}``.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("kittiwake.panic")


def panic(origin: str, exc: BaseException) -> None:
    """Log an unexpected exception with its traceback and count it by origin."""
    try:
        from kittiwake import metrics
    except ImportError:  # pragma: no cover - only while metrics is being written
        logger.error("unhandled exception in %s", origin, exc_info=exc)
        return
    metrics.panic(origin, exc)
