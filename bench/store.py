"""Store benchmark (issue: message store). One command:

    .venv/bin/python -m bench.store [--quick]

Prints, each against the physical limit measured in the same run:
- delivery throughput (10 KiB and 100 KiB messages, fsync on) vs writing and
  fsyncing the same files (file + directory fsync) with nothing else;
- import throughput of a varied mbox (1-200 KiB: text, HTML alternatives,
  attachments), full-text index included, vs writing the same files with
  one fsync pass;
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
from kittiwake.store.importer import import_path


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


async def deliver_rate(root: Path, messages: list[bytes]) -> float:
    store = Store(root)
    account = await store.account("bench")
    start = time.perf_counter()
    for data in messages:
        await account.deliver("Inbox", data)
    rate = len(messages) / (time.perf_counter() - start)
    store.close()
    return rate


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
    args = parser.parse_args()
    n_deliver = 100 if args.quick else 1000
    n_import = 1000 if args.quick else 20000
    n_big = 5000 if args.quick else 100000
    base = Path(tempfile.mkdtemp(prefix="kw-bench-", dir=args.dir))
    print(f"kittiwake store benchmark in {base} ({'quick' if args.quick else 'full'} run)")
    try:
        import random

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
        rate = result.imported / (time.perf_counter() - start)
        store.close()
        print(f"import {n_import} varied msgs ({total / 2**20:.0f} MiB): kittiwake {rate:8.1f}"
              f" msg/s, raw batched write+fsync {raw:8.1f} msg/s, ratio {rate / raw:.2f}"
              f" (goal >= 1400 msg/s; reference system ~920 msg/s)")

        small = [message(rng, i, 2048) for i in range(n_big)]
        big_mbox = base / "big.mbox"
        big_mbox.write_bytes(mbox(small))
        del small
        store = AccountStore("big", base / "kwbig" / "accounts" / "big")
        start = time.perf_counter()
        import_path(store, "Inbox", big_mbox)
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
