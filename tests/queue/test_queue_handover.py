"""Spool hand-over (add_file: rename or hard link plus a header prefix, no copy),
streamed delivery of prefix + file, connection reuse with a per-connection limit,
and the schema 1 -> 2 upgrade."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

from queue_helpers import T0, Clock, envelope
from tests.smtpclient.sink import SinkServer

from kittiwake.dns import MockResolver
from kittiwake.queue import Queue, QueueStore, Scheduler
from kittiwake.queue import metrics as queue_metrics
from kittiwake.queue.deliver import Deliverer, Relay
from kittiwake.queue.pool import ConnectionPool
from kittiwake.queue.schema import DDL
from kittiwake.smtpclient import TLSMode

PREFIX = (b"DKIM-Signature: v=1; a=ed25519-sha256; d=example.org; s=k; b=abc\r\n"
          b"Received: from client by mail.example.org; Tue, 1 Dec 2026 12:00:00 +0000\r\n")
BODY = b"From: alice@example.org\r\nSubject: spooled\r\n\r\n.dot line\r\nbody\r\n"


def spool(directory: Path, name: str = "spool-1") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(BODY)
    return path


def counter(use: str) -> float:
    return queue_metrics.CONNECTIONS.labels(use=use)._value.get()  # type: ignore[attr-defined]


def test_add_file_renames_without_copying(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "queue")
    try:
        path = spool(tmp_path / "queue" / "spool")
        inode = path.stat().st_ino
        message = store.add_file(path, PREFIX, envelope("bob@example.net"), now=T0)
        assert not path.exists()
        assert message.path.stat().st_ino == inode  # the same file, renamed
        assert message.prefix == PREFIX and message.size == len(PREFIX) + len(BODY)
        assert message.file_size == len(BODY)
        assert store.read(message.id) == PREFIX + BODY
        # The prefix survives a restart (it is in the committed row).
        store.close()
        store = QueueStore(tmp_path / "queue")
        assert store.message(message.id).prefix == PREFIX
    finally:
        store.close()


def test_add_file_by_hard_link_keeps_the_spool_file(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "queue")
    try:
        path = spool(tmp_path / "queue" / "spool")
        message = store.add_file(path, b"", envelope("bob@example.net"), now=T0, link=True)
        assert path.exists() and path.stat().st_nlink == 2
        assert os.path.samefile(path, message.path)
        assert store.read(message.id) == BODY
    finally:
        store.close()


async def test_spooled_message_is_sent_as_prefix_plus_file(tmp_path: Path) -> None:
    sink = await SinkServer().start()
    queue = Queue(tmp_path / "q", clock=Clock())
    deliverer = Deliverer(resolver=MockResolver(), hostname="kw.test",
                          select=lambda b: Relay("127.0.0.1", sink.port, TLSMode.NONE))
    scheduler = Scheduler(queue, deliverer, clock=queue.clock)
    try:
        path = spool(tmp_path / "q" / "queue" / "spool")
        await queue.add_file(path, PREFIX, envelope("bob@example.net"))
        await scheduler.dispatch()
        await scheduler.wait_idle()
    finally:
        await scheduler.close()
        await deliverer.close()
        queue.close()
        await sink.close()
    [received] = sink.messages
    assert received.sha256 == hashlib.sha256(PREFIX + BODY).hexdigest()  # dots unstuffed
    assert received.recipients == ["bob@example.net"]


async def test_connection_carries_messages_up_to_its_limit(tmp_path: Path) -> None:
    sink = await SinkServer().start()
    queue = Queue(tmp_path / "q", clock=Clock())
    deliverer = Deliverer(resolver=MockResolver(), hostname="kw.test",
                          select=lambda b: Relay("127.0.0.1", sink.port, TLSMode.NONE))
    deliverer.pool = ConnectionPool(max_messages=3)
    scheduler = Scheduler(queue, deliverer, clock=queue.clock)
    before = {use: counter(use) for use in ("new", "reused", "retired")}
    try:
        queue.store.enqueue_many([(envelope(f"u{i}@example.net"), BODY) for i in range(7)],
                                 now=T0)
        await scheduler.dispatch()
        await scheduler.wait_idle()
    finally:
        await scheduler.close()
        await deliverer.close()
        queue.close()
        await sink.close()
    assert len(sink.messages) == 7
    assert sink.connections == 3  # 3 + 3 + 1 messages
    for session in sink.sessions:
        verbs = [line.split(":")[0].split(" ")[0] for line in session]
        mails = verbs.count("MAIL")
        assert verbs.count("RSET") == mails - 1  # RSET before each further transaction
    assert counter("new") - before["new"] == 3
    assert counter("reused") - before["reused"] == 4
    assert counter("retired") - before["retired"] == 2


def test_schema_1_queue_is_upgraded(tmp_path: Path) -> None:
    root = tmp_path / "queue"
    root.mkdir()
    v1 = DDL.replace(",\n  prefix BLOB", "").replace(
        "CREATE INDEX recipient_domain_due ON recipient (domain, status, held, next_attempt);",
        "")
    db = sqlite3.connect(root / "index.db")
    db.executescript(v1)
    db.execute("INSERT INTO message (id, mail_from, from_domain, smtputf8, eightbit,"
               " tls_required_no, size, created) VALUES (1, 'a@x.test', 'x.test', 0, 0, 0,"
               " 3, 0)")
    db.execute("INSERT INTO recipient (message_id, address, domain, next_attempt)"
               " VALUES (1, 'b@y.test', 'y.test', 0)")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    (root / "msg" / "0").mkdir(parents=True)
    (root / "msg" / "0" / "1").write_bytes(b"x\r\n")
    readonly = QueueStore(root, readonly=True)  # a stopped server's old queue
    try:
        assert readonly.message(1).prefix == b""
    finally:
        readonly.close()
    store = QueueStore(root)
    try:
        assert store.message(1).prefix == b"" and store.read(1) == b"x\r\n"
        [batch] = store.due_for_domain("y.test", T0)
        assert batch.message.id == 1
        path = spool(root / "spool")
        assert store.add_file(path, PREFIX, envelope("c@y.test")).prefix == PREFIX
    finally:
        store.close()
