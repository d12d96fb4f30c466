"""CPU of the junk filter on the MX path, per message, in the server process.

    PYTHONPATH=src:. .venv/bin/python -m bench.junkcpu [--messages N]
        [--mode junk|store|record] [--profile] [--callgrind]

Builds a store in a temporary directory with one account (``alice``, junk
filter on), trains it from a few hundred messages (ham read in the Inbox,
junk in Junk, from known senders), then delivers N messages the way the MX
does (:func:`kittiwake.smtpserver.deliver.deliver_local` with the sender's
identities: ``classify``, the store delivery, ``record_delivery``, ``pause``),
8 at a time, and waits until the filter has recorded and learnt everything.

The senders of the measured messages are a fixed mix: known good senders
(decided by reputation), known junk senders (filed in Junk, which trains),
and new senders from new networks (the content classifier judges the words).

The words of a message are computed by a stand-in for the CPU pool that
returns them precomputed (in the server they are computed in a pool process,
not the server's): ``--inline-words`` computes them in the process instead.

Prints the process CPU time (all threads) per message of the delivery phase.
``--mode store`` delivers the same messages with the filter closed after the
training (no verdicts, no learning), so the difference of the two is the
filter's cost. ``--mode record`` measures the junk database's
record_deliveries alone (no store, no event loop): the history of the training
senders written, then the measured messages recorded 8 at a time, as the
filter's writer batches them (the same batches in every run, unlike the MX
path, whose batches follow the timing). ``--profile``
prints cProfile's top functions (loop thread only). ``--callgrind`` runs
this command under ``valgrind --tool=callgrind``, counting the delivery phase
only (``callgrind_control --instr``), and prints instructions per message: the
reliable figure on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from bench.corpus import message as ham_message
from kittiwake.config import DomainsConfig
from kittiwake.dns import MockResolver
from kittiwake.junk import JunkFilter, SenderIdentities
from kittiwake.junk.database import JunkDatabase
from kittiwake.junk.tokens import message_words
from kittiwake.smtpserver.context import ServerContext
from kittiwake.smtpserver.deliver import LocalDelivery, deliver_local
from kittiwake.store import Flags, Store

T = TypeVar("T")
A = TypeVar("A")

CONF = DomainsConfig.model_validate({
    "domains": {"example.org": {}},
    "accounts": {"alice": {"domain": "example.org",
                           "destinations": {"alice@example.org": {}},
                           "junk": {"min_training_messages": 20,
                                    "first_time_delay_seconds": 5}}}})
JUNK_WORDS = ["winner", "prize", "casino", "bitcoin", "pills", "discount", "offer",
              "claim", "urgent", "lottery", "investment", "guaranteed", "free", "credit",
              "loan", "viagra", "jackpot", "exclusive", "unsubscribe", "millions"]
CONCURRENCY = 8


def junk_message(rng: random.Random, index: int, size: int) -> bytes:
    """A junk-looking text message of about ``size`` bytes."""
    lines, n = [], 0
    while n < size:
        line = " ".join(rng.choice(JUNK_WORDS) for _ in range(rng.randint(6, 14)))
        lines.append(line)
        n += len(line) + 2
    return (f"From: Lucky {index} <lucky{index}@promo{index % 13}.example>\r\n"
            f"To: alice@example.org\r\nSubject: {rng.choice(JUNK_WORDS)} {index}\r\n"
            f"Message-ID: <j{index}.{rng.getrandbits(32)}@promo.example>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            + "\r\n".join(lines) + "\r\n").encode()


def good_sender(i: int) -> SenderIdentities:
    domain = f"friend{i % 5}.example"
    return SenderIdentities(f"198.51.{i % 5}.{10 + i % 7}", dmarc_domain=domain,
                            verified_domains=frozenset({domain}),
                            address=f"person{i % 11}@{domain}")


def junk_sender(i: int) -> SenderIdentities:
    return SenderIdentities(f"203.0.{113 + i % 3}.{i % 200}",
                            address=f"lucky{i % 17}@promo{i % 13}.example",
                            verified_domains=frozenset({f"promo{i % 13}.example"}))


def new_sender(i: int) -> SenderIdentities:
    domain = f"new{i}.example"
    return SenderIdentities(f"10.{i % 250}.{i // 250 % 250}.7", dmarc_domain=domain,
                            verified_domains=frozenset({domain}), address=f"someone@{domain}")


def measured(n: int, seed: int = 7) -> list[tuple[bytes, SenderIdentities]]:
    """The messages the MX receives: 4 good, 2 junk, 4 new senders in 10."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = i % 10
        if kind < 4:
            out.append((ham_message(rng, 10_000 + i, 3000), good_sender(i)))
        elif kind < 6:
            out.append((junk_message(rng, 10_000 + i, 2000), junk_sender(i)))
        elif kind < 8:
            out.append((ham_message(rng, 10_000 + i, 3000), new_sender(i)))
        else:
            out.append((junk_message(rng, 10_000 + i, 2000), new_sender(i)))
    return out


