"""TLSError carries the RFC 8460 §4.3 result type from what failed (OpenSSL's verify
code, the tls_verify callback's TLSRejection), never from the error text."""

from __future__ import annotations

import contextlib
import datetime
import ssl

import pytest
import trustme
from tests.smtpclient.conftest import FakeServers, Peer

from kittiwake.smtpclient import Client, Timeouts, TLSError, TLSMode, TLSRejection
from kittiwake.smtpclient.client import unverified_context
from kittiwake.smtpclient.errors import tlsrpt_result_of_verify_code

FAST = Timeouts.uniform(3)


def server_context(leaf: trustme.LeafCert) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(ctx)
    return ctx


async def starttls_server(fake: FakeServers, ctx: ssl.SSLContext) -> int:
    async def script(p: Peer) -> None:
        await p.greet_ehlo("STARTTLS")
        await p.expect("STARTTLS")
        await p.send("220 go")
        with contextlib.suppress(Exception):  # the client may abort the handshake
            await p.starttls(ctx)
            await p.quit()

    return await fake.start(script)


async def failure(port: int, client_ctx: ssl.SSLContext, name: str = "mx.example.org",
                  **kw: object) -> TLSError:
    with pytest.raises(TLSError) as info:
        await Client.connect("127.0.0.1", port, local_hostname="client.example",
                             tls=TLSMode.STARTTLS, tls_context=client_ctx,
                             tls_server_name=name, timeouts=FAST, **kw)  # type: ignore[arg-type]
    return info.value


@pytest.fixture(scope="module")
def root() -> trustme.CA:
    return trustme.CA()


def trusting(root: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    root.configure_trust(ctx)
    return ctx


async def test_expired_certificate(fake: FakeServers, root: trustme.CA) -> None:
    past = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    leaf = root.issue_cert("mx.example.org", not_before=past,
                           not_after=past + datetime.timedelta(days=30))
    port = await starttls_server(fake, server_context(leaf))
    exc = await failure(port, trusting(root))
    assert exc.handshake and exc.tlsrpt_result_type == "certificate-expired"


async def test_host_mismatch(fake: FakeServers, root: trustme.CA) -> None:
    port = await starttls_server(fake, server_context(root.issue_cert("mx.example.org")))
    exc = await failure(port, trusting(root), name="other.example.org")
    assert exc.tlsrpt_result_type == "certificate-host-mismatch"


async def test_untrusted_issuer(fake: FakeServers, root: trustme.CA) -> None:
    port = await starttls_server(fake, server_context(root.issue_cert("mx.example.org")))
    exc = await failure(port, ssl.create_default_context())  # does not know the test CA
    assert exc.tlsrpt_result_type == "certificate-not-trusted"


async def test_verify_callback_result_type(fake: FakeServers, root: trustme.CA) -> None:
    ctx = server_context(root.issue_cert("mx.example.org"))
    port = await starttls_server(fake, ctx)
    exc = await failure(port, unverified_context(),
                        tls_verify=lambda info: TLSRejection("DANE: no match", "tlsa-invalid"))
    assert exc.tlsrpt_result_type == "tlsa-invalid" and "DANE: no match" in str(exc)
    port = await starttls_server(fake, ctx)
    exc = await failure(port, unverified_context(), tls_verify=lambda info: "rejected")
    assert exc.tlsrpt_result_type == "validation-failure"


async def test_starttls_not_offered(fake: FakeServers) -> None:
    async def script(p: Peer) -> None:
        await p.greet_ehlo("PIPELINING")
        await p.quit()

    port = await fake.start(script)
    exc = await failure(port, ssl.create_default_context())
    assert not exc.handshake and exc.tlsrpt_result_type == "starttls-not-supported"


def test_verify_codes() -> None:
    assert tlsrpt_result_of_verify_code(10) == "certificate-expired"
    assert tlsrpt_result_of_verify_code(62) == "certificate-host-mismatch"
    assert tlsrpt_result_of_verify_code(19) == "certificate-not-trusted"
    assert tlsrpt_result_of_verify_code(None) == "validation-failure"
