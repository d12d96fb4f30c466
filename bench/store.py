"""Store benchmark (issue: message store). One command:

    .venv/bin/python -m bench.store [--quick]

Prints, each against the physical limit measured in the same run:
- delivery throughput with 1, 4 and 20 concurrent writers into one account
  (10 KiB messages; ``Account.deliver`` and the SMTP path ``deliver_spool``
  with a prefix), each against as many threads doing write + fsync(file) +
  rename + fsync(dir) per message with nothing else; the peak resident memory
  of each kittiwake run (a process of its own), and where the time goes: CPU
  per message (user + system, and the user part; beside it the raw writers'
  CPU per message, nearly all the kernel's fsync work, a floor) (and, apart,
  that of the background indexing that follows, run after the measured
  window), the caller's share (write the file at its final name or take the
  spool, parse, fsync of the file and, shared with concurrent callers,
  of its directory; the COMMIT runs meanwhile) and the group commit (one
  transaction, one COMMIT) with the average group size;
- delivery throughput (10 KiB and 100 KiB messages, fsync on) vs writing and
  fsyncing the same files (file + directory fsync) with nothing else;
- import throughput of a varied mbox (1-200 KiB: text, HTML alternatives,
  attachments) vs writing the same files with one fsync pass, then the
  time to index it for search as ``kittiwake import`` does after the import
  (text extraction in a CPU pool, :mod:`kittiwake.cpupool`);
- database size, resident memory and full-text query time with 100,000
  messages in one mailbox.
Not a timed test: these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

from bench.corpus import mbox, message, varied
from kittiwake.durable import fsync_dir, sync_files
from kittiwake.store import AccountStore, Store
from kittiwake.store.importer import import_path, index_pending


def raw_write_fsync(directory: Path, messages: list[bytes]) -> float:
    """Messages/second for write + fsync(file) + rename + fsync(dir)."""
    directory.mkdir(parents=True)
    start = time.perf_counter()
    for i, data in enumerate(messages):
        tmp = directory / f"t{i}"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, directory / str(i))
        fsync_dir(directory)
    return len(messages) / (time.perf_counter() - start)


def raw_batch(directory: Path, messages: list[bytes], batch: int = 500) -> float:
    """Messages/second writing files and syncing them per batch (import's physical limit)."""
    directory.mkdir(parents=True)
    start = time.perf_counter()
    for lo in range(0, len(messages), batch):
        paths = []
        for i in range(lo, min(lo + batch, len(messages))):
            path = directory / str(i)
            path.write_bytes(messages[i])
            paths.append(path)
        sync_files(paths)  # the same syncing the import uses: syncfs(2) per batch
    return len(messages) / (time.perf_counter() - start)


def raw_concurrent(directory: Path, messages: list[bytes], writers: int
                   ) -> tuple[float, float]:
    """Messages/second for ``writers`` threads each doing write + fsync(file) + rename +
    fsync(dir) per message into one directory (the physical limit of delivery), and
    the CPU (user + system, mostly the kernel's fsync work) per message in ms."""
    import resource
    import threading

    directory.mkdir(parents=True)
    tmp = directory / "tmp"
    tmp.mkdir()
    next_index = iter(range(len(messages)))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                return
            path = tmp / f"t{i}"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            try:
                os.write(fd, messages[i])
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(path, directory / str(i))
            fsync_dir(directory)

    threads = [threading.Thread(target=work) for _ in range(writers)]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage.ru_utime + usage.ru_stime
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rate = len(messages) / (time.perf_counter() - start)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return rate, 1000 * (usage.ru_utime + usage.ru_stime - cpu0) / len(messages)


CONCURRENT = """
import asyncio, json, resource, sys, time
from pathlib import Path
from bench.corpus import message
from kittiwake import metrics
from kittiwake.store import Store
import kittiwake.store.store as store_module
import random

# The background indexer (search text, and the summary facts delivery leaves to it)
# runs after the measured window, timed on its own: in the server it follows a
# burst about a second later, its text extraction in CPU pool processes; inside
# the window it would count for some runs and not others (those longer than its
# delay), which made slower runs look slower still.
store_module.INDEX_DELAY = 3600

root, writers, count, size, how = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), \
    int(sys.argv[4]), sys.argv[5]
rng = random.Random(11)
msgs = [message(rng, i, size) for i in range(count)]
PREFIX = b"Received: from mx.example.net by mail.example.org; Tue, 1 Dec 2026 10:00:00 +0000\\r\\n"

def sample(name, labels=None):
    return metrics.REGISTRY.get_sample_value(name, labels or {}) or 0.0

async def main():
    store = Store(root)
    account = await store.account("bench")
    todo = iter(msgs)

    async def writer():
        for data in todo:
            if how == "spool":
                spool = account.spool()
                spool.write(data)
                await account.deliver_spool("Inbox", spool, PREFIX)
            else:
                await account.deliver("Inbox", data)

    start = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage.ru_utime + usage.ru_stime
    user0 = usage.ru_utime
    await asyncio.gather(*(writer() for _ in range(writers)))
    elapsed = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu1 = usage.ru_utime + usage.ru_stime
    user_ms = 1000 * (usage.ru_utime - user0) / count
    await asyncio.to_thread(account.core.index_all_pending)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    index_ms = 1000 * (usage.ru_utime + usage.ru_stime - cpu1) / count
    op = "prepare_spool" if how == "spool" else "prepare"
    out = {
        "rate": count / elapsed,
        "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cpu_ms": 1000 * (cpu1 - cpu0) / count,
        "user_ms": user_ms,
        "index_ms": index_ms,
        "prepare_ms": 1000 * sample("kittiwake_store_operation_duration_seconds_sum",
                                    {"op": op}) / count,
        "commit_ms": 1000 * sample("kittiwake_store_group_commit_duration_seconds_sum")
        / max(sample("kittiwake_store_group_commit_duration_seconds_count"), 1),
        "groups": sample("kittiwake_store_group_commit_deliveries_count"),
        "deliveries": sample("kittiwake_store_group_commit_deliveries_sum"),
    }
    store.close()
    print(json.dumps(out))

asyncio.run(main())
"""


def concurrent_rate(root: Path, writers: int, count: int, size: int,
                    how: str) -> dict[str, float]:
    """Deliveries by ``writers`` concurrent tasks in a process of their own."""
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", CONCURRENT, str(root), str(writers),
                           str(count), str(size), how], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent)
    if done.returncode:
        raise SystemExit(f"concurrent delivery run failed:\n{done.stderr}")
    return json.loads(done.stdout)


