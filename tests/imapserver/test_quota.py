"""QUOTA (RFC 9208): the root "" with STORAGE (§5.1) and MESSAGE (§5.2) resources."""

from __future__ import annotations

from tests.imapserver.conftest import IMAPServer
from tests.imapserver.test_imap_wire import Wire

from kittiwake.config.domains import DomainsConfig

MSG = b"Subject: q\r\n\r\nhello\r\n"


def limits(server: IMAPServer, **alice: int) -> None:
    server.ctx.reload(DomainsConfig.model_validate({
        "domains": {"example.org": {}},
        "accounts": {"alice": {"domain": "example.org", **alice}}}))


async def logged_in(server: IMAPServer) -> Wire:
    w = await Wire.open(server.port)
    await w.login()
    return w


async def append(w: Wire, mailbox: bytes = b"INBOX") -> list[bytes]:
    return await w.cmd(b"APPEND " + mailbox + b" {%d+}\r\n" % len(MSG) + MSG)


async def test_capability_names_both_resources(imap_server: IMAPServer) -> None:
    w = await logged_in(imap_server)
    caps = (await w.cmd(b"CAPABILITY"))[0].split()
    assert b"QUOTA=RES-STORAGE" in caps and b"QUOTA=RES-MESSAGE" in caps


async def test_message_limit_reported_and_enforced(imap_server: IMAPServer) -> None:
    limits(imap_server, quota_messages=3)
    await imap_server.deliver(MSG)
    await imap_server.deliver(MSG, "Archive")
    w = await logged_in(imap_server)
    answer = await w.cmd(b"GETQUOTAROOT \"INBOX\"")
    assert answer[:2] == [b'* QUOTAROOT \"INBOX\" ""\r\n', b'* QUOTA "" (MESSAGE 2 3)\r\n'], answer
    assert (await append(w))[-1].startswith(b"a OK")
    refused = await append(w, b"Archive")  # a fourth message, in any mailbox
    assert refused[-1].startswith(b"a NO [OVERQUOTA] "), refused
    assert (await w.cmd(b'GETQUOTA ""'))[0] == b'* QUOTA "" (MESSAGE 3 3)\r\n'
    await w.cmd(b"SELECT INBOX")
    copy = await w.cmd(b"COPY 1 Archive")
    assert copy[-1].startswith(b"a NO [OVERQUOTA] "), copy
    move = await w.cmd(b"MOVE 1 Archive")  # moving adds nothing
    assert move[-1].startswith(b"a OK"), move
    await w.cmd(b"SELECT Archive")
    assert (await w.cmd(b"STORE 1 +FLAGS.SILENT (\\Deleted)"))[-1].startswith(b"a OK")
    await w.cmd(b"EXPUNGE")
    assert (await w.cmd(b"COPY 1 INBOX"))[-1].startswith(b"a OK")


async def test_multiappend_counts_every_message(imap_server: IMAPServer) -> None:
    limits(imap_server, quota_messages=1)
    w = await logged_in(imap_server)
    line = b"APPEND INBOX {%d+}\r\n" % len(MSG) + MSG + b" {%d+}\r\n" % len(MSG) + MSG
    answer = await w.cmd(line)
    assert answer[-1].startswith(b"a NO [OVERQUOTA] "), answer
    assert (await w.cmd(b'STATUS INBOX (MESSAGES)'))[0] == b"* STATUS \"INBOX\" (MESSAGES 0)\r\n"


async def test_both_limits_and_none(imap_server: IMAPServer) -> None:
    await imap_server.deliver(MSG)
    w = await logged_in(imap_server)
    answer = await w.cmd(b"GETQUOTAROOT \"INBOX\"")
    assert answer[0] == b"* QUOTAROOT \"INBOX\"\r\n" and answer[1].startswith(b"a OK")
    limits(imap_server, quota_bytes=10 * 1024, quota_messages=5)
    answer = await w.cmd(b'GETQUOTA ""')
    assert answer[0] == b'* QUOTA "" (STORAGE 1 10 MESSAGE 1 5)\r\n', answer
