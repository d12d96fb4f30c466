"""The metrics listener: Prometheus exposition at GET /metrics over plain HTTP."""

from __future__ import annotations

from aiohttp import web


class MetricsService:
    """Serves /metrics on the listener's addresses."""

    def __init__(self, ips: list[str], port: int) -> None:
        self.name = "metrics"
        self.ips = ips
        self.port = port
        self._runner: web.AppRunner | None = None
        self._bound: list[str] = []

    async def start(self) -> None:
        from kittiwake.metrics import metrics_app

        self._runner = web.AppRunner(metrics_app(), access_log=None)
        await self._runner.setup()
        for ip in self.ips:
            site = web.TCPSite(self._runner, ip, self.port, reuse_address=True)
            await site.start()
            for sock in site._server.sockets if site._server else []:  # type: ignore[union-attr]
                host, port = sock.getsockname()[:2]
                self._bound.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")

    async def close(self, grace: float) -> None:
        if self._runner:
            await self._runner.shutdown()
            await self._runner.cleanup()

    def addresses(self) -> list[str]:
        return list(self._bound)
