"""What every listener service (SMTP, IMAP, HTTP, metrics) offers the server."""

from __future__ import annotations

from typing import Protocol


class Service(Protocol):
    """A network service started and stopped by :class:`kittiwake.server.app.Server`."""

    name: str

    async def start(self) -> None:
        """Bind the sockets and start accepting; raise OSError if a port is taken."""

    async def close(self, grace: float) -> None:
        """Stop accepting; let open sessions finish for up to ``grace`` seconds, then end them."""

    def addresses(self) -> list[str]:
        """Where it listens, for the start-up log (e.g. "127.0.0.1:25")."""
        ...
