"""Malformed and oversized requests on the wire get HTTP errors; the server goes on."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from kittiwake import log
from kittiwake.http import HTTPContext, content_app, runner_options


@pytest.fixture
async def port(ctx: HTTPContext) -> AsyncIterator[int]:
    """The content app over plain HTTP with the listener's runner options."""
    runner = web.AppRunner(content_app(ctx), **runner_options())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


async def exchange(port: int, request: bytes) -> bytes:
    """Send raw bytes, read one whole answer (status line, header, Content-Length body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        return head + await asyncio.wait_for(reader.readexactly(length), 10)
    finally:
        writer.close()


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


GOOD = (b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.example.org\r\n"
        b"Connection: close\r\n\r\n")


async def test_bad_requests_get_400_and_the_server_goes_on(port: int) -> None:
    stream = io.StringIO()
    log.setup("info", stream=stream)
    try:
        answers = await bad_requests(port)
    finally:
        log.reset()
    for name, answer in answers.items():
        assert answer.startswith(b"HTTP/1.") and 400 <= status_of(answer) < 500, \
            (name, answer[:80])
    assert status_of(answers["long line"]) in (400, 414)
    assert status_of(answers["long header"]) in (400, 431)
    good = await exchange(port, GOOD)
    assert status_of(good) == 200 and b"version: STSv1" in good
    # The client's mistakes are no errors of ours: nothing at info level or above.
    assert "Traceback" not in stream.getvalue() and "level=error" not in stream.getvalue()


async def test_malformed_requests_are_logged_at_debug(port: int) -> None:
    stream = io.StringIO()
    log.setup("info", {"http": "debug"}, stream=stream)
    try:
        await bad_requests(port)
    finally:
        log.reset()
    lines = [line for line in stream.getvalue().splitlines() if "Error handling" in line]
    assert lines and all("level=debug" in line for line in lines)
    assert "Traceback" not in stream.getvalue()


async def bad_requests(port: int) -> dict[str, bytes]:
    return {
        "garbage": await exchange(port, b"\x16\x03\x01\x02\x00garbage\r\n\r\n"),
        "long line": await exchange(port, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n"),
        "long header": await exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nX-A: "
                                      + b"b" * 9000 + b"\r\n\r\n"),
        "many headers": await exchange(port, b"GET / HTTP/1.1\r\n"
                                       + b"".join(b"X-%d: v\r\n" % i for i in range(200))
                                       + b"\r\n"),
    }


async def test_a_request_without_host_names_no_site(port: int) -> None:
    answer = await exchange(port, b"GET /.well-known/mta-sts.txt HTTP/1.0\r\n\r\n")
    assert status_of(answer) == 404 and b"unknown host" in answer


async def test_a_body_announced_too_large_is_refused(port: int) -> None:
    answer = await exchange(port, b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\n"
                            b"Host: autodiscover.example.org\r\nConnection: close\r\n"
                            b"Content-Length: 100000000\r\n\r\n<Autodiscover>")
    assert status_of(answer) == 413 and b"Connection: close" in answer
