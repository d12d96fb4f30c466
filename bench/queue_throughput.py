"""Outgoing queue benchmark: kittiwake's queue against Postfix's, both relaying to smtp-sink.

    .venv/bin/python -m bench.queue_throughput [--quick | --10k] [--messages N] [--size BYTES]

The same N messages (one recipient each, spread over ``DOMAINS`` recipient
domains) are first queued, then delivered over SMTP (RFC 5321, plain text,
loopback only) to Postfix's ``smtp-sink`` (Debian ``postfix``), which answers
250 to everything:

- kittiwake: :class:`kittiwake.queue.Queue` + :class:`~kittiwake.queue.Scheduler`
  (default concurrency, on the event loop ``kittiwake serve`` runs: uvloop
  unless ``KITTIWAKE_EVENT_LOOP=asyncio``) +
  :class:`~kittiwake.queue.deliver.Deliverer` with a relay transport (the
  ``smtp`` smarthost transport) pointing at the sink. The messages are
  enqueued first (fsync per message, untimed); the time runs from starting
  the scheduler until every recipient is recorded delivered.
- Postfix: a private instance (:mod:`tests.integration.postfix`) with
  ``relayhost = [sink]:PORT``. Messages are injected with sendmail(1) and
  parked in the hold queue by a ``HOLD`` header check (untimed); the time
  runs from ``postsuper -H ALL`` plus ``postqueue -f`` until the log has N
  ``status=sent`` lines.

Prints messages/second for each (median of alternating rounds with fresh
queues), the ratio, and the peak RSS of this process while kittiwake
delivered (the messages are generated when needed, never held as a corpus).
``--10k``: one round of 10,000 messages, the size the queue is meant to
carry with bounded memory. Not a timed test: these machines are shared and
noisy, so compare the two numbers of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kittiwake.dns import MockResolver
from kittiwake.queue import Envelope, NewRecipient, Queue, Scheduler, Status
from kittiwake.queue.deliver import Deliverer, Relay
from kittiwake.queue.scheduler import DEFAULT_CONCURRENCY
from kittiwake.server import eventloop
from kittiwake.smtpclient import TLSMode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from integration.loopback import free_loopback, free_port  # noqa: E402
from integration.postfix import Postfix, PostfixError, tool  # noqa: E402

DOMAINS = 20
SENDER = "sender@source.bench.test"
HOSTNAME = "kw.bench.test"


class Corpus:
    """``count`` (recipient, message) pairs, made on demand (same bytes every time);
    recipients cycle over DOMAINS domains."""

    def __init__(self, count: int, size: int) -> None:
        self.count = count
        self.size = size

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> tuple[str, bytes]:
        if not 0 <= i < self.count:
            raise IndexError(i)
        rng = random.Random(i)
        words = ["queue", "relay", "kittiwake", "harbour", "tide", "ferry", "storm", "island"]
        rcpt = f"user{i}@d{i % DOMAINS}.bench.test"
        body_lines = []
        n = 0
        while n < self.size:
            line = " ".join(rng.choice(words) for _ in range(10))
            body_lines.append(line)
            n += len(line) + 2
        data = (f"From: <{SENDER}>\r\nTo: <{rcpt}>\r\nSubject: bench {i}\r\n"
                f"Message-ID: <bench-{i}@source.bench.test>\r\n\r\n"
                + "\r\n".join(body_lines) + "\r\n").encode()
        return rcpt, data


def corpus(count: int, size: int) -> Corpus:
    return Corpus(count, size)


DELIVERY_RSS: list[float] = []  # peak RSS when each kittiwake round had delivered everything


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Sink:
    """``smtp-sink -u nobody IP:PORT 100``: accepts everything, keeps nothing."""

    def __init__(self) -> None:
        self.ip = free_loopback()
        self.port = free_port(self.ip)
        self.proc = subprocess.Popen([tool("smtp-sink"), "-u", "nobody", "-h", "sink.bench.test",
                                      f"{self.ip}:{self.port}", "100"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((self.ip, self.port), 0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                    raise SystemExit(f"smtp-sink did not start: {err}") from None
                time.sleep(0.05)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def _kittiwake(base: Path, sink: Sink, messages: Corpus,
                     concurrency: int = DEFAULT_CONCURRENCY) -> float:
    queue = Queue(base / "kw", history_keep=len(messages) + 10)  # to count them after
    relay = Relay(sink.ip, sink.port, TLSMode.NONE)
    deliverer = Deliverer(resolver=MockResolver(), hostname=HOSTNAME, select=lambda b: relay)
    for i in range(len(messages)):
        rcpt, data = messages[i]
        await queue.enqueue(Envelope(SENDER, (NewRecipient(rcpt),)), data)
    scheduler = Scheduler(queue, deliverer, concurrency=concurrency)
    start = time.perf_counter()
    scheduler.start()
    deadline = time.monotonic() + 600
    try:
        # next_due is one MIN() query: cheap to poll, None once nothing is queued.
        while await queue.next_due() is not None or scheduler.busy_domains:
            if time.monotonic() > deadline:
                raise SystemExit("kittiwake did not deliver everything in 600 s")
            await asyncio.sleep(0.02)
        took = time.perf_counter() - start
        DELIVERY_RSS.append(peak_rss_mib())  # before the check below reads the history
    finally:
        await scheduler.close()
    done = await queue.history(limit=len(messages) + 10)
    delivered = sum(1 for r in done if r.status is Status.DELIVERED)
    queue.close()
    if delivered != len(messages):
        failed = [r.last_error for r in done if r.status is not Status.DELIVERED][:3]
        raise SystemExit(f"kittiwake delivered {delivered} of {len(messages)}: {failed}")
    return len(messages) / took


def bench_kittiwake(base: Path, sink: Sink, messages: Corpus,
                    concurrency: int = DEFAULT_CONCURRENCY) -> float:
    # On the loop `kittiwake serve` runs (uvloop unless KITTIWAKE_EVENT_LOOP=asyncio).
    return eventloop.run(_kittiwake(base, sink, messages, concurrency))


def _count(log: Path, needle: str) -> int:
    try:
        return log.read_text(errors="replace").count(needle)
    except OSError:
        return 0


def _wait_count(pf: Postfix, needle: str, count: int, what: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while _count(pf.log_file, needle) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"Postfix: only {_count(pf.log_file, needle)} of {count} {what}:\n"
                             f"{pf.maillog()[-3000:]}")
        time.sleep(0.02)


def bench_postfix(base: Path, sink: Sink, messages: Corpus) -> float:
    checks = base / "hold_checks"
    checks.write_text("/^Message-ID:/ HOLD\n")  # park every message in the hold queue
    main = {
        "relayhost": f"[{sink.ip}]:{sink.port}",
        "smtp_tls_security_level": "none",
        "header_checks": f"regexp:{checks}",
        "default_destination_rate_delay": "0",
    }
    with Postfix(main=main, hostname="pf.bench.test", directory=base / "postfix") as pf:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: pf.sendmail(messages[i][1], sender=SENDER,
                                                recipients=[messages[i][0]]),
                          range(len(messages))))
        _wait_count(pf, ": hold: header Message-ID:", len(messages), "messages held")
        start = time.perf_counter()
        # postsuper -H: held messages go to the deferred queue; postqueue -f: deliver now.
        subprocess.run([tool("postsuper"), "-c", str(pf.config_dir), "-H", "ALL"],
                       capture_output=True, timeout=60, check=True)
        pf.postqueue_flush()
        _wait_count(pf, "status=sent", len(messages), "messages sent")
        took = time.perf_counter() - start
    return len(messages) / took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts (under a minute)")
    parser.add_argument("--10k", dest="tenk", action="store_true",
                        help="one round of 10,000 messages (a few minutes)")
    parser.add_argument("--messages", type=int, default=0, help="messages per queue and round")
    parser.add_argument("--size", type=int, default=10 * 1024, help="message size in bytes")
    parser.add_argument("--rounds", type=int, default=0, help="alternating rounds; medians")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY,
                        help="domains kittiwake delivers to in parallel (default: the"
                             " server's)")
    args = parser.parse_args()
    count = args.messages or (300 if args.quick else 10_000 if args.tenk else 2000)
    rounds = args.rounds or (1 if args.tenk else 3)
    try:
        for name in ("smtp-sink", "postfix", "sendmail", "postsuper", "postqueue"):
            tool(name)
    except PostfixError as exc:
        raise SystemExit(str(exc)) from None
    messages = corpus(count, args.size)
    mode = "quick" if args.quick else "10k" if args.tenk else "full"
    print(f"outgoing queue benchmark: {count} messages of ~{args.size} bytes to {DOMAINS}"
          f" domains, relayed to smtp-sink on loopback, {rounds} round(s) ({mode} run)",
          flush=True)
    rss_before = peak_rss_mib()
    rss_kittiwake = rss_before
    ours: list[float] = []
    theirs: list[float] = []
    for n in range(rounds):
        base = Path(tempfile.mkdtemp(prefix="kw-bench-queue-"))
        base.chmod(0o755)  # Postfix daemons must reach their directories
        sink = Sink()
        try:
            ours.append(bench_kittiwake(base, sink, messages, args.concurrency))
            rss_kittiwake = DELIVERY_RSS[-1]
            print(f"  round {n + 1}: kittiwake {ours[-1]:7.1f} msg/s", flush=True)
            theirs.append(bench_postfix(base, sink, messages))
        finally:
            sink.close()
            shutil.rmtree(base, ignore_errors=True)
        print(f"  round {n + 1}: Postfix {theirs[-1]:7.1f} msg/s", flush=True)
    kw, pf = statistics.median(ours), statistics.median(theirs)
    print(f"kittiwake queue (Scheduler + Deliverer, relay, concurrency {args.concurrency},"
          f" {eventloop.loop_factory()[0]}):"
          f" {kw:8.1f} msg/s")
    print(f"Postfix 3 (qmgr + smtp(8), relayhost):          {pf:8.1f} msg/s")
    print(f"ratio kittiwake / Postfix: {kw / pf:.2f}")
    print(f"peak RSS of this process: {rss_kittiwake:.1f} MiB when kittiwake's queue had"
          f" delivered everything ({rss_before:.1f} MiB before it ran)")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    main()