def concurrency(base: Path, count: int, rounds: int = 1) -> None:
    """Delivery against raw write+fsync at 1, 4 and 20 writers (best of ``rounds``)."""
    import random

    size = 10 * 1024
    rng = random.Random(11)
    msgs = [message(rng, i, size) for i in range(count)]
    for writers in (1, 4, 20):
        for how in ("deliver", "spool"):
            best_raw = 0.0
            raw_cpu = float("inf")
            best: dict[str, float] = {}
            for r in range(rounds):  # interleaved, so both see the same machine load
                tag = f"{writers}-{how}-{r}"
                raw_rate, raw_ms = raw_concurrent(base / f"raw-{tag}", msgs, writers)
                best_raw = max(best_raw, raw_rate)
                raw_cpu = min(raw_cpu, raw_ms)
                got = concurrent_rate(base / f"kw-{tag}", writers, count, size, how)
                if got["rate"] > best.get("rate", 0.0):
                    best = got
            name = "deliver" if how == "deliver" else "deliver_spool+prefix"
            print(f"{writers:>2} writers, {name:<21}: kittiwake {best['rate']:7.1f} msg/s,"
                  f" raw write+fsync {best_raw:7.1f} msg/s, ratio {best['rate'] / best_raw:.2f}"
                  f" (goal >= 0.8); peak RSS {best['rss_mib']:.0f} MiB; per message"
                  f" {best['cpu_ms']:.2f} ms CPU ({best['user_ms']:.2f} user; raw write+fsync"
                  f" {raw_cpu:.2f}) (+ {best['index_ms']:.2f} ms background"
                  f" indexing after the run), {best['prepare_ms']:.2f} ms caller's share,"
                  f" group commit"
                  f" {best['commit_ms']:.2f} ms for"
                  f" {best['deliveries'] / max(best['groups'], 1):.1f} deliveries on average")


async def deliver_rate(root: Path, messages: list[bytes]) -> float:
    store = Store(root)
    account = await store.account("bench")
    start = time.perf_counter()
    for data in messages:
        await account.deliver("Inbox", data)
    rate = len(messages) / (time.perf_counter() - start)
    store.close()
    return rate


def _own_peak_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def index_like_the_cli(store: AccountStore) -> tuple[int, float]:
    """Index what an import left, with a CPU pool as `kittiwake import` does: (messages
    indexed, the pool processes' peak RSS in MiB, summed)."""
    from kittiwake.cpupool import CpuPool, default_workers

    pool = CpuPool(default_workers(), preload=["kittiwake.message.searchtext"])
    pool.start()
    try:
        count = index_pending(store, pool)
        pids = pool.worker_pids()
        rss = 0.0
        for pid in pids:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    rss += int(line.split()[1]) / 1024
    finally:
        pool.close()
    return count, rss