class Precomputed:
    """A stand-in for the CPU pool (:class:`kittiwake.cpupool.CpuRunner`): the words of
    the known messages are computed up front, as a pool process would compute them."""

    def __init__(self, messages: Sequence[bytes]) -> None:
        self._words = {data: message_words(data) for data in messages}

    def call(self, fn: Callable[..., T], *args: object) -> T:
        if fn is message_words:
            words = self._words.get(_unmarked(args[0]))  # type: ignore[arg-type]
            if words is not None:
                return list(words)  # type: ignore[return-value]
        return fn(*args)

    def map(self, fn: Callable[[A], T], items: Sequence[A]) -> list[T]:
        return [self.call(fn, item) for item in items]


_MARK = re.compile(rb"X-Kittiwake-Junk:[^\r]*\r\n(?:[ \t][^\r]*\r\n)*")


def _unmarked(data: bytes) -> bytes:
    """A stored message without the X-Kittiwake-Junk field the MX put first (what
    training reads back), so that its precomputed words are found."""
    match = _MARK.match(data)
    return data[match.end():] if match else data


async def train(store: Store, junk: JunkFilter, ctx: ServerContext, rcpt: list[LocalDelivery],
                count: int) -> None:
    """Deliver ``count`` messages through the MX path (as the senders above) and let
    the user read the ham and move... file the junk: the filter learns from both."""
    rng = random.Random(3)
    for i in range(count):  # one at a time: message i gets UID i + 1
        data, who = (junk_message(rng, i, 2000), junk_sender(i)) if i % 3 == 0 else \
            (ham_message(rng, i, 2500), good_sender(i))
        await deliver_local(ctx, rcpt, data, "bounce@" + who.address.split("@")[1], sender=who)
    await junk.settled(60)
    alice = await store.account("alice")
    await alice.ensure_mailboxes(["Rejects"])  # made before mail is rejected into it
    inbox = await alice.messages("Inbox")
    await alice.store_flags("Inbox", [m.uid for m in inbox], "add", Flags.parse(["\\Seen"]))
    junked = [m for m in inbox if m.uid % 3 == 1]  # the junk senders' (i % 3 == 0)
    await junk.settled(60)
    # A third of the Inbox is junk the filter missed (untrained then): the user moves it.
    for m in junked:
        await alice.move("Inbox", [m.uid], "Junk")
    await junk.settled(60)


