"""Server TLS as a client sees it: versions, ciphers, groups, ECDSA+RSA, SNI, live updates."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from tests.server.tls_helpers import PKI, leaf_der

from kittiwake.listener import (
    TLS_HANDSHAKE_FAILURES,
    Listener,
    SentBeforeHandshake,
    handshake_failed,
    starttls,
)
from kittiwake.server.tls import CertificateFiles, ServerTLS, TLSConfigError


class Echo(Listener):
    """Implicit-TLS listener answering each line with the line."""

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
        writer.close()


@asynccontextmanager
async def listening(tls: ServerTLS, service: str = "imaps") -> AsyncIterator[int]:
    listener = Echo(service, ["127.0.0.1"], 0)
    await listener.listen(tls.context)
    try:
        yield int(listener.addresses()[0].rsplit(":", 1)[1])
    finally:
        await listener.close(1)


def client(ca: PKI, *, max_version: ssl.TLSVersion | None = None,
           ciphers: str | None = None, curve: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca.ca_file))
    if max_version is not None:
        context.maximum_version = max_version
    if ciphers is not None:
        context.set_ciphers(ciphers)
    if curve is not None:
        context.set_ecdh_curve(curve)
    return context


async def handshake(port: int, context: ssl.SSLContext, name: str | None = "mail.example.org",
                    ) -> tuple[str, str, bytes]:
    """(version, cipher, DER of the server's certificate)."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname=name)
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        writer.write(b"ping\n")
        assert await reader.readline() == b"ping\n"
        return ssl_object.version(), ssl_object.cipher()[0], ssl_object.getpeercert(True)
    finally:
        writer.close()


@pytest.fixture
def pki(tmp_path: Path) -> tuple[PKI, CertificateFiles, CertificateFiles]:
    ca = PKI.create(tmp_path)
    names = ["mail.example.org", "mta-sts.example.org"]
    return ca, ca.issue(names, "ecdsa"), ca.issue(names, "rsa")


@pytest.mark.asyncio(loop_factories=["uvloop", "asyncio"])
async def test_implicit_tls_client_speaking_first_is_served_on_both_loops(pki) -> None:  # type: ignore[no-untyped-def]
    """The ClientHello arrives with the connection; no stream may read it before TLS."""
    ca, ecdsa, rsa = pki
    async with listening(ServerTLS([ecdsa, rsa])) as port:
        results = await asyncio.wait_for(asyncio.gather(
            *(handshake(port, client(ca)) for _ in range(20))), 10)
    assert {version for version, _, _ in results} == {"TLSv1.3"}


async def _upgrade_server(context: ssl.SSLContext, outcome: asyncio.Future[object]
                          ) -> asyncio.Server:
    """A STARTTLS-like server: reads "STARTTLS", answers, upgrades with :func:`starttls`."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"STARTTLS\r\n")
        writer.write(b"220 go ahead\r\n")
        try:
            await starttls(reader, writer, context, timeout=5)
            writer.write(await reader.readline())
            await writer.drain()
            outcome.set_result("tls")
        except Exception as exc:
            outcome.set_result(exc)
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


@pytest.mark.asyncio(loop_factories=["uvloop", "asyncio"])
async def test_starttls_upgrades_after_the_go_ahead(pki) -> None:  # type: ignore[no-untyped-def]
    ca, ecdsa, _ = pki
    outcome: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    server = await _upgrade_server(ServerTLS([ecdsa]).context, outcome)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"STARTTLS\r\n")
    assert await reader.readline() == b"220 go ahead\r\n"
    await writer.start_tls(client(ca), server_hostname="mail.example.org")
    writer.write(b"over tls\n")
    assert await reader.readline() == b"over tls\n"
    assert await outcome == "tls"
    writer.close()
    server.close()


@pytest.mark.asyncio(loop_factories=["uvloop", "asyncio"])
async def test_starttls_refuses_what_was_sent_before_the_go_ahead(pki) -> None:  # type: ignore[no-untyped-def]
    """RFC 3207 §4.2: plain text pipelined after STARTTLS is never read as if sent over TLS."""
    _ca, ecdsa, _ = pki
    outcome: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    server = await _upgrade_server(ServerTLS([ecdsa]).context, outcome)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"STARTTLS\r\nRCPT TO:<injected@example.org>\r\n")
    assert await reader.readline() == b"220 go ahead\r\n"
    refused = await outcome
    assert isinstance(refused, SentBeforeHandshake), refused
    assert await reader.read() == b"", "the connection is closed, nothing answered"
    before = TLS_HANDSHAKE_FAILURES.labels(service="smtp", reason="plaintext")._value.get()
    assert handshake_failed("smtp", refused) == "plaintext"
    assert TLS_HANDSHAKE_FAILURES.labels(service="smtp", reason="plaintext")._value.get() \
        == before + 1
    writer.close()
    server.close()


@pytest.mark.asyncio(loop_factories=["uvloop", "asyncio"])
async def test_a_handshake_that_never_comes_is_counted_as_a_timeout(pki) -> None:  # type: ignore[no-untyped-def]
    _ca, ecdsa, _ = pki

    def count() -> float:
        return TLS_HANDSHAKE_FAILURES.labels(service="imaps", reason="timeout")._value.get()

    before = count()
    listener = Echo("imaps", ["127.0.0.1"], 0, handshake_timeout=0.3)
    await listener.listen(ServerTLS([ecdsa]).context)
    port = int(listener.addresses()[0].rsplit(":", 1)[1])
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 10) == b"", "closed at the deadline"
        writer.close()
        for _ in range(100):  # the count follows the close in the server's task
            if count() == before + 1:
                break
            await asyncio.sleep(0.01)
    finally:
        await listener.close(1)
    assert count() == before + 1


async def test_tls12_and_13_only_with_forward_secret_aead(pki) -> None:  # type: ignore[no-untyped-def]
    ca, ecdsa, rsa = pki
    async with listening(ServerTLS([ecdsa, rsa])) as port:
        version, cipher, _ = await handshake(port, client(ca))
        assert version == "TLSv1.3"
        version, cipher, _ = await handshake(port, client(ca, max_version=ssl.TLSVersion.TLSv1_2))
        assert (version, cipher) == ("TLSv1.2", "ECDHE-ECDSA-AES256-GCM-SHA384")
        old = client(ca, max_version=ssl.TLSVersion.TLSv1_1)
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.set_ciphers("ALL:@SECLEVEL=0")
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await handshake(port, old)
        for weak in ("AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA256", "DHE-RSA-AES128-GCM-SHA256",
                     "ECDHE-ECDSA-AES256-SHA"):
            with pytest.raises((ssl.SSLError, ConnectionError)):
                await handshake(port, client(ca, max_version=ssl.TLSVersion.TLSv1_2,
                                             ciphers=weak))


async def test_only_the_good_groups(pki) -> None:  # type: ignore[no-untyped-def]
    ca, ecdsa, rsa = pki
    async with listening(ServerTLS([ecdsa, rsa])) as port:
        for good in ("X25519", "prime256v1", "X448", "secp384r1"):
            for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
                await handshake(port, client(ca, max_version=version, curve=good))
        for other in ("secp521r1", "ffdhe2048"):
            with pytest.raises((ssl.SSLError, ConnectionError)):
                await handshake(port, client(ca, curve=other))


async def test_ecdsa_and_rsa_served_by_one_context(pki) -> None:  # type: ignore[no-untyped-def]
    ca, ecdsa, rsa = pki
    tls = ServerTLS([rsa, ecdsa])  # order does not matter: one certificate per key type
    async with listening(tls) as port:
        tls12 = ssl.TLSVersion.TLSv1_2
        _, cipher, der = await handshake(port, client(ca, max_version=tls12,
                                                      ciphers="ECDHE-RSA-AES128-GCM-SHA256"))
        assert der == leaf_der(rsa) and "RSA" in cipher
        _, cipher, der = await handshake(port, client(ca, max_version=tls12,
                                                      ciphers="ECDHE-RSA-AES128-GCM-SHA256:"
                                                              "ECDHE-ECDSA-AES128-GCM-SHA256"))
        assert der == leaf_der(ecdsa), "an ECDSA-capable client gets the ECDSA certificate"
        _, _, der = await handshake(port, client(ca))
        assert der == leaf_der(ecdsa)


async def test_sni_picks_the_certificate_set(tmp_path: Path) -> None:
    ca = PKI.create(tmp_path)
    first = ca.issue(["mail.example.org"], "ecdsa")
    other = ca.issue(["mail.example.net", "*.example.net"], "ecdsa")
    async with listening(ServerTLS([first, other])) as port:
        assert (await handshake(port, client(ca), "mail.example.net"))[2] == leaf_der(other)
        assert (await handshake(port, client(ca), "x.example.net"))[2] == leaf_der(other)
        assert (await handshake(port, client(ca), "mail.example.org"))[2] == leaf_der(first)
        unverified = client(ca)
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE
        assert (await handshake(port, unverified, None))[2] == leaf_der(first), "no SNI: default"


async def test_update_serves_new_certificates_and_open_connections_go_on(pki) -> None:  # type: ignore[no-untyped-def]
    ca, ecdsa, _rsa = pki
    tls = ServerTLS([ecdsa])
    async with listening(tls) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client(ca),
                                                       server_hostname="mail.example.org")
        assert writer.get_extra_info("ssl_object").getpeercert(True) == leaf_der(ecdsa)
        renewed = ca.issue(["mail.example.org", "mta-sts.example.org"], "ecdsa", label="renewed")
        await asyncio.to_thread(tls.update, [renewed])
        assert (await handshake(port, client(ca)))[2] == leaf_der(renewed)
        writer.write(b"still here\n")
        assert await reader.readline() == b"still here\n"
        writer.close()

        broken = CertificateFiles(renewed.cert_file, ecdsa.key_file)  # key does not match
        with pytest.raises(TLSConfigError, match="cannot load certificate and key"):
            tls.update([broken])
        assert (await handshake(port, client(ca)))[2] == leaf_der(renewed), "old ones kept"


async def test_reload_reads_changed_files(pki) -> None:  # type: ignore[no-untyped-def]
    ca, ecdsa, _rsa = pki
    tls = ServerTLS([ecdsa])
    async with listening(tls) as port:
        renewed = ca.issue(["mail.example.org"], "ecdsa", label="renewed")
        ecdsa.cert_file.write_bytes(renewed.cert_file.read_bytes())
        ecdsa.key_file.write_bytes(renewed.key_file.read_bytes())
        tls.reload()
        assert (await handshake(port, client(ca)))[2] == leaf_der(renewed)


async def test_served_certificate_for_channel_binding(pki) -> None:  # type: ignore[no-untyped-def]
    ca, ecdsa, rsa = pki
    tls = ServerTLS([ecdsa, rsa])
    seen: list[bytes | None] = []

    class Record(Listener):
        async def serve(self, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
            seen.append(tls.served_certificate(writer.get_extra_info("ssl_object")))
            writer.write(b"ping\n")
            await reader.readline()
            writer.close()

    listener = Record("imaps", ["127.0.0.1"], 0)
    await listener.listen(tls.context)
    port = int(listener.addresses()[0].rsplit(":", 1)[1])
    try:
        for ciphers in ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"):
            await handshake(port, client(ca, max_version=ssl.TLSVersion.TLSv1_2, ciphers=ciphers))
    finally:
        await listener.close(1)
    assert seen == [leaf_der(rsa), leaf_der(ecdsa)]


async def test_failed_implicit_tls_handshakes_are_counted(pki) -> None:  # type: ignore[no-untyped-def]
    ca, ecdsa, _ = pki

    def count(reason: str) -> float:
        return TLS_HANDSHAKE_FAILURES.labels(service="submissions", reason=reason)._value.get()

    before = {r: count(r) for r in ("plaintext", "cipher", "version")}
    async with listening(ServerTLS([ecdsa]), "submissions") as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.0\r\n\r\n")
        assert await reader.read() == b""
        writer.close()
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await handshake(port, client(ca, max_version=ssl.TLSVersion.TLSv1_2,
                                         ciphers="ECDHE-RSA-AES128-GCM-SHA256"))
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await handshake(port, client(ca, curve="secp521r1"))
        await asyncio.sleep(0)
    assert count("plaintext") == before["plaintext"] + 1
    assert count("cipher") == before["cipher"] + 2


def test_a_second_certificate_of_one_key_type_for_the_same_names_is_refused(pki) -> None:  # type: ignore[no-untyped-def]
    ca, ecdsa, _ = pki
    again = ca.issue(["mail.example.org", "mta-sts.example.org"], "ecdsa", label="again")
    with pytest.raises(TLSConfigError, match="second ECDSA certificate"):
        ServerTLS([ecdsa, again])


async def test_without_the_group_call_only_p256_is_offered(pki, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import kittiwake.server.tls as tls_module

    ca, ecdsa, _ = pki
    monkeypatch.setattr(tls_module, "_ssl_ctx_pointer", lambda context, lib: None)
    async with listening(ServerTLS([ecdsa])) as port:
        await handshake(port, client(ca, curve="prime256v1"))
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await handshake(port, client(ca, curve="X25519"))
