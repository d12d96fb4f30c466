"""An HTTPS policy server on 127.0.0.1 (ephemeral port, trustme CA) for MTA-STS tests.

``policy_server.serve(domain, body, ...)`` sets what ``https://mta-sts.DOMAIN/
.well-known/mta-sts.txt`` answers; ``policy_server.session()`` is a client
session that trusts the test CA and resolves every ``mta-sts.*`` host of the
test to the loopback server, and nothing else.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
import trustme
from aiohttp import web

from kittiwake.mtasts import make_session

DOMAINS = ("example.org", "example.net", "example.com", "nocert.example")
CERT_DOMAINS = DOMAINS[:3]  # the server certificate does not cover mta-sts.nocert.example


@dataclass
class Reply:
    body: bytes
    status: int = 200
    content_type: str = "text/plain"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class PolicyServer:
    ca: trustme.CA
    port: int = 0
    replies: dict[str, Reply] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def serve(self, domain: str, body: str | bytes, **kwargs: object) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.replies[f"mta-sts.{domain}"] = Reply(data, **kwargs)  # type: ignore[arg-type]

    def client_context(self, ca: trustme.CA | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context()
        (ca or self.ca).configure_trust(context)
        return context

    def session(self, ca: trustme.CA | None = None) -> aiohttp.ClientSession:
        hosts = {f"mta-sts.{d}": ("127.0.0.1", self.port) for d in DOMAINS}
        return make_session(self.client_context(ca), hosts)

    def count(self, domain: str) -> int:
        return self.requests.count(f"mta-sts.{domain}")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        host = (request.host or "").split(":")[0].lower()
        self.requests.append(host)
        reply = self.replies.get(host)
        if reply is None or request.path != "/.well-known/mta-sts.txt":
            return web.Response(status=404, text="not found")
        if reply.delay:
            await asyncio.sleep(reply.delay)
        headers = {"Content-Type": reply.content_type, **reply.headers}
        return web.Response(body=reply.body, status=reply.status, headers=headers)


@pytest.fixture(scope="session")
def test_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def policy_server(test_ca: trustme.CA) -> AsyncIterator[PolicyServer]:
    server = PolicyServer(test_ca)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    test_ca.issue_cert(*(f"mta-sts.{d}" for d in CERT_DOMAINS)).configure_cert(context)
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    sockets = site._server.sockets  # type: ignore[union-attr]
    server.port = sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        await runner.cleanup()
