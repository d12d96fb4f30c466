"""The HTTPS content server on loopback: a Config, a trustme CA, and a client that
resolves every host name to 127.0.0.1 (so URLs, SNI and certificate checks are
the ones a real client uses). The fixtures are made available by conftest.py."""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from multidict import CIMultiDictProxy

from kittiwake.config import Config, DomainsConfig, StaticConfig
from kittiwake.http import HTTPContext, content_app, runner_options

HOSTNAME = "mail.example.org"
TLS_NAMES = (HOSTNAME, "example.org", "*.example.org", "example.net", "*.example.net",
             "*.other.example")


def static_config(**services: dict[str, Any]) -> StaticConfig:
    """One public listener with TLS; ``services`` override the enabled ones."""
    enabled = {name: {"enabled": True} for name in
               ("smtp", "submission", "submissions", "imap", "imaps", "https")}
    enabled.update(services)
    return StaticConfig.model_validate({
        "hostname": HOSTNAME,
        "listeners": {"public": {
            "ips": ["127.0.0.1"],
            "tls": {"certificates": [{"cert_file": "cert.pem", "key_file": "key.pem"}]},
            **enabled}},
    })


def domains_config(mta_sts: dict[str, Any] | None = None) -> DomainsConfig:
    return DomainsConfig.model_validate({
        "domains": {
            "example.org": {"description": "Example Org",
                            "mta_sts": mta_sts if mta_sts is not None else
                            {"mode": "enforce", "mx": ["backup.example.net"],
                             "max_age_seconds": 604800}},
            "example.net": {},
        },
        "accounts": {
            "alice": {"domain": "example.org", "full_name": "Alice Liddell",
                      "destinations": {"alice@example.org": {}}},
            "net": {"domain": "example.net", "destinations": {"@example.net": {}}},
        },
    })


def make_config(tmp_path: Path, static: StaticConfig | None = None,
                domains: DomainsConfig | None = None) -> Config:
    return Config(tmp_path, static or static_config(), domains or domains_config())


class LoopbackResolver(AbstractResolver):
    """Every name is 127.0.0.1: the content server is the only host in these tests."""

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        return [ResolveResult(hostname=host, host="127.0.0.1", port=port,
                              family=socket.AF_INET, proto=0, flags=socket.AI_NUMERICHOST)]

    async def close(self) -> None:
        pass


@dataclass
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


@dataclass
class Served:
    port: int
    scheme: str
    session: aiohttp.ClientSession

    def url(self, host: str, path: str) -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    async def request(self, method: str, host: str, path: str, **kwargs: Any) -> Reply:
        """One request to ``host`` (resolved to the server), its whole answer."""
        kwargs.setdefault("allow_redirects", False)
        async with self.session.request(method, self.url(host, path), **kwargs) as resp:
            return Reply(resp.status, resp.headers, await resp.read())

    async def get(self, host: str, path: str, **kwargs: Any) -> Reply:
        return await self.request("GET", host, path, **kwargs)


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*TLS_NAMES).configure_cert(context)
    return context


@pytest.fixture
def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


ServeFactory = Callable[..., Any]


@pytest.fixture
async def serve(server_tls: ssl.SSLContext,
                client_tls: ssl.SSLContext) -> AsyncIterator[ServeFactory]:
    """``async with serve(ctx, tls=True) as served``: the content app on 127.0.0.1."""
    runners: list[web.AppRunner] = []

    @asynccontextmanager
    async def start(ctx: HTTPContext, tls: bool = True) -> AsyncIterator[Served]:
        runner = web.AppRunner(content_app(ctx), **runner_options())
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_tls if tls else None)
        await site.start()
        port = int(runner.addresses[0][1])
        connector = aiohttp.TCPConnector(resolver=LoopbackResolver(), ssl=client_tls)
        async with aiohttp.ClientSession(connector=connector) as session:
            yield Served(port, "https" if tls else "http", session)

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


@pytest.fixture
def ctx(config: Config) -> Iterator[HTTPContext]:
    yield HTTPContext.from_config(config, "public")
