"""The message pipeline driven without sockets: spool, checks, prefix, delivery.

Each test feeds a message through :class:`Spool` in uneven chunks (as a
network delivers it), then :func:`pipeline.process`, and looks at what a user
sees: the stored message, its headers, the reply.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from kittiwake import dkim
from kittiwake.config import DomainsConfig
from kittiwake.config.domains import Destination
from kittiwake.config.lookup import AccountRecipient
from kittiwake.dns import MockResolver
from kittiwake.log import get_logger
from kittiwake.message.headers import parse_header_section
from kittiwake.sasl import derive_credentials
from kittiwake.smtpserver import incoming, pipeline
from kittiwake.smtpserver.context import ServerContext
from kittiwake.smtpserver.deliver import LocalDelivery
from kittiwake.smtpserver.spool import (
    RESERVE_DIR,
    WRITE_BUFFER,
    HeaderTooLarge,
    Spool,
    SpoolReserve,
    clean_spool,
)
from kittiwake.store import AccountStore, Store
from kittiwake.store.store import account_dir

LOG = get_logger("smtpserver")
BODY = b"".join(b"line %d with  some   spaces \r\n" % i for i in range(3000)) + b"\r\n\r\n"


@pytest.fixture
def ctx(tmp_path: Path) -> ServerContext:
    key_pem = dkim.generate_key("ed25519")
    (tmp_path / "dkim.pem").write_bytes(key_pem)
    domains = DomainsConfig.model_validate({
        "domains": {"example.org": {"dkim": {
            "selectors": {"s1": {"private_key_file": "dkim.pem",
                                 "canonicalization": "relaxed/simple"}}, "sign": ["s1"]}}},
        "accounts": {"alice": {"domain": "example.org",
                               "destinations": {"alice@example.org": {}}}},
    })
    data_dir = tmp_path / "data"
    store = AccountStore("alice", account_dir(data_dir, "alice"))
    store.ensure_mailboxes(["Inbox"])
    store.set_credentials(json.dumps(derive_credentials("pw").to_dict()))
    store.close()
    resolver = MockResolver()
    resolver.add("TXT", "s1._domainkey.example.org",
                 dkim.dns_record(dkim.load_private_key(key_pem)))
    return ServerContext(hostname="mx.example.org", store=Store(data_dir), domains=domains,
                         resolver=resolver, config_dir=tmp_path)


def spooled(ctx: ServerContext, sender: pipeline.Sender, message: bytes, seed: int = 1):
    spool = Spool(ctx.spool_directory,
                  on_head=lambda head: pipeline.body_hashes_needed(ctx, sender, head))
    rng = random.Random(seed)
    pos = 0
    while pos < len(message):
        n = rng.choice([1, 2, 3, 7, 100, 4096, 65536])
        spool.write(message[pos:pos + n])
        pos += n
    return spool.finish()


def alice_tx(mailfrom: str) -> pipeline.Transaction:
    tx = pipeline.Transaction(mailfrom=mailfrom)
    tx.local.append(LocalDelivery("alice@example.org",
                                  AccountRecipient("alice", "alice@example.org",
                                                   Destination())))
    tx.rcpts.append("alice@example.org")
    return tx


def inbox(ctx: ServerContext) -> list[bytes]:
    store = AccountStore("alice", account_dir(ctx.store.data_dir, "alice"))
    try:
        return [store.read(m.id) for m in store.messages("Inbox")]
    finally:
        store.close()


def conn(authenticated: bool = False) -> incoming.Connection:
    return incoming.Connection(ip="127.0.0.1", helo="client.example.net",
                               hostname="mx.example.org", authenticated=authenticated,
                               session_id="abc")


async def test_submission_is_signed_from_streamed_hashes_and_verifies(
        ctx: ServerContext) -> None:
    sender = pipeline.Sender("submission", "alice", conn(authenticated=True))
    message = b"From: alice@example.org\r\nTo: alice@example.org\r\nSubject: hi\r\n\r\n" + BODY
    reply = await pipeline.process(ctx, sender, alice_tx("alice@example.org"),
                                   spooled(ctx, sender, message), LOG)
    assert reply.code == 250
    [stored] = inbox(ctx)
    headers, _ = parse_header_section(stored)
    assert headers.first("message-id") and headers.first("date")  # added (RFC 6409 §8)
    assert stored.endswith(message)                                # the body untouched
    [result] = await dkim.verify(ctx.resolver, stored)
    assert result.status is dkim.Status.PASS, result.error


async def test_mx_checks_use_the_parsed_header_and_streamed_body_hashes(
        ctx: ServerContext) -> None:
    key = dkim.load_private_key(dkim.generate_key("ed25519"))
    assert isinstance(ctx.resolver, MockResolver)
    ctx.resolver.add("TXT", "sel._domainkey.sender.example", dkim.dns_record(key))
    original = b"From: bob@sender.example\r\nTo: alice@example.org\r\nSubject: x\r\n\r\n" + BODY
    signed = dkim.sign_message(original, "sender.example", "sel", key)
    tampered = signed.replace(b"line 2999", b"line 2998")
    sender = pipeline.Sender("smtp", None, conn())
    for data, status in ((signed, "pass"), (tampered, "fail")):
        reply = await pipeline.process(ctx, sender, alice_tx("bob@sender.example"),
                                       spooled(ctx, sender, data, seed=len(data)), LOG)
        assert reply.code == 250
        stored = inbox(ctx)[-1]
        assert stored.endswith(data)
        headers, _ = parse_header_section(stored)
        assert f"dkim={status}" in headers.decoded("authentication-results", "")


async def test_loop_detection_reads_the_parsed_header(ctx: ServerContext) -> None:
    sender = pipeline.Sender("smtp", None, conn())
    message = b"Received: from x\r\n" * 60 + b"From: a@b.example\r\n\r\nbody\r\n"
    reply = await pipeline.process(ctx, sender, alice_tx("a@b.example"),
                                   spooled(ctx, sender, message), LOG)
    assert (reply.code, reply.enhanced) == (554, "5.4.6")
    assert inbox(ctx) == []


def test_header_section_too_large_is_refused_and_leaves_no_file(ctx: ServerContext) -> None:
    spool = Spool(ctx.spool_directory, max_header=1000)
    for _ in range(100):
        spool.write(b"X-Filler: " + b"x" * 90 + b"\r\n")
    spool.write(b"\r\nbody\r\n")
    with pytest.raises(HeaderTooLarge):
        spool.finish()
    assert list(ctx.spool_directory.iterdir()) == []


def test_header_end_found_across_chunk_boundaries(ctx: ServerContext) -> None:
    message = b"From: a@b.example\r\nSubject: s\r\n\r\nbody\r\n"
    for cut in range(1, len(message)):
        spool = Spool(ctx.spool_directory)
        spool.write(message[:cut])
        spool.write(message[cut:])
        done = spool.finish()
        assert done.head.raw == b"From: a@b.example\r\nSubject: s\r\n\r\n"
        assert done.head.headers.get("subject") == "s"
        assert done.read() == message
        done.discard()
    assert clean_spool(ctx.spool_directory) == 0


def test_message_without_empty_line_is_all_header(ctx: ServerContext) -> None:
    spool = Spool(ctx.spool_directory)
    spool.write(b"From: a@b.example\r\nSubject: s\r\n")
    done = spool.finish()
    assert done.head.headers.get("from") == "a@b.example"
    done.discard()


def test_leftover_spool_files_are_cleaned(ctx: ServerContext) -> None:
    spool = Spool(ctx.spool_directory)
    spool.write(b"From: a@b.example\r\n\r\nhalf a mess")
    assert clean_spool(ctx.spool_directory) == 1
    assert list(ctx.spool_directory.iterdir()) == []


@pytest.mark.parametrize("size", [10, 5000, WRITE_BUFFER - 1, WRITE_BUFFER + 7, 3 * WRITE_BUFFER])
def test_spool_without_file_until_needed_gives_the_same_message(ctx: ServerContext,
                                                                size: int) -> None:
    rng = random.Random(size)
    message = b"From: a@b.example\r\nSubject: s\r\n\r\n" + bytes(
        rng.choice(b"abc \r\n\xe9") for _ in range(size))
    spools = [Spool(ctx.spool_directory), Spool(ctx.spool_directory, open_file=False)]
    pos = 0
    while pos < len(message):
        step = rng.randint(1, 70000)
        for spool in spools:
            spool.write(message[pos:pos + step])
            if spool.needs_file:
                spool.open()
            # Never more than the buffer and one chunk in memory.
            assert spool._pending_size < WRITE_BUFFER + 70000
        pos += step
    eager, lazy = (spool.finish() for spool in spools)
    assert lazy.read() == eager.read() == message
    assert not eager.in_memory
    # Held in memory up to the end (its readers need no file system) only when small.
    assert lazy.in_memory == (len(message) < WRITE_BUFFER)
    assert lazy.path.read_bytes() == message
    for limit in (0, 1, 100, len(message) + 1):
        assert lazy.read_start(limit) == eager.read_start(limit) == message[:limit]
    assert (lazy.size, lazy.eightbit, lazy.head.raw) == (eager.size, eager.eightbit,
                                                         eager.head.raw)
    eager.discard()
    lazy.discard()
    assert list(ctx.spool_directory.iterdir()) == []


def test_spool_discarded_before_its_file_exists_leaves_nothing(ctx: ServerContext) -> None:
    spool = Spool(ctx.spool_directory, open_file=False)
    spool.write(b"From: a@b.example\r\n\r\nhalf a mess")
    assert not spool.needs_file
    spool.discard()
    assert clean_spool(ctx.spool_directory) == 0


def test_lazy_spool_header_section_too_large_leaves_no_file(ctx: ServerContext) -> None:
    spool = Spool(ctx.spool_directory, max_header=1000, open_file=False)
    for _ in range(100):
        spool.write(b"X-Filler: " + b"x" * 90 + b"\r\n")
    with pytest.raises(HeaderTooLarge):
        spool.finish()
    assert not ctx.spool_directory.exists() or list(ctx.spool_directory.iterdir()) == []


def test_discard_soon_removes_the_spool_file(ctx: ServerContext) -> None:
    spool = Spool(ctx.spool_directory, open_file=False)
    spool.write(b"From: a@b.example\r\n\r\nbody\r\n")
    done = spool.finish()
    assert done.path.exists()
    done.discard_soon()
    for _ in range(500):
        if not done.path.exists():
            break
        time.sleep(0.01)
    assert not done.path.exists()


def test_spool_names_given_on_event_loops_are_removed_in_batches_even_if_a_loop_ends(
        tmp_path: Path) -> None:
    """unlink_soon on an event loop gathers names for a short while, then one background
    job removes them; a loop closed before its timer fired leaves its names to the next
    loop's batch, never behind."""
    import asyncio

    from kittiwake.smtpserver.spool import unlink_soon

    names = [tmp_path / f"n{i}" for i in range(6)]
    for name in names:
        name.write_bytes(b"x")

    async def give(batch: list[Path], linger: float) -> None:
        for name in batch:
            unlink_soon(name)
        await asyncio.sleep(linger)

    asyncio.run(give(names[:3], 0))  # its loop closes at once: its timer never fires
    assert all(name.exists() for name in names[:3])
    asyncio.run(give(names[3:], 0.2))
    for _ in range(500):
        if not any(name.exists() for name in names):
            break
        time.sleep(0.01)
    assert not any(name.exists() for name in names)


