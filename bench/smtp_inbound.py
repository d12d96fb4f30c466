"""Inbound SMTP benchmark: kittiwake against Postfix, fed by Postfix's smtp-source.

    .venv/bin/python -m bench.smtp_inbound [--quick] [--messages N] [--size BYTES] [--mx]

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
resident memory (VmHWM of the server process, and of its CPU pool's
processes, :mod:`kittiwake.cpupool`) and CPU time per message (server and
pool, at the end of the load and once the background indexer is done;
``KITTIWAKE_CPU_WORKERS=0`` in the environment measures without a pool).
Not a timed test: these machines are shared and noisy, so compare the two
numbers of one run.

``--mx`` adds the full MX path: ``kittiwake serve`` as an MX does every
check on every message (iprev, SPF, DKIM, DMARC) against a sending domain
whose records a real DNSSEC world serves (bind9 + validating unbound,
:mod:`integration.dnsworld`); the messages are DKIM-signed (RSA-2048) by that
domain. Postfix, delivering into a Maildir, does none of these checks. Both
are fed by :mod:`bench.smtpload` with 20 and then 100 concurrent sessions from
64 loopback addresses in distinct /21 networks, so kittiwake's per-network
rate limits (raised in its config) do not decide the result.
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
from collections.abc import Callable, Iterator
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


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 15 s."""
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def peak_rss_kib(pid: int) -> int:
    """VmHWM (peak resident set) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def descendants(pid: int) -> list[int]:
    """Child processes of ``pid`` and theirs (the CPU pool's fork server and workers)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            with contextlib.suppress(OSError):
                children = [int(c) for c in (task / "children").read_text().split()]
                out += children
                todo += children
    return out


def pss_kib(pid: int) -> int:
    """Proportional set size of a process in KiB (shared pages counted by share)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def role(pid: int) -> str:
    """What a child of the server is: an SMTP worker or a CPU pool process."""
    with contextlib.suppress(OSError):
        if b"kittiwake.server.smtpworker" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return "smtp"
    return "pool"


def settle(pid: int, quiet: float = 1.0, timeout: float = 60.0) -> None:
    """Wait until a server and its children used no CPU for ``quiet`` seconds: the
    SMTP workers (kittiwake.server.smtpworkers) start after the port is bound, and
    their start-up (imports) must not count as work per message."""
    def total() -> float:
        return cpu_seconds(pid) + sum(cpu_seconds(k) for k in descendants(pid))

    deadline = time.monotonic() + timeout
    last, since = total(), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < quiet:
        time.sleep(0.2)
        now = total()
        if now - last > 0.02:
            since = time.monotonic()
        last = now


class Figures:
    """Peak memory and CPU time of a server and its child processes (read while alive).

    ``rss`` is the server's VmHWM; ``smtp_rss`` the VmHWM of each SMTP worker
    (:mod:`kittiwake.server.smtpworkers`, separate interpreters);
    ``worker_rss`` the sum of the CPU pool's processes' (fork server, resource
    tracker, workers: an upper bound, as a forked worker shares the fork
    server's pages; ``worker_pss`` counts shared pages by share). CPU is read
    when the load ends (``cpu_*``) and again once the server is idle
    (``idle_cpu_*``: the background indexer, which follows the deliveries, done
    too); ``cpu_smtp`` is per SMTP worker.
    """

    def __init__(self, pid: int) -> None:
        """Before the load (the server is listening: its start-up CPU is not counted)."""
        self.pid = pid
        self.rss = self.worker_rss = self.worker_pss = 0
        self.workers = 0
        self.smtp_rss: dict[int, int] = {}
        self.cpu_server = self.cpu_workers = 0.0
        self.idle_cpu_server = self.idle_cpu_workers = 0.0
        self.cpu_smtp: dict[int, float] = {}
        self.idle_cpu_smtp: dict[int, float] = {}
        self.start_smtp: dict[int, float] = {}
        self.start_server, self.start_workers, self.start_smtp = self._read()

    def _read(self) -> tuple[float, float, dict[int, float]]:
        kids = descendants(self.pid)
        smtp = [k for k in kids if role(k) == "smtp"]
        pool = [k for k in kids if k not in smtp]
        self.workers = len(pool)
        for k in smtp:
            with contextlib.suppress(OSError):
                self.smtp_rss[k] = peak_rss_kib(k)
        self.worker_rss = sum(peak_rss_kib(k) for k in pool if Path(f"/proc/{k}").exists())
        self.worker_pss = sum(pss_kib(k) for k in pool)
        self.rss = peak_rss_kib(self.pid)
        return (cpu_seconds(self.pid), sum(cpu_seconds(k) for k in pool),
                {k: cpu_seconds(k) for k in smtp})

    def _used(self) -> tuple[float, float, dict[int, float]]:
        server, workers, smtp = self._read()
        return (server - self.start_server, workers - self.start_workers,
                {k: v - self.start_smtp.get(k, 0.0) for k, v in smtp.items()})

    def at_end_of_load(self) -> None:
        self.cpu_server, self.cpu_workers, self.cpu_smtp = self._used()
        self.idle_cpu_server, self.idle_cpu_workers, self.idle_cpu_smtp = \
            self.cpu_server, self.cpu_workers, self.cpu_smtp

    def _total(self) -> float:
        server, workers, smtp = self._read()
        return server + workers + sum(smtp.values())

    def when_idle(self, timeout: float = 20.0) -> None:
        """Wait until the server used no CPU for 1.5 s (its indexer ran after a 1 s delay)."""
        deadline = time.monotonic() + timeout
        last = self._total()
        quiet_since = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - quiet_since < 1.5:
            time.sleep(0.25)
            now = self._total()
            if now - last > 0.02:
                quiet_since = time.monotonic()
            last = now
        self.idle_cpu_server, self.idle_cpu_workers, self.idle_cpu_smtp = self._used()

    def text(self, messages: int) -> str:
        ms = 1000 / messages
        smtp = ""
        if self.smtp_rss:
            peaks = ", ".join(f"{v / 1024:.1f}" for v in self.smtp_rss.values())
            smtp = f" + SMTP workers {peaks} MiB"
        cpu_smtp = sum(self.cpu_smtp.values()) * ms
        idle_smtp = sum(self.idle_cpu_smtp.values()) * ms
        each = ", ".join(f"{v * ms:.2f}" for v in self.cpu_smtp.values())
        return (f"peak RSS {self.rss / 1024:.1f} MiB server{smtp} + {self.worker_rss / 1024:.1f}"
                f" MiB in {self.workers} pool process(es) (their PSS"
                f" {self.worker_pss / 1024:.1f} MiB: forked workers share pages);"
                f" CPU per message {self.cpu_server * ms:.2f} ms server"
                + (f" + {cpu_smtp:.2f} ms SMTP workers ({each})" if self.cpu_smtp else "")
                + f" + {self.cpu_workers * ms:.2f} ms pool during the load,"
                f" {self.idle_cpu_server * ms:.2f} + "
                + (f"{idle_smtp:.2f} + " if self.cpu_smtp else "")
                + f"{self.idle_cpu_workers * ms:.2f} ms with the background indexer done")


def count_messages(config_dir: Path) -> int:
    import json

    done = subprocess.run([str(Path(sys.executable).parent / "kittiwake"), "--config",
                           str(config_dir), "account", "list", "--json"],
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise SystemExit(f"kittiwake account list failed: {done.stderr}")
    return int(json.loads(done.stdout)[0]["messages"])


def bench_kittiwake(base: Path, messages: int, size: int) -> tuple[float, Figures]:
    """Messages/second into localserve's account, and the server's figures."""
    ip = free_loopback()
    log = base / "localserve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "kittiwake"),
                                 "--loglevel", "warn", "localserve",
                                 "--dir", str(base / "kw"), "--ip", ip],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_port(ip, LOCALSERVE_PORT, proc, log=log)
        settle(proc.pid)
        figures = Figures(proc.pid)
        took = smtp_source(ip, LOCALSERVE_PORT, messages, size, "bench@localhost")
        figures.at_end_of_load()
        figures.when_idle()
    finally:
        stop(proc)
    stored = count_messages(base / "kw" / "config")
    if stored != messages:
        raise SystemExit(f"kittiwake stored {stored} of {messages} messages; log {log}")
    return messages / took, figures


@contextlib.contextmanager
def postfix_maildir(base: Path, **extra: str) -> Iterator[tuple[str, int, Callable[[int], None]]]:
    """A private Postfix on loopback delivering bench.test to a Maildir (virtual(8)):
    its address, port, and a function that waits until N messages are in the Maildir."""
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
        **extra,
    }
    new = vmail / "box" / "new"
    with Postfix(ip=ip, port=port, main=main, hostname="sink.bench.test",
                 directory=base / "postfix") as pf:

        def delivered(messages: int) -> None:
            deadline = time.monotonic() + 300
            while (len(os.listdir(new)) if new.exists() else 0) < messages:
                if time.monotonic() > deadline:
                    raise SystemExit(f"Postfix delivered only {len(os.listdir(new))} of "
                                     f"{messages}:\n{pf.maillog()[-3000:]}")
                time.sleep(0.02)

        yield ip, port, delivered


def bench_postfix(base: Path, messages: int, size: int) -> tuple[float, float]:
    """Messages/second into a Maildir (end to end) and accepted by smtpd (queued)."""
    with postfix_maildir(base) as (ip, port, delivered):
        start = time.perf_counter()
        accepted = smtp_source(ip, port, messages, size, "bench@bench.test")
        delivered(messages)
        took = time.perf_counter() - start
    return messages / took, messages / accepted


MX_DOMAIN = "sender.signed.test"
MX_SOURCES = 64


def mx_world(sources: list[str], key_pem: bytes):  # type: ignore[no-untyped-def]
    """The DNS world of the sending domain: SPF, DKIM key, DMARC, FCrDNS of the sources."""
    from integration.dnsworld import DNSWorld
    from kittiwake import dkim

    world = DNSWorld()
    world.add(MX_DOMAIN, "TXT", '"v=spf1 ip4:127.0.0.0/8 -all"')
    record = dkim.dns_record(dkim.load_private_key(key_pem))
    world.add(f"sel._domainkey.{MX_DOMAIN}", "TXT",
              " ".join(f'"{record[i:i + 200]}"' for i in range(0, len(record), 200)))
    world.add(f"_dmarc.{MX_DOMAIN}", "TXT", '"v=DMARC1; p=reject"')
    for n, ip in enumerate(sources):
        world.add(f"client{n}.signed.test", "A", ip)
        world.add_ptr(ip, f"client{n}.signed.test")
    return world


def mx_messages(count: int, size: int, key_pem: bytes) -> list[bytes]:
    """Distinct messages of about ``size`` bytes, DKIM-signed by the sending domain."""
    from kittiwake import dkim

    key = dkim.load_private_key(key_pem)
    line = b"All work and no play makes a benchmark a dull message, line %06d.\r\n"
    out = []
    for i in range(count):
        body = b"".join(line % n for n in range(max(1, size // len(line % 0))))
        message = (f"From: Sender <news@{MX_DOMAIN}>\r\nTo: bench@bench.test\r\n"
                   f"Subject: benchmark message {i}\r\n"
                   f"Message-ID: <{i}.bench@{MX_DOMAIN}>\r\n"
                   "Date: Tue, 01 Dec 2026 12:00:00 +0000\r\n\r\n").encode() + body
        out.append(dkim.sign_message(message, MX_DOMAIN, "sel", key))
    return out


def bench_kittiwake_mx(base: Path, world, messages: list[bytes],  # type: ignore[no-untyped-def]
                       concurrency: int, sources: list[str]) -> tuple[float, Figures]:
    """Messages/second through ``kittiwake serve``'s full MX checks; the server's figures."""
    from bench.smtpload import send_all

    ip = free_loopback()
    port = free_port(ip)
    config = base / "kw-config"
    config.mkdir()
    (config / "kittiwake.conf").write_text(f"""# bench.smtp_inbound --mx
hostname = "mx.bench.test"
data_dir = "{base / 'kw-data'}"
shutdown_grace_seconds = 1
[log]
level = "warn"
[limits]
max_connections = 5000
max_connections_per_ip = 1000
smtp_connections_per_minute = [100000, 200000, 400000]
smtp_messages_per_minute = [100000, 200000, 400000]
[listeners.mx]
ips = ["{ip}"]
smtp = {{ enabled = true, port = {port} }}
""")
    (config / "domains.conf").write_text("")
    exe = str(Path(sys.executable).parent / "kittiwake")
    for args in (["domain", "add", "bench.test"], ["account", "add", "bench", "bench@bench.test"]):
        done = subprocess.run([exe, "--config", str(config), *args], capture_output=True,
                              text=True, timeout=60)
        if done.returncode != 0:
            raise SystemExit(f"kittiwake {' '.join(args)} failed: {done.stderr}")
    log = base / "serve.log"
    # As root (CI, this machine) serve refuses to run without `user` unless told to:
    # the benchmark's data directory is root's, so it runs as root on purpose.
    env = {**os.environ, **world.env, "KITTIWAKE_ALLOW_ROOT": "1"}
    with open(log, "wb") as out:
        proc = subprocess.Popen([exe, "--config", str(config), "serve"], env=env,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_port(ip, port, proc, log=log)
        settle(proc.pid)
        figures = Figures(proc.pid)
        spy = start_profile(proc.pid, f"mx-{concurrency}")
        took = send_all(ip, port, messages, mailfrom=f"news@{MX_DOMAIN}",
                        rcpt="bench@bench.test", concurrency=concurrency, sources=sources)
        figures.at_end_of_load()
        stop_profile(spy)
        figures.when_idle()
    finally:
        stop(proc)
    stored = count_messages(config)
    if stored != len(messages):
        raise SystemExit(f"kittiwake stored {stored} of {len(messages)} messages; log {log}")
    return len(messages) / took, figures


PROFILE_DIR: Path | None = None


def start_profile(pid: int, name: str) -> list[subprocess.Popen[bytes]]:
    """With ``--profile DIR``: py-spy records the server and each SMTP worker during the load
    (``--gil``: only the thread holding the GIL, i.e. the Python work).

    Collapsed stacks (``DIR/NAME-server.txt``, ``DIR/NAME-smtp-PID.txt``), one
    line per stack with its sample count, for ``sort -k2 -n`` or a flame graph.
    """
    if PROFILE_DIR is None:
        return []
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    targets = [(pid, "server")] + [(k, f"smtp-{k}") for k in descendants(pid)
                                   if role(k) == "smtp"]
    return [subprocess.Popen([spy, "record", "--pid", str(p), "--format", "raw", "--rate", "200",
                              "--gil", "--output", str(PROFILE_DIR / f"{name}-{label}.txt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for p, label in targets]


def stop_profile(spies: list[subprocess.Popen[bytes]]) -> None:
    """End the py-spy recorders (SIGINT makes py-spy write its file)."""
    import signal
    for spy in spies:
        spy.send_signal(signal.SIGINT)
    for spy in spies:
        spy.wait(timeout=60)


def bench_postfix_mx(base: Path, messages: list[bytes], concurrency: int,
                     sources: list[str]) -> float:
    """Messages/second into Postfix's Maildir (no checks), fed by the same client."""
    from bench.smtpload import send_all

    with postfix_maildir(base, mynetworks="127.0.0.0/8",
                         smtpd_client_connection_rate_limit="0") as (ip, port, delivered):
        start = time.perf_counter()
        send_all(ip, port, messages, mailfrom=f"news@{MX_DOMAIN}", rcpt="bench@bench.test",
                 concurrency=concurrency, sources=sources)
        delivered(len(messages))
        return len(messages) / (time.perf_counter() - start)


def main_mx(count: int, size: int, rounds: int) -> None:
    from bench.smtpload import loopback_sources
    from kittiwake import dkim

    sources = loopback_sources(MX_SOURCES)
    key_pem = dkim.generate_key("rsa", bits=2048)
    messages = mx_messages(count, size, key_pem)
    print(f"full MX path: {count} DKIM-signed messages of ~{size} bytes per round, one per"
          f" connection, from {len(sources)} loopback addresses, {rounds} round(s)")
    with mx_world(sources, key_pem) as world:
        for concurrency in (20, 100):
            ours: list[float] = []
            theirs: list[float] = []
            figures: list[Figures] = []
            for _ in range(rounds):
                base = Path(tempfile.mkdtemp(prefix="kw-bench-mx-"))
                base.chmod(0o755)
                try:
                    rate, got = bench_kittiwake_mx(base, world, messages, concurrency, sources)
                    ours.append(rate)
                    figures.append(got)
                    theirs.append(bench_postfix_mx(base, messages, concurrency, sources))
                finally:
                    shutil.rmtree(base, ignore_errors=True)
            kw, pf = statistics.median(ours), statistics.median(theirs)
            print(f"  {concurrency:3d} sessions: kittiwake serve (iprev+SPF+DKIM+DMARC, stored)"
                  f" {kw:7.1f} msg/s, Postfix (no checks, Maildir) {pf:7.1f} msg/s,"
                  f" ratio {kw / pf:.2f}")
            print(f"       kittiwake {max(figures, key=lambda f: f.rss).text(len(messages))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts (under a minute)")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="py-spy the MX runs' server and SMTP workers into DIR")
    parser.add_argument("--messages", type=int, default=0, help="messages per server and round")
    parser.add_argument("--size", type=int, default=10 * 1024, help="message size in bytes")
    parser.add_argument("--rounds", type=int, default=0,
                        help="alternating rounds (fresh servers each); medians are compared")
    parser.add_argument("--mx", action="store_true",
                        help="also the full MX path (checks against a DNSSEC world)")
    parser.add_argument("--mx-only", action="store_true", help="only the full MX path")
    args = parser.parse_args()
    global PROFILE_DIR
    PROFILE_DIR = args.profile
    messages = args.messages or (300 if args.quick else 2000)
    rounds = args.rounds or 3
    if args.mx_only:
        main_mx(messages, args.size, args.rounds or (1 if args.quick else 3))
        return
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
    figures: list[Figures] = []
    for n in range(rounds):
        base = Path(tempfile.mkdtemp(prefix="kw-bench-smtp-"))
        base.chmod(0o755)  # Postfix daemons (user postfix, nobody) must reach their dirs
        try:
            rate, got = bench_kittiwake(base, messages, args.size)
            ours.append(rate)
            figures.append(got)
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
    print(f"kittiwake {max(figures, key=lambda f: f.rss).text(messages)}")
    if args.mx:
        main_mx(messages, args.size, args.rounds or (1 if args.quick else 3))


if __name__ == "__main__":
    main()