async def run(args: argparse.Namespace, data_dir: Path) -> None:
    todo = measured(args.messages)
    store = Store(data_dir)
    cpu = None if args.inline_words else Precomputed([d for d, _ in todo])
    junk = JunkFilter(store, lambda: CONF, MockResolver(), sleep=_no_sleep,
                      **({"cpu": cpu} if cpu is not None else {}))
    # The account's changes followed, without the sweep of start(): a minute in, that
    # would train the account from its mailboxes (never trained as a whole), in the
    # middle of a slow run (callgrind) and of what it measures.
    junk.reload(CONF)
    ctx = ServerContext(hostname="mx.example.org", store=store, domains=CONF,
                        junk=junk if args.mode == "junk" else None)
    target = ctx.index.lookup("alice", "example.org")
    assert target is not None
    rcpt = [LocalDelivery("alice@example.org", target)]
    await train(store, junk, ServerContext(hostname="mx.example.org", store=store,
                                           domains=CONF, junk=junk), rcpt, args.training)
    stats = await junk.stats("alice")
    if args.mode == "store":  # the store alone: no filter learning from its changes either
        await junk.close()
    profile = cProfile.Profile(time.thread_time) if args.profile else None
    executor = ProfilingExecutor() if args.profile else None
    if executor is not None:
        asyncio.get_running_loop().set_default_executor(executor)
        executor.on = True
    await _indexed(store)
    started_cpu, started = time.process_time(), time.monotonic()
    if profile is not None:
        profile.enable()
    _instrument("on")
    for start in range(0, len(todo), CONCURRENCY):
        batch = todo[start:start + CONCURRENCY]
        results = await asyncio.gather(*(deliver_local(
            ctx, rcpt, data, "bounce@" + who.address.split("@")[1],
            sender=who if args.mode == "junk" else None) for data, who in batch))
        # A junk reject (kept in Rejects) has its code; a store failure has none.
        assert all(f.code for r in results for f in r), results
        # The next messages are judged by all history before them (the same verdicts
        # in every run; the MX's own order depends on timing).
        await junk.recorded()
    await junk.settled(60)
    await _indexed(store)
    _instrument("off")
    if profile is not None:
        profile.disable()
    if executor is not None:
        executor.on = False
    cpu_s, wall = time.process_time() - started_cpu, time.monotonic() - started
    n = max(len(todo), 1)
    alice = await store.account("alice")
    placed = {m.name: len(await alice.messages(m.name)) for m in await alice.mailboxes()}
    print(f"training: ham {stats.ham_messages}, junk {stats.junk_messages},"
          f" known {stats.known_messages}; delivered now: {placed}")
    if args.mode == "store":
        junk = JunkFilter(store, lambda: CONF)  # for its close() below: nothing to close
    print(f"mode {args.mode}: {len(todo)} messages, process CPU {cpu_s * 1000 / n:.3f} ms/msg"
          f" (wall {wall * 1000 / n:.3f} ms/msg)")
    await junk.close()
    store.close()
    if profile is not None and executor is not None:
        print("--- the event loop's thread")
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)
        print("--- worker threads (asyncio.to_thread)")
        threads = pstats.Stats(executor.profiles[0])
        for other in executor.profiles[1:]:
            threads.add(other)
        threads.sort_stats("tottime").print_stats(args.top)
        if args.callees:
            threads.print_callees(args.callees)


