"""Child process of the crash test: delivers messages forever, acknowledging each.

Prints "ok MESSAGE_ID SIZE SEED" after deliver() returned (that is the
acknowledgement a client would get), flushing stdout each time.
"""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path

from kittiwake.store import Store


def message(seed: int) -> bytes:
    rng = random.Random(seed)
    lines = range(rng.randint(1, 400))
    body = b"".join(b"line %d %x\r\n" % (i, rng.getrandbits(64)) for i in lines)
    return b"Subject: crash test %d\r\nMessage-ID: <%d@crash>\r\n\r\n%s" % (seed, seed, body)


async def main(data_dir: Path, start: int) -> None:
    store = Store(data_dir)
    account = await store.account("crash")
    seed = start
    while True:
        data = message(seed)
        delivered = await account.deliver("Inbox", data)
        sys.stdout.write(f"ok {delivered.message_id} {len(data)} {seed}\n")
        sys.stdout.flush()
        seed += 1


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