def test_small_message_finished_on_the_loop_into_a_reserved_file(ctx: ServerContext) -> None:
    reserve = SpoolReserve(ctx.spool_directory)
    message = b"From: a@b.example\r\nSubject: s\r\n\r\nbody \xe9\r\n"
    assert reserve.take() is None  # empty at first: it asks the background thread for more
    reserved = ctx.spool_directory / RESERVE_DIR
    for _ in range(500):
        if reserved.is_dir() and len(list(reserved.iterdir())) >= 8:
            break
        time.sleep(0.01)
    lazy = Spool(ctx.spool_directory, open_file=False)
    eager = Spool(ctx.spool_directory)
    for spool in (lazy, eager):
        spool.write(message[:10])
        spool.write(message[10:])
    done, reference = lazy.finish_in_memory(reserve), eager.finish()
    assert done is not None
    assert done.path.parent == ctx.spool_directory / RESERVE_DIR
    assert done.path.read_bytes() == done.read() == reference.read() == message
    assert (done.size, done.eightbit, done.head.raw, done.body_hashes) == (
        reference.size, reference.eightbit, reference.head.raw, reference.body_hashes)
    # A message that went to its own file, or has an oversized header, is not for it.
    big = Spool(ctx.spool_directory, open_file=False)
    big.write(b"x" * 10)
    big.open()
    assert big.finish_in_memory(reserve) is None
    done.discard()
    reference.discard()
    big.discard()
    reserve.release()  # at exit: the unused files are removed (a refill under way stops)
    for _ in range(500):
        if not list(reserved.iterdir()):
            break
        time.sleep(0.01)
    assert list(reserved.iterdir()) == []
    # Left-over reserve files (a crash) go at the next start, uncounted.
    (ctx.spool_directory / RESERVE_DIR / "1.2.left").write_bytes(b"")
    assert clean_spool(ctx.spool_directory) == 0
    assert not (ctx.spool_directory / RESERVE_DIR).exists()  # made again on demand


