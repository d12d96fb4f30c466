"""CPU per message of one SMTP worker on the full MX path, without the server's share.

    .venv/bin/python -m bench.smtpworker_cpu [--valgrind] [--messages N] [--warm N]
                                             [--conc C] [--src OTHER/src]

One real worker process (``python -m kittiwake.server.smtpworker``,
:mod:`kittiwake.server.smtpworkers`) serves a loopback listener; this script
plays the server on the worker channel and answers open, rate and write at
once (write: a 250, nothing stored), so only the worker's work is measured:
the SMTP session, spooling, iprev/SPF/DKIM/DMARC against the DNS world of
:mod:`bench.smtp_inbound` (bind9 + unbound), the headers, the ``write`` frame.
The load comes from :mod:`bench.smtpload` in a subprocess. Prints the worker's
user and system CPU per message after a warm-up batch. On this shared 2-core
machine CPU time swings with the load; ``--valgrind`` runs the worker under
callgrind (without its periodic metrics snapshots, whose cost grows with wall
time) and prints user-space instructions per message (zeroed after the
warm-up, dumped after the measured batch), which repeat within ~10 %.
``--strace FILE`` counts the worker's system calls, ``--spy FILE`` records a
py-spy profile, ``--cprofile FILE`` a cProfile by thread CPU time. ``--src``
runs the worker from another tree (``git archive main src | tar -x -C DIR``)
to compare old and new code in the same minutes.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import callgrind

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

VENV_PY = sys.executable
HERE = Path(__file__).resolve().parent


def cpu(pid: int) -> tuple[float, float]:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(f[11]) / os.sysconf("SC_CLK_TCK"), int(f[12]) / os.sysconf("SC_CLK_TCK")


async def main(args: argparse.Namespace) -> None:
    """The run, in a temporary directory removed afterwards (``--keep`` saves the dump)."""
    base = Path(tempfile.mkdtemp(prefix="kw-wh-"))
    try:
        await _run(args, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


async def _run(args: argparse.Namespace, base: Path) -> None:
    import bench.smtp_inbound as b
    from bench.smtpload import loopback_sources
    from kittiwake import dkim
    from kittiwake.config.load import load
    from kittiwake.server.smtpworker import ListenerSpec, WorkerSpec
    from kittiwake.server.workerrpc import Channel
    from kittiwake.smtp import Reply
    from kittiwake.smtpserver.context import Limits

    ip = "127.0.0.1"
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((ip, 0))
    lsock.listen(1024)
    port = lsock.getsockname()[1]
    config = base / "config"
    config.mkdir()
    (config / "kittiwake.conf").write_text(f"""hostname = "mx.bench.test"
data_dir = "{base / 'data'}"
[log]
level = "warn"
[listeners.mx]
ips = ["{ip}"]
smtp = {{ enabled = true, port = {port} }}
""")
    (config / "domains.conf").write_text("""[domains."bench.test"]
