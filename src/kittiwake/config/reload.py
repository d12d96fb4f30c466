"""Watching domains.conf and reloading it while the server runs.

The file is polled (inode, size, mtime) once a second; a changed file is
loaded and validated; a valid one replaces the current configuration and
the listeners are told, an invalid one is logged with every problem and
the previous configuration stays in force.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kittiwake.config.domains import DomainsConfig
from kittiwake.config.load import DOMAINS_FILE, ConfigError, cross_checks, load_domains
from kittiwake.log import get_logger
from kittiwake.tasks import cancel_and_wait

logger = get_logger("config")


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class DomainsWatcher:
    """Keeps ``current`` in step with domains.conf."""

    def __init__(self, config_dir: Path, current: DomainsConfig, interval: float = 1.0,
                 static: Any = None) -> None:
        self.static = static  # to check routes against its transports
        self.config_dir = config_dir
        self.path = config_dir / DOMAINS_FILE
        self.current = current
        self.interval = interval
        self._stamp = _stamp(self.path)
        self._listeners: list[Callable[[DomainsConfig], None]] = []
        self._task: asyncio.Task[None] | None = None

    def subscribe(self, callback: Callable[[DomainsConfig], None]) -> None:
        """Call ``callback(new_config)`` after each successful reload."""
        self._listeners.append(callback)

    def check(self) -> bool:
        """Reload if the file changed; True when a new config was taken."""
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            new = load_domains(self.config_dir)
            if self.static is not None:
                # Routes must name transports, postmaster_account an account.
                problems = cross_checks(self.config_dir, self.static, new)
                if problems:
                    raise ConfigError(problems)
        except ConfigError as exc:
            for problem in exc.problems:
                logger.error("domains.conf not reloaded", problem=problem)
            return False
        self.current = new
        logger.info("domains.conf reloaded", domains=len(new.domains),
                    accounts=len(new.accounts))
        for callback in self._listeners:
            callback(new)
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.check()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