def test_a_spooled_message_crosses_to_the_server_process_by_its_file(ctx: ServerContext) -> None:
    """What an SMTP worker sends the server (pickled): the file, the parsed header and
    our prefix, not a second copy of the text it held in memory."""
    import pickle

    body = b"".join(b"word %d of the body\r\n" % i for i in range(500))
    message = (b"From: a@b.example\r\nSubject: s\r\nDKIM-Signature: v=1; a=rsa-sha256;"
               b" d=b.example; s=x;\r\n h=from; bh=; b=\r\n\r\n") + body
    spool = Spool(ctx.spool_directory, open_file=False)
    spool.write(message)
    sent = spool.finish()
    sent.prefix = b"Received: by mx.example.org; Wed, 2 Dec 2026 08:00:00 +0000\r\n"
    assert sent.in_memory
    frame = pickle.dumps(sent, protocol=pickle.HIGHEST_PROTOCOL)
    assert len(frame) < len(body)
    got = pickle.loads(frame)
    assert not got.in_memory
    assert (got.path, got.size, got.prefix, got.eightbit, got.body_hashes) == \
        (sent.path, sent.size, sent.prefix, sent.eightbit, sent.body_hashes)
    assert got.head.raw == sent.head.raw
    assert list(got.head.headers) == list(sent.head.headers)
    assert got.head.headers.get("subject") == "s"
    assert got.head.dkim_fields == sent.head.dkim_fields  # split again only when asked
    assert got.read() == sent.read() == sent.prefix + message
    assert got.read_start(100) == sent.read_start(100) == sent.prefix + message[:100]
    sent.discard()