[accounts.bench]
domain = "bench.test"
destinations = { "bench@bench.test" = {} }
""")
    cfg = load(config)
    listener = cfg.static.listeners["mx"]
    sources = loopback_sources(b.MX_SOURCES)
    key_pem = dkim.generate_key("rsa", bits=2048)
    total = args.warm + args.messages
    messages = b.mx_messages(total, 10 * 1024, key_pem)
    with b.mx_world(sources, key_pem) as world:
        spec = WorkerSpec(
            index=1, listeners=[ListenerSpec(
                name="mx", kind="smtp", sockets=[(ip, port)], hostname="mx.bench.test",
                listener=listener,
                limits=Limits(connections_per_minute=(10**6,) * 3,
                              messages_per_minute=(10**6,) * 3),
                certificates=None)],
            domains=cfg.domains, data_dir=base / "data", config_dir=config,
            spool_dir=base / "data" / "spool" / "smtp-1", postmaster_account="",
            localserve=False, log_levels={"": "warn"})
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = {**os.environ, **world.env, "PYTHONHASHSEED": "0",
               "KITTIWAKE_LISTEN_FDS": f"{ip},{port},{lsock.fileno()}"}
        if args.src:
            env["PYTHONPATH"] = args.src
        cmd = [VENV_PY, "-m", "kittiwake.server.smtpworker", str(theirs.fileno())]
        out = base / "callgrind.out"
        if args.cprofile:
            cmd = [VENV_PY, str(HERE / "_worker_cprofile.py"), str(theirs.fileno())]
            env["PROF_OUT"] = args.cprofile
        if args.valgrind:
            cmd = [VENV_PY, str(HERE / "_worker_quiet.py"), str(theirs.fileno())]
            cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                   "--dump-instr=no", "--collect-jumps=no", *cmd]
        with open(base / "worker.err", "wb") as err_file:
            proc = subprocess.Popen(cmd, pass_fds=[theirs.fileno(), lsock.fileno()], env=env,
                                    stdin=subprocess.DEVNULL, stderr=err_file)
        theirs.close()
        ours.setblocking(False)
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        idents = iter(range(1, 10**9))
        counts = {"open": 0, "rate": 0, "write": 0, "close": 0, "dmarc": 0}

        def open_(listener: str, ip: str, kind: str):
            counts["open"] += 1
            # Slot, no refusal, connection rate admitted, the first message's rate
            # token (as the server answers a port 25 connection).
            return next(idents), None, True, kind == "smtp"

        def close(ident: int, token_unused: bool = False) -> None:
            counts["close"] += 1

        def rate(listener: str, ip: str) -> bool:
            counts["rate"] += 1
            return True

        async def write(listener: str, writes, service: str) -> Reply:
            counts["write"] += 1
            return Reply(250, "2.0.0", [f"message accepted (id {writes.session_id})"])

        def note_ready(pid: int) -> None:
            ready.set_result(pid)

        def failed(text: str) -> None:
            ready.set_exception(RuntimeError(text))

        channel = Channel(reader, writer, {
            "open": open_, "close": close, "rate": rate, "write": write, "ready": note_ready,
            "failed": failed, "metrics": lambda *a: None,
            "dmarc": lambda *a: counts.__setitem__("dmarc", counts["dmarc"] + 1)}, name="w")
        asyncio.get_running_loop().create_task(channel.run())
        channel.note("init", spec)
        await asyncio.wait_for(ready, 600)
        print(f"worker ready (pid {proc.pid})", flush=True)
        await asyncio.sleep(1.0 if not args.valgrind else 5.0)

        def load(msgs: list[bytes]) -> float:
            import pickle
            blob = base / "msgs.pickle"
            blob.write_bytes(pickle.dumps(msgs))
            code = ("import pickle,sys;"
                    f"sys.path.insert(0,'{ROOT}');"
                    "from bench.smtpload import send_all, loopback_sources;"
                    f"m=pickle.load(open('{blob}','rb'));"
                    f"print(send_all('{ip}',{port},m,mailfrom='news@{b.MX_DOMAIN}',"
                    f"rcpt='bench@bench.test',concurrency={args.conc},"
                    f"sources=loopback_sources({b.MX_SOURCES})))")
            done = subprocess.run([VENV_PY, "-c", code], capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(done.stderr)
            return float(done.stdout.strip())

        await asyncio.to_thread(load, messages[:args.warm])
        await asyncio.sleep(0.5)
        if args.valgrind:
            subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True,
                           capture_output=True)
        if args.cprofile:
            os.kill(proc.pid, 10)
        c0 = cpu(proc.pid)
        spy = None
        if args.strace:
            spy = subprocess.Popen(["strace", "-c", "-f", "-p", str(proc.pid), "-o", args.strace],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            await asyncio.sleep(1)
        elif args.spy:
            spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid",
                                    str(proc.pid), "--format", "raw", "--rate", "500", "--gil",
                                    "--output", args.spy], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
            await asyncio.sleep(1)
        took = await asyncio.to_thread(load, messages[args.warm:])
        await asyncio.sleep(0.3)
        c1 = cpu(proc.pid)
        if args.cprofile:
            os.kill(proc.pid, 12)
            await asyncio.sleep(2)
        if spy is not None:
            import signal
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
        if args.valgrind:
            subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True,
                           capture_output=True)
            await asyncio.sleep(1)
        channel.note("stop", 1.0)
        await asyncio.sleep(0.5)
        proc.terminate()
        proc.wait(30)
        n = args.messages
        user, system = (c1[0] - c0[0]) * 1000 / n, (c1[1] - c0[1]) * 1000 / n
        line = (f"{args.tag} worker CPU {user + system:.3f} ms/msg (user {user:.3f} sys"
                f" {system:.3f}) ({n} msgs, conc"
                f" {args.conc}, {n / took:.0f} msg/s, load {os.getloadavg()[0]:.1f})"
                f" counts {counts}")
        if args.valgrind:
            dump = base / "callgrind.out.1"
            ir = callgrind.instructions(dump)
            if args.keep:
                Path(args.keep).write_bytes(dump.read_bytes())
            line += f" Ir/msg {ir / n / 1e6:.2f} M ({dump.name if dump else '-'})"
        print(line, flush=True)
        err = (base / "worker.err").read_text()
        if err.strip():
            print("worker stderr:", err[-2000:])


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--valgrind", action="store_true")
    p.add_argument("--messages", type=int, default=300)
    p.add_argument("--warm", type=int, default=100)
    p.add_argument("--conc", type=int, default=20)
    p.add_argument("--src", default="")
    p.add_argument("--tag", default="")
    p.add_argument("--keep", default="")
    p.add_argument("--spy", default="")
    p.add_argument("--cprofile", default="")
    p.add_argument("--strace", default="")
    asyncio.run(main(p.parse_args()))
