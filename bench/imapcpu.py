"""Server CPU per IMAP operation, kittiwake and Dovecot (the operations of bench.imap).

    .venv/bin/python -m bench.imapcpu [--messages N] [--rounds R] [--only kittiwake|dovecot]
                                      [--ops SUBSTRING ...]

Wall-clock ratios mean nothing on a shared, loaded machine; the CPU a server
spends on one operation does not depend (much) on the load. Each operation of
:class:`bench.imap.Bench` is run as there, and the user+system CPU of the
server's processes (kittiwake: its process tree, threads included; Dovecot:
its ``imap`` processes) is read from ``/proc`` before and after each round.
Prints the median CPU milliseconds per round, for each server, and the ratio
Dovecot/kittiwake (>= 1.0: kittiwake uses no more CPU). The client's own time
is not counted, so these are not the wall figures of bench.imap.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.imap import (
    Bench,
    Corpus,
    Endpoint,
    Measured,
    raise_nofile,
    start_dovecot,
    start_kittiwake,
)


def cpu_seconds(pids: list[int]) -> float:
    """CPU time of the processes' live threads, in seconds: the scheduler's
    ``se.sum_exec_runtime`` of each (``/proc/PID/task/TID/sched``, in ms with
    decimals; ``/proc/PID/stat`` counts in 10 ms ticks, too coarse here)."""
    total = 0.0
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/sched", "rb") as f:
                    text = f.read()
            except OSError:
                continue
            at = text.find(b"se.sum_exec_runtime")
            if at >= 0:
                total += float(text[at:text.index(b"\n", at)].split(b":")[1])
    return total / 1000


class CPUBench(Bench):
    """:class:`Bench` that also records the server's CPU of each round."""

    def __init__(self, *args: object, only_ops: list[str], repeat: int,
                 **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.cpu: dict[str, list[float]] = {}
        self.only_ops = only_ops
        self.repeat = repeat

    def measure(self, name: str, op: Callable[[], str],
                setup: Callable[[], None] | None = None) -> Measured:
        if self.only_ops and not any(s in name for s in self.only_ops):
            return Measured()
        spent = self.cpu.setdefault(name, [])

        # Read-only operations are repeated within a round (a few ms of CPU each).
        repeat = self.repeat if name.startswith(("FETCH", "UID FETCH", "UID SEARCH")) else 1

        def timed() -> str:
            settle(self.ep, 60.0)  # not the background work of the last operation
            pids = self.ep.processes()
            before = cpu_seconds(pids)
            for _ in range(repeat):
                check = op()
            time.sleep(0.05)  # let the server finish its accounting (writes after the reply)
            spent.append((cpu_seconds(sorted(set(pids) | set(self.ep.processes()))) - before)
                         / repeat)
            return check

        return super().measure(name, timed, setup)


def settle(ep: Endpoint, limit: float = 180.0) -> None:
    """Wait until the server is quiet (after an import it indexes in the background)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = cpu_seconds(ep.processes())
        time.sleep(1.0)
        if cpu_seconds(ep.processes()) - before < 0.005:
            return
    print("server still busy after settling", file=sys.stderr)


def run(name: str, start: Callable[[], Endpoint], corpus: Corpus, rounds: int,
        appends: list[bytes], only_ops: list[str], repeat: int
        ) -> dict[str, tuple[float, str]]:
    ep = start()
    try:
        settle(ep)
        print(f"{name}: timing ...", file=sys.stderr)
        bench = CPUBench(ep, corpus, rounds, appends, only_ops=only_ops, repeat=repeat)
        got = bench.all_ops()
        out = {}
        for op, spent in bench.cpu.items():
            m = got.ops.get(op)
            err = m.error if m is not None and m.error else ""
            out[op] = (statistics.median(spent) if spent else float("nan"), err)
        return out
    finally:
        ep.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=2000)
    p.add_argument("--appends", type=int, default=200)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--only", choices=("kittiwake", "dovecot"), default=None)
    p.add_argument("--repeat", type=int, default=20,
                   help="times a read-only operation runs in one round")
    p.add_argument("--ops", nargs="*", default=[], help="operations whose name contains these")
    args = p.parse_args()
    raise_nofile()
    corpus = Corpus(args.messages, seed=1)
    appends = list(Corpus(args.appends, seed=1001, hits=0).messages())
    base = Path(tempfile.mkdtemp(prefix="kw-bench-imapcpu-"))
    base.chmod(0o755)
    try:
        corpus.write_maildir(base / "corpus")
        results: dict[str, dict[str, tuple[float, str]]] = {}
        if args.only != "dovecot":
            results["kittiwake"] = run("kittiwake", lambda: start_kittiwake(
                base / "corpus", work=base), corpus, args.rounds, appends, args.ops, args.repeat)
        if args.only != "kittiwake":
            results["dovecot"] = run("Dovecot", lambda: start_dovecot(base / "corpus"),
                                     corpus, args.rounds, appends, args.ops, args.repeat)
        kw, dc = results.get("kittiwake", {}), results.get("dovecot", {})
        print(f"server CPU ms per operation, median of {args.rounds} ({args.messages} messages)")
        print(f"{'operation':62} {'kittiwake':>10} {'dovecot':>10} {'ratio':>6}")
        for op in dict.fromkeys([*kw, *dc]):
            k, ke = kw.get(op, (float("nan"), ""))
            d, de = dc.get(op, (float("nan"), ""))
            ratio = d / k if k and k == k and d == d else float("nan")
            print(f"{op[:62]:62} {k * 1000:10.1f} {d * 1000:10.1f} {ratio:6.2f}"
                  f"{'  ' + (ke or de) if ke or de else ''}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
