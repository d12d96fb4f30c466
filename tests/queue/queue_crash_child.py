"""Child process of the queue crash test: enqueues forever, acknowledging each.

Prints "ok MESSAGE_ID SEED" after enqueue() returned (the moment the SMTP
server would answer 250), flushing stdout each time.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from kittiwake.queue import Envelope, NewRecipient, QueueStore


def message(seed: int) -> bytes:
    rng = random.Random(seed)
    body = b"".join(b"line %d %x\r\n" % (i, rng.getrandbits(64))
                    for i in range(rng.randint(1, 300)))
    return b"Subject: queue crash %d\r\n\r\n%s" % (seed, body)


def recipients(seed: int) -> list[str]:
    return [f"r{seed}-{i}@d{i % 3}.example" for i in range(1 + seed % 3)]


def main(root: Path, start: int) -> None:
    store = QueueStore(root)
    seed = start
    while True:
        env = Envelope(mail_from=f"s{seed}@example.org",
                       recipients=tuple(NewRecipient(r) for r in recipients(seed)))
        msg = store.enqueue(env, message(seed))
        sys.stdout.write(f"ok {msg.id} {seed}\n")
        sys.stdout.flush()
        seed += 1


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
