"""IMAP benchmark (issue 9): kittiwake against Dovecot on the same mailbox.

    .venv/bin/python -m bench.imap [--quick] [--json] [--messages N] [--rounds R]

The mailbox of :mod:`bench.imapcorpus` (20,000 varied messages; ``--quick``:
2,000) is written once as a Maildir and imported into

- kittiwake: ``kittiwake import maildir`` into a fresh data directory, then
  ``kittiwake serve`` with an ``imap`` listener on a loopback port
  (:func:`start_kittiwake`);
- Dovecot: a private instance (:mod:`tests.integration.dovecot`) whose INBOX
  is that Maildir (:func:`start_dovecot`).

One ``imaplib`` client then times each operation (median of ``--rounds``,
default 3; operations that change state are set up again before each round
so every round does the same work), one server at a time, on loopback only:
SELECT; FETCH 1:* (UID FLAGS ENVELOPE BODYSTRUCTURE); FETCH 1:*
(BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)]); FETCH 1:2000 BODY.PEEK[];
UID SEARCH TEXT / SUBJECT / FROM for the planted word (each answer checked
against the exact expected set); UID STORE +FLAGS on all; UID FETCH 1:*
(FLAGS) (CHANGEDSINCE m) after 100 changes (RFC 7162 §3.1.4); SELECT INBOX
(QRESYNC (v m)) after 100 changes (RFC 7162 §3.2.5); APPEND of 1,000 messages.
Dovecot is warmed first (one SELECT and one FETCH, untimed) so its index
exists, as kittiwake's does after the import.

Then memory: N connections logged in, INBOX selected, in IDLE (RFC 2177),
held by an asyncio client: kittiwake 10,000 (quick: 1,000), resident memory
of its server process after minus before, per connection; Dovecot 500
(quick: 200), the summed RSS (and PSS) of its imap processes, per connection.

Prints a table: seconds for each server, the ratio Dovecot/kittiwake (>= 1.0
means kittiwake is at least as fast) and the SEARCH checks, then the
targets. Not a timed test: these machines are shared and noisy, so compare
the numbers of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import imaplib
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from bench.imapcorpus import MARKER, Corpus, Place

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.integration.dovecot import PASSWORD as DOVECOT_PASSWORD  # noqa: E402
from tests.integration.dovecot import Dovecot, DovecotError  # noqa: E402
from tests.integration.loopback import free_port  # noqa: E402

IP = "127.0.0.1"
NOFILE = 65536
KITTIWAKE_ACCOUNT = "bench"
KITTIWAKE_ADDRESS = "bench@example.org"
KITTIWAKE_PASSWORD = "bench-password"
NO_IMAP = "kittiwake: no IMAP server in this build"
SEARCH_LIMIT = 0.1  # seconds; the target for every SEARCH
CLIENT_TIMEOUT = 900.0


class Endpoint(NamedTuple):
    """A running IMAP server to benchmark, and how to stop it.

    ``processes`` returns the PIDs whose resident memory is the server's
    (kittiwake: its one process; Dovecot: its per-connection imap processes).
    """

    host: str
    port: int
    user: str
    password: str
    stop: Callable[[], None]
    processes: Callable[[], list[int]]


class NoIMAPServer(RuntimeError):
    """``kittiwake serve`` of this build has no IMAP service."""


# --- process limits and memory ---------------------------------------------------------

def raise_nofile(want: int = NOFILE) -> int:
    """Raise RLIMIT_NOFILE of this process (and so of the servers it starts); the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limit in (want, hard):
        target = max(soft, limit)
        new_hard = max(hard, target)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, new_hard))
            return target
    return soft