class ProfilingExecutor(ThreadPoolExecutor):
    """The loop's default executor, each job run under its thread's own profiler (a
    cProfile.Profile per thread: one is not shared between threads)."""

    def __init__(self) -> None:
        super().__init__()
        self.on = False
        self._local = threading.local()
        self.profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., T], /, *args: object,  # type: ignore[override]
               **kwargs: object) -> Future[T]:
        return super().submit(self._profiled, fn, *args, **kwargs)

    def _profiled(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        if not self.on:
            return fn(*args, **kwargs)
        profile = getattr(self._local, "profile", None)
        if profile is None:
            profile = self._local.profile = cProfile.Profile(time.thread_time)
            with self._lock:
                self.profiles.append(profile)
        profile.enable()
        try:
            return fn(*args, **kwargs)
        finally:
            profile.disable()


async def _indexed(store: Store) -> None:
    """Wait until the store's background indexer has indexed every delivered message's
    text: all of it within the measured phase, none of the training's (it ran on, or
    not, as the timing had it: runs of the same code spread by some 0.5 M/msg)."""
    alice = await store.account("alice")
    while alice._indexer is not None:  # the store's own task (kittiwake.store.store)
        await asyncio.sleep(0.01)


async def _no_sleep(seconds: float) -> None:
    """The first-time sender's pause: skipped (it is waiting, not CPU)."""


def _instrument(state: str) -> None:
    """Under ``--callgrind``: count instructions of the delivery phase only (on/off)."""
    if os.environ.get("JUNKCPU_CALLGRIND"):
        subprocess.run(["callgrind_control", "--instr=" + state, str(os.getpid())],
                       check=True, capture_output=True)


def callgrind(argv: list[str]) -> int:
    """Instructions (Ir) of this command's delivery phase, under callgrind."""
    out = Path(tempfile.mkdtemp(prefix="junkcpu-cg-"))
    try:
        cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
               f"--callgrind-out-file={out}/cg.%p", sys.executable, "-m", "bench.junkcpu",
               *argv]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True,
                              env={**os.environ, "JUNKCPU_CALLGRIND": "1"})
        sys.stdout.write(done.stdout)
        return sum(int(m.group(1)) for m in re.finditer(r"Collected : (\d+)", done.stderr))
    finally:
        shutil.rmtree(out, ignore_errors=True)


def record_only(args: argparse.Namespace, data_dir: Path) -> None:
    """``--mode record``: JunkDatabase.record_deliveries of the measured messages, in
    batches of :data:`CONCURRENCY`, after those of the training's (a sent reply or
    two among them, so that some are replies)."""
    db = JunkDatabase(data_dir / "junk.db")
    rng = random.Random(3)
    training = []
    for i in range(args.training):
        data, who = (junk_message(rng, i, 2000), junk_sender(i)) if i % 3 == 0 else \
            (ham_message(rng, i, 2500), good_sender(i))
        training.append((i + 1, "Inbox", i + 1, _msgid(data), who))
    db.record_deliveries(training)
    todo = measured(args.messages)
    db.record_sent(["person1@friend1.example"], [_msgid(d) for d, _ in todo[::25]])
    # The known junk senders' in Junk, one in 20 (a new sender's) in Rejects.
    items = [(10_000 + i, "Junk" if i % 10 in (4, 5) else "Rejects" if i % 20 == 9
              else "Inbox", i + 1, _msgid(data), who) for i, (data, who) in enumerate(todo)]
    started = time.process_time()
    _instrument("on")
    for start in range(0, len(items), CONCURRENCY):
        db.record_deliveries(items[start:start + CONCURRENCY])
    _instrument("off")
    cpu_s = time.process_time() - started
    stats = db.stats()
    db.close()
    print(f"mode record: {len(items)} messages, ham {stats.ham_known}, junk"
          f" {stats.junk_known} known; process CPU {cpu_s * 1000 / len(items):.3f} ms/msg")


def _msgid(data: bytes) -> str:
    match = re.search(rb"\r\nMessage-ID: (<[^>]*>)", data)
    return match.group(1).decode() if match else ""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--training", type=int, default=300)
    parser.add_argument("--mode", choices=("junk", "store", "record"), default="junk")
    parser.add_argument("--inline-words", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--callees", default="", help="a function whose callees to print")
    parser.add_argument("--callgrind", action="store_true")
    args = parser.parse_args(argv)
    if args.callgrind:
        rest = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--callgrind"]
        total = callgrind(rest)
        print(f"callgrind, mode {args.mode}: {total:,} Ir in the delivery of"
              f" {args.messages} messages: {total / max(args.messages, 1) / 1e6:.3f}"
              " M instructions/msg")
        return
    data_dir = Path(tempfile.mkdtemp(prefix="junkcpu-"))
    try:
        if args.mode == "record":
            record_only(args, data_dir)
        else:
            asyncio.run(run(args, data_dir))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
