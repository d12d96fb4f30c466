"""The HTTP/HTTPS listeners' transport: http-01, redirects, the ClientHello peek, limits."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme
from aiohttp import web

from kittiwake.acme.challenges import Challenges
from kittiwake.acme.clienthello import parse_client_hello
from kittiwake.acme.tlsalpn import ACME_IDENTIFIER_OID, challenge_context
from kittiwake.http.listener import HTTPListener, HTTPSListener, TransportLimits
from kittiwake.limits import ConnectionSlots
from kittiwake.metrics import REGISTRY

FAST = TransportLimits(hello_seconds=0.5, head_seconds=0.5, handshake_seconds=1)


def content() -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=f"content for {request.host}")

    app = web.Application()
    app.router.add_get("/.well-known/mta-sts.txt", hello)
    return app


async def request(port: int, raw: bytes, context: ssl.SSLContext | None = None,
                  server_name: str | None = None) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context,
                                                   server_hostname=server_name)
    writer.write(raw)
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def http() -> AsyncIterator[tuple[HTTPListener, Challenges]]:
    challenges = Challenges()
    listener = HTTPListener(["127.0.0.1"], 0, challenges, "mail.example.org", limits=FAST)
    await listener.start()
    yield listener, challenges
    await listener.close(0)


async def test_http01_answer_is_the_key_authorization(http: tuple[HTTPListener, Challenges]
                                                      ) -> None:
    listener, challenges = http
    challenges.set_http01("tok", "tok.thumb")
    reply = await request(listener.bound_port, b"GET /.well-known/acme-challenge/tok HTTP/1.1\r\n"
                          b"Host: mail.example.org\r\nConnection: close\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"Content-Type: text/plain" in head
    assert body == b"tok.thumb"
    unknown = await request(listener.bound_port, b"GET /.well-known/acme-challenge/other "
                            b"HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert unknown.startswith(b"HTTP/1.1 404")


async def test_everything_else_redirects_to_https(http: tuple[HTTPListener, Challenges]) -> None:
    listener, _ = http
    reply = await request(listener.bound_port, b"GET /mail/config-v1.1.xml?x=1 HTTP/1.1\r\n"
                          b"Host: autoconfig.example.org\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 301")
    assert b"Location: https://autoconfig.example.org/mail/config-v1.1.xml?x=1\r\n" in reply
    # A Host that is no host name is not echoed into Location.
    evil = await request(listener.bound_port, b"GET / HTTP/1.1\r\nHost: a\"b<c\r\n"
                         b"Connection: close\r\n\r\n")
    assert b"Location: https://mail.example.org/\r\n" in evil


async def test_reverse_proxied_serves_content_and_challenges() -> None:
    challenges = Challenges()
    challenges.set_http01("t1", "t1.k")
    listener = HTTPListener(["127.0.0.1"], 0, challenges, "mail.example.org",
                            reverse_proxied_content=content, limits=FAST)
    await listener.start()
    try:
        reply = await request(listener.bound_port, b"GET /.well-known/mta-sts.txt HTTP/1.1\r\n"
                              b"Host: mta-sts.example.org\r\nConnection: close\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(
            b"content for mta-sts.example.org")
        reply = await request(listener.bound_port, b"GET /.well-known/acme-challenge/t1 "
                              b"HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert reply.endswith(b"\r\n\r\nt1.k")
    finally:
        await listener.close(0)


async def test_slow_request_head_is_closed(http: tuple[HTTPListener, Challenges]) -> None:
    listener, _ = http
    before = counter("kittiwake_http_listener_slow_requests_closed_total", service="http")
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.bound_port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the end of the head
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    assert counter("kittiwake_http_listener_slow_requests_closed_total",
                   service="http") == before + 1


async def test_too_many_headers_is_refused(http: tuple[HTTPListener, Challenges]) -> None:
    listener, _ = http
    before = counter("kittiwake_http_listener_requests_total", service="http",
                     kind="bad-request")
    headers = b"".join(b"X-%d: y\r\n" % i for i in range(200))
    reply = await request(listener.bound_port, b"GET / HTTP/1.1\r\nHost: x\r\n" + headers +
                          b"\r\n")
    assert reply.startswith(b"HTTP/1.0 400")
    assert reply.endswith(b"Too many headers received")
    assert counter("kittiwake_http_listener_requests_total", service="http",
                   kind="bad-request") == before + 1


async def test_handler_error_is_a_panic_and_a_500() -> None:
    def broken() -> web.Application:
        async def fail(request: web.Request) -> web.Response:
            raise RuntimeError("bug")

        app = web.Application()
        app.router.add_get("/", fail)
        return app

    before = counter("kittiwake_panic_total", origin="http")
    listener = HTTPListener(["127.0.0.1"], 0, Challenges(), "mail.example.org",
                            reverse_proxied_content=broken, limits=FAST)
    await listener.start()
    try:
        reply = await request(listener.bound_port, b"GET / HTTP/1.1\r\nHost: x\r\n"
                              b"Connection: close\r\n\r\n")
    finally:
        await listener.close(0)
    assert reply.startswith(b"HTTP/1.1 500")
    assert counter("kittiwake_panic_total", origin="http") == before + 1


async def test_connection_limit() -> None:
    listener = HTTPListener(["127.0.0.1"], 0, Challenges(), "mail.example.org", limits=FAST,
                            slots=ConnectionSlots(max_total=10, max_per_ip=1))
    await listener.start()
    try:
        _r1, w1 = await asyncio.open_connection("127.0.0.1", listener.bound_port)
        await asyncio.sleep(0)  # the first is accepted and holds the only slot
        r2, w2 = await asyncio.open_connection("127.0.0.1", listener.bound_port)
        assert await asyncio.wait_for(r2.read(), 5) == b""
        w1.close()
        w2.close()
    finally:
        await listener.close(0)


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[trustme.CA, ssl.SSLContext]:
    ca = trustme.CA()
    cert = ca.issue_cert("mta-sts.example.org")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    return ca, context


@pytest.fixture
async def https(certificate: tuple[trustme.CA, ssl.SSLContext]
                ) -> AsyncIterator[tuple[HTTPSListener, Challenges]]:
    challenges = Challenges()
    listener = HTTPSListener(["127.0.0.1"], 0, challenges, parse_client_hello,
                             lambda: certificate[1], content=content, limits=FAST)
    await listener.start()
    yield listener, challenges
    await listener.close(0)


async def test_https_serves_content(https: tuple[HTTPSListener, Challenges],
                                    certificate: tuple[trustme.CA, ssl.SSLContext]) -> None:
    listener, _ = https
    client = ssl.create_default_context()
    certificate[0].configure_trust(client)
    reply = await request(listener.bound_port, b"GET /.well-known/mta-sts.txt HTTP/1.1\r\n"
                          b"Host: mta-sts.example.org\r\nConnection: close\r\n\r\n", client,
                          "mta-sts.example.org")
    assert reply.startswith(b"HTTP/1.1 200")
    assert reply.endswith(b"content for mta-sts.example.org")


async def test_tls_alpn01_client_gets_the_challenge_certificate(
        https: tuple[HTTPSListener, Challenges]) -> None:
    from cryptography import x509

    listener, challenges = https
    challenges.set_tls_alpn01("mail.example.org", challenge_context("mail.example.org", "k.a"))
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    client.set_alpn_protocols(["acme-tls/1"])
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.bound_port, ssl=client,
                                                   server_hostname="mail.example.org")
    ssl_object = writer.get_extra_info("ssl_object")
    assert ssl_object.selected_alpn_protocol() == "acme-tls/1"
    cert = x509.load_der_x509_certificate(ssl_object.getpeercert(binary_form=True))
    ext = cert.extensions.get_extension_for_oid(ACME_IDENTIFIER_OID)
    assert ext.critical
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed after the handshake
    writer.close()


async def test_acme_client_without_pending_challenge_is_closed(
        https: tuple[HTTPSListener, Challenges]) -> None:
    listener, _ = https
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    client.set_alpn_protocols(["acme-tls/1"])
    before = counter("kittiwake_http_listener_tls_handshakes_total", result="acme-unknown")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await asyncio.open_connection("127.0.0.1", listener.bound_port, ssl=client,
                                      server_hostname="other.example.org")
    assert counter("kittiwake_http_listener_tls_handshakes_total",
                   result="acme-unknown") == before + 1


async def test_plain_http_on_the_https_port_is_closed(https: tuple[HTTPSListener, Challenges]
                                                      ) -> None:
    listener, _ = https
    before = counter("kittiwake_http_listener_tls_handshakes_total", result="not-tls")
    reply = await request(listener.bound_port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply == b""
    assert counter("kittiwake_http_listener_tls_handshakes_total",
                   result="not-tls") == before + 1


async def test_silent_client_on_the_https_port_times_out(
        https: tuple[HTTPSListener, Challenges]) -> None:
    listener, _ = https
    before = counter("kittiwake_http_listener_tls_handshakes_total", result="timeout")
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.bound_port)
    writer.write(b"\x16\x03\x01\x02\x00\x01")  # the start of a hello, never the rest
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    assert counter("kittiwake_http_listener_tls_handshakes_total",
                   result="timeout") == before + 1
