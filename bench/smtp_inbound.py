"""Inbound SMTP benchmark: kittiwake against Postfix, fed by Postfix's smtp-source.

    .venv/bin/python -m bench.smtp_inbound [--quick] [--messages N] [--size BYTES]

``smtp-source`` (Debian ``postfix``) sends the same messages, 20 sessions in
parallel, one message per connection (RFC 5321 SMTP over loopback only), to:

- kittiwake: ``kittiwake localserve`` (a subprocess, as users run it), which
  stores every message in its account before answering 250 (file fsync,
  directory fsync, database commit);
- Postfix: a private instance (:mod:`tests.integration.postfix`) that queues
  the message (fsync) and delivers it with virtual(8) into a Maildir.
  Postfix answers 250 once queued, so its time runs until the last message
  is in the Maildir; its accept-only rate is printed too.

Prints messages/second for each (median of alternating rounds, each with
fresh servers and an empty mailbox), the ratio, and kittiwake's peak
resident memory (VmHWM of the server process). Not a timed test: these
machines are shared and noisy, so compare the two numbers of one run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from integration.loopback import free_loopback, free_port  # noqa: E402
from integration.postfix import Postfix, PostfixError, tool  # noqa: E402

SESSIONS = 20
LOCALSERVE_PORT = 1025
NOBODY = 65534


def wait_port(ip: str, port: int, proc: subprocess.Popen[bytes] | None = None,
              timeout: float = 20, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}:\n"
                             f"{log.read_text() if log else ''}")
        with contextlib.suppress(OSError), socket.create_connection((ip, port), 0.5):
            return
        time.sleep(0.05)
    raise SystemExit(f"nothing listening on {ip}:{port}")


def smtp_source(ip: str, port: int, messages: int, size: int, rcpt: str) -> float:
    """Run smtp-source; seconds it took. Fails loudly on any error."""
    start = time.perf_counter()
    done = subprocess.run([tool("smtp-source"), "-s", str(SESSIONS), "-m", str(messages),
                           "-l", str(size), "-M", "source.bench.test",
                           "-f", "sender@source.bench.test", "-t", rcpt, f"{ip}:{port}"],
                          capture_output=True, text=True, timeout=600)
    took = time.perf_counter() - start
    if done.returncode != 0 or done.stderr.strip():
        raise SystemExit(f"smtp-source failed ({done.returncode}): {done.stderr.strip()}")
    return took


def peak_rss_kib(pid: int) -> int:
    """VmHWM (peak resident set) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def count_messages(config_dir: Path) -> int:
    import json

    done = subprocess.run([str(Path(sys.executable).parent / "kittiwake"), "--config",
                           str(config_dir), "account", "list", "--json"],
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise SystemExit(f"kittiwake account list failed: {done.stderr}")
    return int(json.loads(done.stdout)[0]["messages"])


def bench_kittiwake(base: Path, messages: int, size: int) -> tuple[float, int]:
    """Messages/second into localserve's account, and the server's peak RSS (KiB)."""
    ip = free_loopback()
    log = base / "localserve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "kittiwake"),
                                 "--loglevel", "warn", "localserve",
                                 "--dir", str(base / "kw"), "--ip", ip],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_port(ip, LOCALSERVE_PORT, proc, log=log)
        took = smtp_source(ip, LOCALSERVE_PORT, messages, size, "bench@localhost")
        rss = peak_rss_kib(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    stored = count_messages(base / "kw" / "config")
    if stored != messages:
        raise SystemExit(f"kittiwake stored {stored} of {messages} messages; log {log}")
    return messages / took, rss


def bench_postfix(base: Path, messages: int, size: int) -> tuple[float, float]:
    """Messages/second into a Maildir (end to end) and accepted by smtpd (queued)."""
    ip = "127.0.0.1"
    port = free_port(ip)
    vmail = base / "vmail"
    vmail.mkdir()
    os.chown(vmail, NOBODY, NOBODY)
    main = {
        "virtual_mailbox_domains": "bench.test",
        "virtual_mailbox_base": str(vmail),
        "virtual_mailbox_maps": "static:box/",  # trailing slash: Maildir
        "virtual_uid_maps": f"static:{NOBODY}",
        "virtual_gid_maps": f"static:{NOBODY}",
        "smtpd_recipient_restrictions": "permit_mynetworks, reject",
        "smtpd_client_connection_count_limit": "0",
        "default_process_limit": "200",
    }
    new = vmail / "box" / "new"
    with Postfix(ip=ip, port=port, main=main, hostname="sink.bench.test",
                 directory=base / "postfix") as pf:
        start = time.perf_counter()
        accepted = smtp_source(ip, port, messages, size, "bench@bench.test")
        deadline = time.monotonic() + 300
        while (len(os.listdir(new)) if new.exists() else 0) < messages:
            if time.monotonic() > deadline:
                raise SystemExit(f"Postfix delivered only {len(os.listdir(new))} of "
                                 f"{messages}:\n{pf.maillog()[-3000:]}")
            time.sleep(0.02)
        delivered = time.perf_counter() - start
    return messages / delivered, messages / accepted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts (under a minute)")
    parser.add_argument("--messages", type=int, default=0, help="messages per server and round")
    parser.add_argument("--size", type=int, default=10 * 1024, help="message size in bytes")
    parser.add_argument("--rounds", type=int, default=0,
                        help="alternating rounds (fresh servers each); medians are compared")
    args = parser.parse_args()
    messages = args.messages or (300 if args.quick else 2000)
    rounds = args.rounds or 3
    try:
        tool("smtp-source")
    except PostfixError as exc:
        raise SystemExit(str(exc)) from None
    print(f"inbound SMTP benchmark: smtp-source -s {SESSIONS} -m {messages} -l {args.size},"
          f" one message per connection, loopback, {rounds} round(s)"
          f" ({'quick' if args.quick else 'full'} run)")
    ours: list[float] = []
    theirs: list[float] = []
    queued: list[float] = []
    rss = 0
    for n in range(rounds):
        base = Path(tempfile.mkdtemp(prefix="kw-bench-smtp-"))
        base.chmod(0o755)  # Postfix daemons (user postfix, nobody) must reach their dirs
        try:
            rate, peak = bench_kittiwake(base, messages, args.size)
            ours.append(rate)
            rss = max(rss, peak)
            delivered, accepted = bench_postfix(base, messages, args.size)
            theirs.append(delivered)
            queued.append(accepted)
        finally:
            shutil.rmtree(base, ignore_errors=True)
        if rounds > 1:
            print(f"  round {n + 1}: kittiwake {rate:7.1f} msg/s, Postfix {delivered:7.1f} msg/s")
    kw, pf = statistics.median(ours), statistics.median(theirs)
    print(f"kittiwake localserve (stored in account, fsync):  {kw:8.1f} msg/s")
    print(f"Postfix 3 (queued + virtual(8) Maildir, fsync): {pf:8.1f} msg/s"
          f"   (accepted into its queue: {statistics.median(queued):.1f} msg/s)")
    print(f"ratio kittiwake / Postfix: {kw / pf:.2f}")
    print(f"kittiwake peak resident memory (VmHWM): {rss / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
