"""A FETCH of many message bodies through the driver's batches (imapserver.messages
_send_fast): small batches built ahead while one is written, big ones after, a message
over fastfetch.READ_MAX streamed from its file; the client gets every body, in order."""

from __future__ import annotations

import asyncio
import imaplib
import random
import re

from tests.imapserver.conftest import PASSWORD, IMAPServer

from kittiwake.imapserver import fastfetch


def _message(i: int, size: int) -> bytes:
    rng = random.Random(i)
    head = (f"From: sender{i}@example.net\r\nTo: alice@example.org\r\n"
            f"Subject: batch {i}\r\nMessage-ID: <b{i}@example.net>\r\n\r\n").encode()
    line = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz ") for _ in range(76)) + b"\r\n"
    return head + line * (size // len(line) + 1)


async def test_every_body_arrives_in_order_across_batches(imap_server: IMAPServer) -> None:
    # Enough octets for several READ_BUDGET batches, small and large messages mixed,
    # one larger than READ_MAX (a file literal the driver copies).
    sizes = [300, 5_000, 70_000] * 90 + [fastfetch.READ_MAX + 10_000] + [2_000] * 40
    messages = [_message(i, size) for i, size in enumerate(sizes)]
    assert sum(map(len, messages)) > 3 * fastfetch.READ_BUDGET
    for data in messages:
        await imap_server.deliver(data)

    def run() -> list[tuple[int, bytes]]:
        imap = imaplib.IMAP4("127.0.0.1", imap_server.port, timeout=20)
        imap.login("alice@example.org", PASSWORD)
        imap.select("INBOX", readonly=True)
        typ, data = imap.fetch("1:*", "(BODY.PEEK[])")
        assert typ == "OK"
        imap.logout()
        got = []
        for item in data:
            if isinstance(item, tuple):
                seq = re.match(rb"(\d+) \(BODY\[\] \{", item[0])
                assert seq is not None
                got.append((int(seq.group(1)), item[1]))
        return got

    got = await asyncio.to_thread(run)
    assert [seq for seq, _ in got] == list(range(1, len(messages) + 1))
    for (seq, body), want in zip(got, messages, strict=True):
        assert body == want, f"message {seq} differs"
