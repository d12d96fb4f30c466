"""The metrics listener: Prometheus exposition at GET /metrics over plain HTTP."""

from __future__ import annotations

import importlib

from aiohttp import web

# Every module that defines metrics: imported before the first scrape, so that
# each known label set is there at 0 even before the part is first used.
METRIC_MODULES = (
    "kittiwake.metrics",
    "kittiwake.cpupool.metrics",
    "kittiwake.dns.metrics",
    "kittiwake.smtpserver.metrics",
    "kittiwake.imapserver.metrics",
    "kittiwake.smtpserver.connection",
    "kittiwake.queue.metrics",
    "kittiwake.queue.notices",
    "kittiwake.mtasts.cache",
    "kittiwake.server.monitor",
    "kittiwake.store.metrics",
    "kittiwake.junk.metrics",
    "kittiwake.reports.dmarc_metrics",
    "kittiwake.http.metrics",
    "kittiwake.acme.metrics",
    "kittiwake.http.listener_metrics",
    "kittiwake.listener",
    "kittiwake.reports.tlsrpt_metrics",
    "kittiwake.server.smtpworkers",
)


def load_metric_modules() -> None:
    for name in METRIC_MODULES:
        importlib.import_module(name)


class MetricsService:
    """Serves /metrics on the listener's addresses."""

    def __init__(self, ips: list[str], port: int) -> None:
        self.name = "metrics"
        self.ips = ips
        self.port = port
        self._runner: web.AppRunner | None = None
        self._bound: list[str] = []
        self._keys: list[tuple[str, int]] = []

    async def start(self) -> None:
        from kittiwake.listener import SOCKETS
        from kittiwake.metrics import metrics_app

        load_metric_modules()
        self._runner = web.AppRunner(metrics_app(), access_log=None)
        await self._runner.setup()
        for ip in self.ips:
            listening = SOCKETS.socket(ip, self.port)
            host, port = listening.getsockname()[:2]
            self._keys.append((ip, int(port)))
            site = web.SockSite(self._runner, listening.dup())
            await site.start()
            self._bound.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")

    async def close(self, grace: float) -> None:
        from kittiwake.listener import SOCKETS

        if self._runner:
            await self._runner.shutdown()
            await self._runner.cleanup()
        for ip, port in self._keys:
            SOCKETS.release(ip, port)
        self._keys.clear()

    def addresses(self) -> list[str]:
        return list(self._bound)
