"""CPU per message of the outgoing queue's delivery side (Scheduler + Deliverer, relay).

    .venv/bin/python -m bench.queuecpu [--valgrind] [--cprofile FILE] [--messages N]
                                       [--warm N] [--size BYTES] [--src OTHER/src]

The delivery side of :mod:`bench.queue_throughput` without Postfix and
without the clock: a child process (the measured one) queues ``warm +
messages`` messages (one recipient each, over the benchmark's 20 domains;
the measured ones held), lets the scheduler deliver the warm-up ones over a
relay transport to Postfix's ``smtp-sink`` (a separate process, not
counted), then releases the measured ones and delivers them. Only that
second part is counted: the child's CPU time (all its threads: the event
loop and the SQLite worker threads) from ``/proc``, or with ``--valgrind``
the user-space instructions callgrind counts (zeroed after the warm-up,
dumped when the last result is recorded), which repeat within a few
percent where CPU time on this shared 2-core machine does not.
``--cprofile FILE`` writes a cProfile of the measured part (event loop
thread only). ``--src`` runs the child from another tree (``git archive
REV src | tar -x -C DIR``) to compare old and new code in the same minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import callgrind

ROOT = Path(__file__).resolve().parent.parent
SENDER = "sender@source.bench.test"
HOSTNAME = "kw.bench.test"


def thread_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds of the process's main thread (the event loop) and of its other
    live threads (SQLite and file work): ``se.sum_exec_runtime`` (ms) of each."""
    main = other = 0.0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            text = Path(f"/proc/{pid}/task/{tid}/sched").read_bytes()
        except OSError:
            continue
        at = text.find(b"se.sum_exec_runtime")
        if at >= 0:
            ms = float(text[at:text.index(b"\n", at)].split(b":")[1])
            if int(tid) == pid:
                main += ms
            else:
                other += ms
    return main / 1000, other / 1000


# --- the measured child --------------------------------------------------------------


