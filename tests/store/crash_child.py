"""Child process of the crash tests: delivers messages forever, acknowledging each.

    crash_child.py DATA_DIR FIRST_SEED [serial|group|index|early]

Prints "ok MESSAGE_ID SIZE SEED KIND" after the delivery returned (that is the
acknowledgement a client would get), flushing stdout each time.

- serial: one ``deliver`` after the other.
- group: WRITERS concurrent writers, so deliveries share group commits; each
  writer takes turns with the four ways in: ``deliver`` (bytes), ``append``
  (an account spool file), ``deliver_spool`` of an account spool with a
  prefix, and ``deliver_spool`` of a data-dir spool kept by its owner (hard
  link; the owner removes it after the acknowledgement, as SMTP does).
- index: delivers a few messages with the background indexer held off, prints
  "done" and waits to be killed: committed, acknowledged, not indexed.
- early: as group, with each file fsync slowed down (a few milliseconds), so that
  the kill often lands after a COMMIT and before the fsyncs that overlap it
  ended: rows committed, files not known durable, nothing acknowledged.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from pathlib import Path

from kittiwake import durable
from kittiwake.store import Appended, Store
from kittiwake.store import store as store_module

WRITERS = 6
KINDS = ("deliver", "append", "spool", "shared")


def message(seed: int) -> bytes:
    rng = random.Random(seed)
    lines = range(rng.randint(1, 400))
    body = b"".join(b"line %d %x\r\n" % (i, rng.getrandbits(64)) for i in lines)
    return b"Subject: crash test %d\r\nMessage-ID: <%d@crash>\r\n\r\n%s" % (seed, seed, body)


def prefix(seed: int) -> bytes:
    return b"Received: from crash-%d by crash.example; Tue, 1 Dec 2026 10:00:00 +0000\r\n" % seed


def expected(seed: int, kind: str) -> bytes:
    """The message as the store must give it back."""
    return prefix(seed) + message(seed) if kind in ("spool", "shared") else message(seed)


def ack(message_id: int, size: int, seed: int, kind: str) -> None:
    sys.stdout.write(f"ok {message_id} {size} {seed} {kind}\n")
    sys.stdout.flush()


async def serial(store: Store, start: int) -> None:
    account = await store.account("crash")
    seed = start
    while True:
        data = message(seed)
        delivered = await account.deliver("Inbox", data)
        ack(delivered.message_id, len(data), seed, "deliver")
        seed += 1


async def writer(store: Store, start: int, step: int) -> None:
    account = await store.account("crash")
    seed = start
    turn = start
    while True:
        kind = KINDS[turn % len(KINDS)]
        data = message(seed)
        if kind == "deliver":
            delivered = await account.deliver("Inbox", data)
        elif kind == "append":
            spool = account.spool()
            spool.write(data)
            path, _ = await asyncio.to_thread(spool.finish)
            [delivered] = await account.append("Inbox", [Appended(path)])
        elif kind == "spool":
            spool = account.spool()
            spool.write(data)
            delivered = await account.deliver_spool("Inbox", spool, prefix(seed))
        else:
            spool = store.spool()
            spool.write(data)
            path, _ = await asyncio.to_thread(spool.finish)
            delivered = await account.deliver_spool("Inbox", path, prefix(seed), keep=True)
            os.unlink(path)
        ack(delivered.message_id, delivered.size, seed, kind)
        seed += step
        turn += 1


async def group(store: Store, start: int) -> None:
    await asyncio.gather(*(writer(store, start + i, WRITERS) for i in range(WRITERS)))


async def index(store: Store, start: int) -> None:
    store_module.INDEX_DELAY = 3600  # the crash comes after the commits, before indexing
    account = await store.account("crash")
    for seed in range(start, start + 5):
        spool = account.spool()
        spool.write(message(seed))
        delivered = await account.deliver_spool("Inbox", spool, prefix(seed))
        ack(delivered.message_id, delivered.size, seed, "spool")
    sys.stdout.write("done\n")
    sys.stdout.flush()
    await asyncio.Event().wait()


async def early(store: Store, start: int) -> None:
    real = durable.fsync_file
    rng = random.Random(start)

    def slow_fsync(path: Path) -> None:
        time.sleep(rng.uniform(0.002, 0.02))
        real(path)

    durable.fsync_file = slow_fsync  # type: ignore[assignment]
    await group(store, start)


async def main(data_dir: Path, start: int, mode: str) -> None:
    store = Store(data_dir)
    modes = {"serial": serial, "group": group, "index": index, "early": early}
    await modes[mode](store, start)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]),
                     sys.argv[3] if len(sys.argv) > 3 else "serial"))