PROBE = """
import json, resource, sys, time
from pathlib import Path
from kittiwake.store import AccountStore

def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0

store = AccountStore("big", Path(sys.argv[1]))
out = {"rss_open": rss()}
rare = str(int(sys.argv[2]) // 2)
t = time.perf_counter(); hits = store.search(rare)
out["rare_ms"] = (time.perf_counter() - t) * 1000
out["rare"], out["rare_hits"] = rare, len(hits)
t = time.perf_counter(); first = store.search("lighthouse harbour", limit=50)
out["common_ms"] = (time.perf_counter() - t) * 1000
t = time.perf_counter(); every = store.search("lighthouse harbour")
out["all_ms"] = (time.perf_counter() - t) * 1000
out["common_total"] = len(every)
out["rss_after"] = rss()
store.close()
print(json.dumps(out))
"""


def _probe_store(root: Path, count: int) -> dict[str, float]:
    """Open the store in a fresh process: its memory and query times, not the generator's."""
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", PROBE, str(root), str(count)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    parser.add_argument("--concurrency-only", action="store_true",
                        help="only the 1/4/20 concurrent writers comparison")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of each concurrency measurement (the best counts)")
    args = parser.parse_args()
    n_deliver = 100 if args.quick else 1000
    n_import = 1000 if args.quick else 20000
    n_big = 5000 if args.quick else 100000
    base = Path(tempfile.mkdtemp(prefix="kw-bench-", dir=args.dir))
    print(f"kittiwake store benchmark in {base} ({'quick' if args.quick else 'full'} run)")
    try:
        import random

        concurrency(base, 200 if args.quick else 1000, 1 if args.quick else args.rounds)
        if args.concurrency_only:
            return
        rng = random.Random(7)
        for size in (10 * 1024, 100 * 1024):
            msgs = [message(rng, i, size) for i in range(n_deliver)]
            raw = raw_write_fsync(base / f"raw{size}", msgs)
            ours = asyncio.run(deliver_rate(base / f"kw{size}", msgs))
            print(f"delivery {size // 1024:>3} KiB: kittiwake {ours:8.1f} msg/s, raw write+fsync"
                  f" {raw:8.1f} msg/s, ratio {ours / raw:.2f} (goal >= 0.5)")

        msgs = varied(n_import)
        total = sum(len(m) for m in msgs)
        mbox_path = base / "corpus.mbox"
        mbox_path.write_bytes(mbox(msgs))
        raw = raw_batch(base / "rawimport", msgs)
        store = AccountStore("import", base / "kwimport" / "accounts" / "import")
        start = time.perf_counter()
        result = import_path(store, "Inbox", mbox_path)
        imported = time.perf_counter()
        rate = result.imported / (imported - start)
        indexed, pool_rss = index_like_the_cli(store)
        index_seconds = time.perf_counter() - imported
        store.close()
        print(f"import {n_import} varied msgs ({total / 2**20:.0f} MiB): kittiwake {rate:8.1f}"
              f" msg/s, raw batched write+fsync {raw:8.1f} msg/s, ratio {rate / raw:.2f}"
              f" (goal >= 1400 msg/s; reference system ~920 msg/s); then indexed for search"
              f" (as `kittiwake import` does next) in {index_seconds:.1f} s,"
              f" {indexed / index_seconds:.0f} msg/s; import + index"
              f" {result.imported / (time.perf_counter() - start):.0f} msg/s;"
              f" peak RSS of this process {_own_peak_mib():.0f} MiB + {pool_rss:.0f} MiB in"
              f" the index's pool processes")

        small = [message(rng, i, 2048) for i in range(n_big)]
        big_mbox = base / "big.mbox"
        big_mbox.write_bytes(mbox(small))
        del small
        store = AccountStore("big", base / "kwbig" / "accounts" / "big")
        start = time.perf_counter()
        import_path(store, "Inbox", big_mbox)
        index_like_the_cli(store)
        load = time.perf_counter() - start
        db_size = sum(p.stat().st_size for p in (base / "kwbig/accounts/big").glob("index.db*"))
        store.close()
        probe = _probe_store(base / "kwbig/accounts/big", n_big)
        print(f"{n_big} messages in one mailbox: loaded in {load:.0f} s, database"
              f" {db_size / 2**20:.0f} MiB, resident memory of a process with the store open"
              f" {probe['rss_open']:.0f} MiB (after queries {probe['rss_after']:.0f} MiB)")
        print(f"full-text query for one message ('{probe['rare']}'): {probe['rare_hits']} hit"
              f" in {probe['rare_ms']:.1f} ms; two common words, first 50 of"
              f" {probe['common_total']}: {probe['common_ms']:.1f} ms; all"
              f" {probe['common_total']} hits: {probe['all_ms']:.0f} ms (goal < 100 ms)")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