async def child(base: Path, ip: str, port: int, warm: int, count: int, size: int,
                profile: str) -> None:
    """Queue, deliver the warm-up, tell the parent, wait, deliver the measured part."""
    from bench.queue_throughput import corpus
    from kittiwake.dns import MockResolver
    from kittiwake.queue import Envelope, Filter, NewRecipient, Queue, Scheduler
    from kittiwake.queue.deliver import Deliverer, Relay
    from kittiwake.smtpclient import TLSMode

    messages = corpus(warm + count, size)
    queue = Queue(base / "kw", history_keep=warm + count + 10)
    items = [(Envelope(SENDER, (NewRecipient(messages[i][0]),)), messages[i][1])
             for i in range(warm + count)]
    queued = await asyncio.to_thread(queue.store.enqueue_many, items)
    del items
    measured = Filter(ids=tuple(m.id for m in queued[warm:]))
    await queue.hold(measured)
    relay = Relay(ip, port, TLSMode.NONE)
    deliverer = Deliverer(resolver=MockResolver(), hostname=HOSTNAME, select=lambda b: relay)
    attempted = 0
    target = asyncio.Event()
    goal = warm

    async def deliver(batch):  # type: ignore[no-untyped-def]
        nonlocal attempted
        results = await deliverer(batch)
        attempted += len(batch.recipients)
        if attempted >= goal:
            target.set()
        return results

    scheduler = Scheduler(queue, deliver)
    scheduler.start()

    async def settle() -> None:
        await target.wait()
        while await queue.next_due() is not None or scheduler.busy_domains:
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.2)  # the last commits

    await settle()
    loop = asyncio.get_running_loop()
    from kittiwake.server.eventloop import loop_factory

    print(f"warm {loop_factory()[0]}", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
        threads = profile_threads(queue, profile + ".threads")
    goal, target = warm + count, asyncio.Event()
    await queue.release(measured)
    await settle()
    if prof is not None:
        prof.disable()
        prof.dump_stats(profile)
        threads()
    done = await queue.history(limit=warm + count + 10)
    delivered = sum(1 for r in done if str(r.status) == "delivered")
    print(f"done {delivered}", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    await scheduler.close()
    await deliverer.close()
    queue.close()


def profile_threads(queue, path: str):  # type: ignore[no-untyped-def]
    """Profile the queue's worker-thread calls (one at a time, under a lock) into
    ``path``; returns the function that stops and writes the profile."""
    import cProfile
    import threading

    lock = threading.Lock()
    prof = cProfile.Profile()
    original = queue._run

    def profiled(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        with lock:
            return prof.runcall(fn, *args, **kwargs)

    async def run(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        return await original(profiled, fn, *args, **kwargs)

    queue._run = run

    def stop() -> None:
        queue._run = original
        prof.dump_stats(path)

    return stop


# --- the parent ------------------------------------------------------------------------


def run(args: argparse.Namespace) -> str:
    sys.path.insert(0, str(ROOT / "tests"))
    from bench.queue_throughput import Sink

    base = Path(tempfile.mkdtemp(prefix="kw-queuecpu-"))
    sink = Sink()
    try:
        env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
               "PYTHONPATH": f"{args.src or ROOT / 'src'}:{ROOT}"}
        cmd = [sys.executable, "-m", "bench.queuecpu", "--child", str(base), sink.ip,
               str(sink.port), str(args.warm), str(args.messages), str(args.size),
               args.cprofile or "-"]
        out = base / "callgrind.out"
        if args.valgrind:
            cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                   "--dump-instr=no", "--collect-jumps=no", *cmd]
        with open(base / "err", "wb") as err:
            proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=err, text=True)
        assert proc.stdin is not None and proc.stdout is not None

        def expect(word: str) -> str:
            line = proc.stdout.readline()
            if not line.startswith(word):
                proc.kill()
                raise SystemExit(f"child said {line!r}: {(base / 'err').read_text()[-3000:]}")
            return line

        loop_name = expect("warm").split()[1]
        if args.valgrind:
            subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True,
                           capture_output=True)
        c0 = thread_cpu(proc.pid)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        delivered = int(expect("done").split()[1])
        c1 = thread_cpu(proc.pid)
        if args.valgrind:
            subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True,
                           capture_output=True)
        proc.stdin.write("exit\n")
        proc.stdin.flush()
        proc.wait(600)
        n = args.messages
        loop_ms, threads_ms = ((c1[i] - c0[i]) * 1000 / n for i in (0, 1))
        line = (f"{args.tag}delivery CPU {loop_ms + threads_ms:.3f} ms/msg (event loop"
                f" {loop_ms:.3f}, threads {threads_ms:.3f}; {n} msgs after"
                f" {args.warm}, delivered {delivered} of {args.warm + n}, {loop_name},"
                f" load {os.getloadavg()[0]:.1f})")
        if args.valgrind:
            dump = base / "callgrind.out.1"
            ir = callgrind.instructions(dump)
            if args.keep:
                shutil.copy(dump, args.keep)
            line += f" Ir/msg {ir / n / 1e6:.3f} M"
        return line
    finally:
        sink.close()
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--valgrind", action="store_true")
    p.add_argument("--messages", type=int, default=300)
    p.add_argument("--warm", type=int, default=100)
    p.add_argument("--size", type=int, default=10 * 1024)
    p.add_argument("--src", default="", help="another tree's src directory (old code)")
    p.add_argument("--tag", default="")
    p.add_argument("--keep", default="", help="copy the callgrind dump here")
    p.add_argument("--cprofile", default="", help="write a cProfile of the measured part")
    p.add_argument("--child", nargs=7, metavar="ARG", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        from kittiwake.server import eventloop

        base, ip, port, warm, count, size, profile = args.child
        # The loop `kittiwake serve` runs on (uvloop; KITTIWAKE_EVENT_LOOP=asyncio for
        # asyncio's own).
        eventloop.run(child(Path(base), ip, int(port), int(warm), int(count), int(size),
                          "" if profile == "-" else profile))
        return
    print(run(args), flush=True)


if __name__ == "__main__":
    main()