def _status_kib(pid: int, field_name: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


def _pss_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def memory_kib(pids: Iterable[int]) -> tuple[int, int]:
    """Summed VmRSS and PSS (KiB) of ``pids``."""
    pids = list(pids)
    return sum(_status_kib(p, "VmRSS") for p in pids), sum(_pss_kib(p) for p in pids)


def _children(parent: int) -> list[tuple[int, str]]:
    """(pid, comm) of the direct children of ``parent``."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            if ppid == parent:
                out.append((int(entry), comm))
    return out


def process_tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += [c for c, _ in _children(p)]
    return out


def wait_port(ip: str, port: int, timeout: float, alive: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            return False
        with contextlib.suppress(OSError), socket.create_connection((ip, port), 0.5):
            return True
        time.sleep(0.05)
    return False


# --- the servers -----------------------------------------------------------------------

def _kittiwake(config: Path, *args: str, stdin: str | None = None, timeout: float = 3600
               ) -> str:
    exe = str(Path(sys.executable).parent / "kittiwake")
    done = subprocess.run([exe, "--config", str(config), *args], input=stdin,
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"kittiwake {' '.join(args)} failed ({done.returncode}):"
                         f" {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def kittiwake_config(data_dir: Path, ip: str, port: int, connections: int) -> str:
    """kittiwake.conf for the benchmark: one loopback listener with IMAP only."""
    return f"""# kittiwake IMAP benchmark (bench/imap.py)
hostname = "bench.example.org"
data_dir = "{data_dir}"
shutdown_grace_seconds = 1

[log]
level = "warn"

[limits]
max_connections = {connections}
max_connections_per_ip = {connections}

[listeners.bench]
ips = ["{ip}"]
imap = {{ enabled = true, port = {port} }}
"""


def start_kittiwake(corpus_dir: Path, *, connections: int = 20000,
                    work: Path | None = None) -> Endpoint:
    """Import ``corpus_dir`` (a Maildir) into a fresh kittiwake and serve it over IMAP.

    Everything goes through the CLI, as a user would do it: ``domain add``,
    ``account add``, ``account setpassword``, ``import maildir``, then
    ``kittiwake serve`` (a subprocess of this one, so it inherits the raised
    file limit). Raises :class:`NoIMAPServer` when serve has no IMAP service.
    """
    base = Path(tempfile.mkdtemp(prefix="kw-bench-imap-", dir=work))
    config = base / "config"
    config.mkdir()
    port = free_port(IP)
    (config / "kittiwake.conf").write_text(kittiwake_config(base / "data", IP, port,
                                                            connections))
    (config / "domains.conf").write_text("")
    _kittiwake(config, "domain", "add", "example.org")
    _kittiwake(config, "account", "add", KITTIWAKE_ACCOUNT, KITTIWAKE_ADDRESS)
    _kittiwake(config, "account", "setpassword", KITTIWAKE_ACCOUNT,
               stdin=KITTIWAKE_PASSWORD + "\n")
    _kittiwake(config, "import", "maildir", KITTIWAKE_ACCOUNT, "Inbox", str(corpus_dir))
    log = base / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "kittiwake"),
                                 "--config", str(config), "serve"],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(base, ignore_errors=True)

    def no_imap_logged() -> bool:
        return "service imap is not available" in log.read_text(errors="replace")

    up = wait_port(IP, port, 30, lambda: proc.poll() is None and not no_imap_logged())
    if not up:
        text = log.read_text(errors="replace")
        stop()
        if "service imap is not available" in text:
            raise NoIMAPServer(NO_IMAP)
        raise SystemExit(f"kittiwake serve did not listen for IMAP on {IP}:{port}:\n"
                         f"{text[-3000:]}")
    # The login name: the account's email address (as for SMTP AUTH).
    return Endpoint(IP, port, KITTIWAKE_ADDRESS, KITTIWAKE_PASSWORD, stop,
                    lambda: process_tree(proc.pid))


DOVECOT_EXTRA = """
# bench/imap.py: many connections of one user from one address.
default_client_limit = 4000
service imap {
  process_limit = 4000
}
protocol imap {
  mail_max_userip_connections = 100000
}
"""


def start_dovecot(corpus_dir: Path) -> Endpoint:
    """A private Dovecot whose INBOX (Maildir) holds the files of ``corpus_dir``."""
    dc = Dovecot(ip=IP, extra_config=DOVECOT_EXTRA)
    try:
        dc.start()
    except DovecotError as exc:
        raise SystemExit(f"Dovecot: {exc}") from None
    assert dc.dir is not None and dc.proc is not None
    new = dc.dir / "mail" / dc.user / "new"
    owner = new.stat()
    for src in sorted((corpus_dir / "new").iterdir()):
        dest = new / src.name
        try:
            os.link(src, dest)
        except OSError:
            shutil.copyfile(src, dest)
        os.chown(dest, owner.st_uid, owner.st_gid)
    master = dc.proc.pid
    return Endpoint(dc.ip, dc.port, dc.user, DOVECOT_PASSWORD, dc.stop,
                    lambda: [pid for pid, comm in _children(master) if comm == "imap"])


# --- the timed operations --------------------------------------------------------------

_FETCH_START = re.compile(rb"^\d+ \(")
_UID = re.compile(rb"UID (\d+)")
_MSGID = re.compile(rb"<[^>]*>")


def fetch_count(data: list[bytes | tuple[bytes, bytes] | None]) -> int:
    """Number of FETCH responses in imaplib's answer (literals split them into pieces)."""
    n = 0
    for item in data:
        head = item[0] if isinstance(item, tuple) else item
        if head is not None and _FETCH_START.match(head):
            n += 1
    return n


def ok(answer: tuple[str, list]) -> list:  # type: ignore[type-arg]
    typ, data = answer
    if typ != "OK":
        raise imaplib.IMAP4.error(f"{typ} {data!r}")
    return data


@dataclass
class Measured:
    """One operation's seconds per round and what its answer showed."""

    seconds: list[float] = field(default_factory=list)
    check: str = ""
    exact: bool | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


@dataclass
class Run:
    """Everything measured on one server."""

    ops: dict[str, Measured] = field(default_factory=dict)
    memory: dict[str, float] = field(default_factory=dict)


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


class Bench:
    """The timed operations against one server, with one imaplib client."""

    def __init__(self, endpoint: Endpoint, corpus: Corpus, rounds: int,
                 appends: list[bytes]) -> None:
        self.ep = endpoint
        self.corpus = corpus
        self.rounds = rounds
        self.appends = appends
        self.run = Run()
        self.uid_index: dict[int, int] = {}

    def connect(self) -> imaplib.IMAP4:
        imap = imaplib.IMAP4(self.ep.host, self.ep.port, timeout=CLIENT_TIMEOUT)
        ok(imap.login(self.ep.user, self.ep.password))
        return imap

    def measure(self, name: str, op: Callable[[], str], setup: Callable[[], None] | None = None
                ) -> Measured:
        m = Measured()
        for _ in range(self.rounds):
            if setup is not None:
                setup()
            took, check = timed(op)
            m.seconds.append(took)
            m.check = str(check)
        self.run.ops[name] = m
        return m

    def warm_up(self, imap: imaplib.IMAP4) -> None:
        """SELECT and map UIDs to corpus indices by Message-ID (untimed)."""
        ok(imap.select("INBOX"))
        data = ok(imap.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"))
        for item in data:
            if not isinstance(item, tuple):
                continue
            uid, msgid = _UID.search(item[0]), _MSGID.search(item[1])
            if uid and msgid:
                index = Corpus.index_of(msgid.group().decode())
                if index is not None:
                    self.uid_index[int(uid.group(1))] = index
        if sorted(self.uid_index.values()) != list(range(self.corpus.count)):
            raise SystemExit(f"INBOX holds {len(self.uid_index)} of the {self.corpus.count}"
                             " corpus messages")

    def all_ops(self) -> Run:
        n = self.corpus.count
        imap = self.connect()
        self.warm_up(imap)

        def select() -> str:
            ok(imap.close())
            ok(imap.select("INBOX"))
            exists = int(imap.untagged_responses.get("EXISTS", [b"0"])[-1])
            return f"EXISTS {exists}"

        self.measure("SELECT INBOX", select)

        def fetch(items: str, ranges: str = "1:*", want: int = n) -> Callable[[], str]:
            def op() -> str:
                got = fetch_count(ok(imap.fetch(ranges, items)))
                if got != want:
                    raise SystemExit(f"FETCH {ranges} {items}: {got} responses, expected {want}")
                return f"{got} messages"
            return op

        self.measure("FETCH 1:* (UID FLAGS ENVELOPE BODYSTRUCTURE)",
                     fetch("(UID FLAGS ENVELOPE BODYSTRUCTURE)"))
        self.measure("FETCH 1:* (BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)])",
                     fetch("(BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)])"))
        bodies = min(2000, n)
        self.measure(f"FETCH 1:{bodies} BODY.PEEK[]", fetch("BODY.PEEK[]", f"1:{bodies}", bodies))
        for key in ("TEXT", "SUBJECT", "FROM"):
            self.search(imap, key)

        def unflag() -> None:
            ok(imap.uid("STORE", "1:*", "-FLAGS.SILENT", r"(\Flagged)"))

        def store() -> str:
            got = fetch_count(ok(imap.uid("STORE", "1:*", "+FLAGS", r"(\Flagged)")))
            return f"{got} FETCH responses"

        self.measure("UID STORE 1:* +FLAGS (\\Flagged)", store, setup=unflag)
        imap.logout()
        self.condstore()
        self.append()
        return self.run

    def search(self, imap: imaplib.IMAP4, key: str) -> None:
        want = self.corpus.expected[key]

        def op() -> str:
            data = ok(imap.uid("SEARCH", key, MARKER))
            uids = [int(u) for u in b" ".join(d for d in data if d).split()]
            got = {self.uid_index.get(u, -u) for u in uids}
            missed = want - got
            extra = got - want
            places: dict[str, int] = {}
            for i in missed:
                places[str(self.corpus.planted[i])] = places.get(str(self.corpus.planted[i]),
                                                                 0) + 1
            text = f"{len(got & want)}/{len(want)} hits"
            if missed:
                text += " missed " + ", ".join(f"{v} in {k}" for k, v in sorted(places.items()))
            if extra:
                text += f", {len(extra)} wrong"
            return ("exact " if not missed and not extra else "NOT exact: ") + text

        m = self.measure(f"UID SEARCH {key} {MARKER}", op)
        m.exact = m.check.startswith("exact")

    def condstore(self) -> None:
        """CHANGEDSINCE and QRESYNC after 100 changes (RFC 7162), on a QRESYNC connection."""
        imap = self.connect()
        ok(imap.xatom("ENABLE", "QRESYNC"))
        uids = sorted(self.uid_index)
        changed = ",".join(str(u) for u in uids[:: max(len(uids) // 100, 1)][:100])
        n_changed = min(100, len(uids))

        def selected() -> tuple[int, int]:
            ok(imap.select("INBOX"))
            validity = int(imap.untagged_responses["UIDVALIDITY"][-1])
            modseq = int(imap.untagged_responses["HIGHESTMODSEQ"][-1])
            return validity, modseq

        _, since = selected()
        ok(imap.uid("STORE", changed, "+FLAGS.SILENT", "(\\Answered)"))

        def changedsince() -> str:
            got = fetch_count(ok(imap.uid("FETCH", "1:*", f"(FLAGS) (CHANGEDSINCE {since})")))
            if got != n_changed:
                raise SystemExit(f"CHANGEDSINCE: {got} messages, expected {n_changed}")
            return f"{got} changed"

        self.measure("UID FETCH 1:* (FLAGS) (CHANGEDSINCE m), 100 changed", changedsince)
        state: dict[str, int] = {}
        toggle = ["-FLAGS.SILENT"]  # flipped before each round: +, -, +, ... (100 changes each)

        def change_100() -> None:
            state["validity"], state["modseq"] = selected()
            toggle[0] = "-FLAGS.SILENT" if toggle[0] == "+FLAGS.SILENT" else "+FLAGS.SILENT"
            ok(imap.uid("STORE", changed, toggle[0], "($BenchToggle)"))
            ok(imap.close())

        def qresync() -> str:
            ok(imap.select(f"INBOX (QRESYNC ({state['validity']} {state['modseq']}))"))
            got = len(imap.untagged_responses.get("FETCH", []))
            if got != n_changed:
                raise SystemExit(f"SELECT QRESYNC: {got} FETCH responses, expected {n_changed}")
            return f"{got} changed"

        self.measure("SELECT INBOX (QRESYNC (v m)), 100 changed", qresync, setup=change_100)
        imap.logout()

    def append(self) -> None:
        """APPEND into a new mailbox each round; checked and deleted outside the timing."""
        imap = self.connect()
        boxes = iter(range(1, self.rounds + 1))
        box: list[str] = []

        def check_and_delete() -> None:
            if not box:
                return
            ok(imap.select(box[-1], readonly=True))
            exists = int(imap.untagged_responses.get("EXISTS", [b"0"])[-1])
            ok(imap.close())
            if exists != len(self.appends):
                raise SystemExit(f"APPEND: {box[-1]} holds {exists}, expected "
                                 f"{len(self.appends)}")
            ok(imap.delete(box.pop()))

        def create() -> None:
            check_and_delete()
            box.append(f"BenchAppend{next(boxes)}")
            ok(imap.create(box[-1]))

        def op() -> str:
            for data in self.appends:
                ok(imap.append(box[-1], None, None, data))
            return f"{len(self.appends)} appended"

        self.measure(f"APPEND {len(self.appends)} messages", op, setup=create)
        check_and_delete()
        imap.logout()


# --- IDLE connections (memory) ---------------------------------------------------------

Held = list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]


async def _idle_connection(ep: Endpoint, source: str, held: Held,
                           gate: asyncio.Semaphore) -> None:
    async with gate:
        reader, writer = await asyncio.open_connection(ep.host, ep.port, local_addr=(source, 0))
        greeting = await reader.readline()
        if not greeting.startswith(b"* OK"):
            raise ConnectionError(f"greeting {greeting!r}")
        for tag, command in ((b"a", f"LOGIN {ep.user} {ep.password}".encode()),
                             (b"b", b"SELECT INBOX")):
            writer.write(tag + b" " + command + b"\r\n")
            while True:
                line = await reader.readline()
                if not line:
                    raise ConnectionError(f"closed after {command.split()[0]!r}")
                if line.startswith(tag + b" "):
                    if not line.startswith(tag + b" OK"):
                        raise ConnectionError(line.decode(errors="replace").strip())
                    break
        writer.write(b"c IDLE\r\n")
        while True:
            line = await reader.readline()
            if line.startswith(b"+"):
                break
            if not line or line.startswith(b"c "):
                raise ConnectionError(f"IDLE refused: {line!r}")
        held.append((reader, writer))


async def hold_idle(ep: Endpoint, count: int, settle: float = 3.0) -> dict[str, float]:
    """Open ``count`` IDLE connections; server memory before and after (KiB), and how many held."""
    before_rss, before_pss = memory_kib(ep.processes())
    held: Held = []
    gate = asyncio.Semaphore(64)
    sources = [f"127.0.0.{2 + i % 200}" for i in range(count)]
    start = time.perf_counter()
    results = await asyncio.gather(*(_idle_connection(ep, src, held, gate) for src in sources),
                                   return_exceptions=True)
    opened = time.perf_counter() - start
    errors = [r for r in results if isinstance(r, BaseException)]
    await asyncio.sleep(settle)
    after_rss, after_pss = memory_kib(ep.processes())
    alive = sum(1 for r, w in held if not r.at_eof() and not w.is_closing())
    for _, w in held:
        with contextlib.suppress(OSError, RuntimeError):
            w.write(b"DONE\r\nd LOGOUT\r\n")
            w.close()
    await asyncio.gather(*(w.wait_closed() for _, w in held), return_exceptions=True)
    out = {"wanted": count, "held": alive, "failed": len(errors), "open_seconds": opened,
           "rss_before_kib": before_rss, "rss_after_kib": after_rss,
           "pss_before_kib": before_pss, "pss_after_kib": after_pss,
           "rss_per_conn_kib": (after_rss - before_rss) / max(alive, 1),
           "pss_per_conn_kib": (after_pss - before_pss) / max(alive, 1)}
    if errors:
        out["first_error"] = str(errors[0])  # type: ignore[assignment]
    return out


# --- running and printing --------------------------------------------------------------

def bench_server(name: str, start: Callable[[], Endpoint], corpus: Corpus, rounds: int,
                 appends: list[bytes], idle: int) -> Run | str:
    """Run everything against one server; a string instead when it cannot be run."""
    try:
        ep = start()
    except NoIMAPServer as exc:
        return str(exc)
    try:
        print(f"{name}: IMAP on {ep.host}:{ep.port}, timing ...", file=sys.stderr)
        run = Bench(ep, corpus, rounds, appends).all_ops()
        print(f"{name}: {idle} IDLE connections ...", file=sys.stderr)
        run.memory = asyncio.run(hold_idle(ep, idle))
        return run
    finally:
        ep.stop()


def _fmt(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.3f}"


def report(corpus: Corpus, size: int, kw: Run | str, dc: Run | str, quick: bool) -> dict:  # type: ignore[type-arg]
    measured = [r for r in (kw, dc) if isinstance(r, Run)]
    names = list(measured[0].ops) if measured else []
    rows = []
    for op in names:
        k = kw.ops.get(op) if isinstance(kw, Run) else None
        d = dc.ops.get(op) if isinstance(dc, Run) else None
        ratio = d.median / k.median if k and d and k.median > 0 else None
        rows.append({"op": op, "kittiwake": k.median if k else None,
                     "dovecot": d.median if d else None, "ratio": ratio,
                     "kittiwake_check": k.check if k else None,
                     "dovecot_check": d.check if d else None,
                     "kittiwake_exact": k.exact if k else None,
                     "dovecot_exact": d.exact if d else None})
    places = ", ".join(f"{sum(1 for q in corpus.planted.values() if q is p)} {p}" for p in Place)
    print(f"IMAP benchmark ({'quick' if quick else 'full'} run): {corpus.count} messages"
          f" ({size / 2**20:.0f} MiB), marker {MARKER!r} in {corpus.hits} messages ({places}),"
          " median seconds of the rounds, loopback, one imaplib client")
    if isinstance(dc, str):
        print(f"Dovecot: {dc}")
    width = max([len(r["op"]) for r in rows] + [10])
    kcol = max(11, len(kw) if isinstance(kw, str) else 0)
    print(f"{'operation':<{width}}  {'kittiwake s':>{kcol}}  {'Dovecot s':>9}  {'ratio':>6}  check")
    for i, r in enumerate(rows):
        kcell = (kw if i == 0 else "") if isinstance(kw, str) else _fmt(r["kittiwake"])
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        checks = []
        if r["kittiwake_check"]:
            checks.append(f"kittiwake {r['kittiwake_check']}")
        if r["dovecot_check"]:
            checks.append(f"Dovecot {r['dovecot_check']}")
        print(f"{r['op']:<{width}}  {kcell:>{kcol}}  {_fmt(r['dovecot']):>9}  {ratio:>6}  "
              + "; ".join(checks))
    memory = {"kittiwake": kw.memory if isinstance(kw, Run) else None,
              "dovecot": dc.memory if isinstance(dc, Run) else None}
    for label, m in (("kittiwake", memory["kittiwake"]), ("Dovecot", memory["dovecot"])):
        if m is None:
            continue
        what = "server process" if label == "kittiwake" else "imap processes summed"
        line = (f"{label}: {m['held']}/{m['wanted']} IDLE connections held"
                f" (opened in {m['open_seconds']:.1f} s), {what} RSS"
                f" {m['rss_before_kib'] / 1024:.1f} -> {m['rss_after_kib'] / 1024:.1f} MiB ="
                f" {m['rss_per_conn_kib']:.1f} KiB per connection (PSS"
                f" {m['pss_per_conn_kib']:.1f} KiB)")
        if m["failed"]:
            line += f"; {m['failed']} failed, first: {m.get('first_error')}"
        print(line)
    targets = []
    if isinstance(kw, Run):
        slow = [r["op"] for r in rows if r["ratio"] is not None and r["ratio"] < 1.0]
        targets.append(("every op at least as fast as Dovecot (ratio >= 1.0)", not slow,
                        "slower: " + ", ".join(slow) if slow else ""))
        searches = [r for r in rows if r["op"].startswith("UID SEARCH")]
        bad = [r["op"].split()[2] for r in searches
               if not r["kittiwake_exact"] or (r["kittiwake"] or 1) >= SEARCH_LIMIT]
        targets.append((f"every SEARCH exact and under {SEARCH_LIMIT} s", not bad,
                        "failing: " + ", ".join(bad) if bad else ""))
        km, dm = memory["kittiwake"], memory["dovecot"]
        if km is not None:
            targets.append((f"{km['wanted']} IDLE connections held", km["held"] == km["wanted"],
                            f"held {km['held']}"))
        if km is not None and dm is not None:
            share = km["rss_per_conn_kib"] / dm["rss_per_conn_kib"] if dm[
                "rss_per_conn_kib"] > 0 else float("inf")
            targets.append(("memory per connection at most a tenth of Dovecot's", share <= 0.1,
                            f"{share:.3f} of Dovecot's"))
        print("targets:")
        for text, met, detail in targets:
            print(f"  [{'met' if met else 'NOT met'}] {text}{': ' + detail if detail else ''}")
    return {"messages": corpus.count, "bytes": size, "marker": MARKER, "quick": quick,
            "kittiwake_unavailable": kw if isinstance(kw, str) else None,
            "ops": rows, "memory": memory,
            "targets": [{"target": t, "met": m, "detail": d} for t, m, d in targets]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="2,000 messages, fewer appends and IDLE connections")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--messages", type=int, default=0, help="corpus size")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per operation (median)")
    parser.add_argument("--seed", type=int, default=1, help="corpus seed")
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    args = parser.parse_args()
    count = args.messages or (2000 if args.quick else 20000)
    idle_kw, idle_dc = (1000, 200) if args.quick else (10000, 500)
    n_append = 200 if args.quick else 1000
    limit = raise_nofile(max(NOFILE, 2 * idle_kw + 1000))
    if limit < idle_kw + 100:
        raise SystemExit(f"RLIMIT_NOFILE is {limit}: too low for {idle_kw} connections")
    corpus = Corpus(count, seed=args.seed)
    appends = list(Corpus(n_append, seed=args.seed + 1000, hits=0).messages())
    base = Path(tempfile.mkdtemp(prefix="kw-bench-imap-", dir=args.dir))
    base.chmod(0o755)
    try:
        print(f"writing {count} messages to {base / 'corpus'} ...", file=sys.stderr)
        size = corpus.write_maildir(base / "corpus")
        dc = bench_server("Dovecot", lambda: start_dovecot(base / "corpus"), corpus,
                          args.rounds, appends, idle_dc)
        kw = bench_server("kittiwake", lambda: start_kittiwake(base / "corpus", work=base),
                          corpus, args.rounds, appends, idle_kw)
        if args.json:
            import io

            with contextlib.redirect_stdout(io.StringIO()):
                out = report(corpus, size, kw, dc, args.quick)
            print(json.dumps(out, indent=2))
        else:
            report(corpus, size, kw, dc, args.quick)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
