"""Synthetic mail corpora for benchmarks: text, HTML alternatives, attachments."""

from __future__ import annotations

import base64
import random

WORDS = [
    "meeting", "report", "budget", "invoice", "quarterly", "schedule", "project", "release",
    "travel", "dinner", "contract", "review", "draft", "update", "deadline", "holiday",
    "garden", "recipe", "kittiwake", "seabird", "harbour", "lighthouse", "tide", "storm",
    "ferry", "island",
]


def _text(rng: random.Random, size: int) -> str:
    out: list[str] = []
    n = 0
    while n < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14)))
        out.append(line)
        n += len(line) + 2
    return "\r\n".join(out)


def message(rng: random.Random, index: int, size: int) -> bytes:
    """One message of about ``size`` bytes; kind chosen at random."""
    kind = rng.random()
    head = (f"From: Sender {index} <sender{index % 97}@example.net>\r\n"
            f"To: alice@example.org\r\nSubject: {rng.choice(WORDS)} {rng.choice(WORDS)} {index}\r\n"
            f"Message-ID: <{index}.{rng.getrandbits(32)}@example.net>\r\n"
            f"Date: Tue, 24 Nov 2026 10:{index % 60:02d}:00 +0000\r\nMIME-Version: 1.0\r\n")
    if kind < 0.5:
        return (head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" +
                _text(rng, size) + "\r\n").encode()
    if kind < 0.8:
        text = _text(rng, size // 2)
        html = "<html><body><p>" + text.replace("\r\n", "</p><p>") + "</p></body></html>"
        return (head + 'Content-Type: multipart/alternative; boundary="b1"\r\n\r\n'
                "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text +
                "\r\n--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html +
                "\r\n--b1--\r\n").encode()
    text = _text(rng, min(2000, size // 4))
    blob = base64.encodebytes(rng.randbytes(max(size - len(text), 100) * 3 // 4)).decode()
    blob = blob.replace("\n", "\r\n")
    return (head + 'Content-Type: multipart/mixed; boundary="m1"\r\n\r\n'
            "--m1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text +
            "\r\n--m1\r\nContent-Type: application/pdf; name=\"doc.pdf\"\r\n"
            "Content-Transfer-Encoding: base64\r\n"
            "Content-Disposition: attachment; filename=\"doc.pdf\"\r\n\r\n" + blob +
            "--m1--\r\n").encode()


def varied(count: int, seed: int = 1, low: int = 1024, high: int = 200 * 1024) -> list[bytes]:
    """Messages of 1-200 KiB, sizes skewed small like real mail."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        size = int(low + (high - low) * rng.random() ** 3)
        out.append(message(rng, i, size))
    return out


def mbox(messages: list[bytes]) -> bytes:
    parts = []
    for data in messages:
        body = data.replace(b"\r\n", b"\n").replace(b"\nFrom ", b"\n>From ")
        parts.append(b"From sender@example.net Tue Nov 24 10:00:00 2026\n" + body + b"\n")
    return b"".join(parts)
