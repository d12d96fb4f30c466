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
Each server is warmed first (SELECT and a FETCH of every Message-ID, untimed,
which also maps UIDs to corpus messages), so Dovecot's index exists as
kittiwake's does after the import. An operation a server fails shows its
error in its row; the others still run.

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
import dataclasses
import imaplib
import io
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

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.integration.dovecot import PASSWORD as DOVECOT_PASSWORD  # noqa: E402
from tests.integration.dovecot import Dovecot, DovecotError  # noqa: E402
from tests.integration.loopback import free_port  # noqa: E402

from bench.imapcorpus import MARKER, Corpus, Place  # noqa: E402

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


class BenchError(RuntimeError):
    """A server could not be set up or started; the message says what and shows its log."""


class NoIMAPServer(BenchError):
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
        raise BenchError(f"kittiwake {' '.join(args)} failed ({done.returncode}):"
                         f" {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


# Names an IMAP service option allowing LOGIN without TLS may have (as submission's
# no_require_starttls). The benchmark runs on loopback without TLS, as Dovecot does.
PLAINTEXT_OPTIONS = ("no_require_starttls", "plaintext_login", "allow_plaintext_login")


def imap_plaintext_option() -> str | None:
    """The IMAP service's option for LOGIN without TLS, when this build's schema has one."""
    from kittiwake.config.static import Listener

    service = Listener.model_fields["imap"].annotation
    fields = getattr(service, "model_fields", {})
    return next((name for name in PLAINTEXT_OPTIONS if name in fields), None)


def kittiwake_config(data_dir: Path, ip: str, port: int, connections: int) -> str:
    """kittiwake.conf for the benchmark: one loopback listener with IMAP only.

    The connection limits are raised for the IDLE connections, and LOGIN
    without TLS is allowed when the schema has the option for it.
    """
    plaintext = imap_plaintext_option()
    imap = f"enabled = true, port = {port}" + (f", {plaintext} = true" if plaintext else "")
    return f"""# kittiwake IMAP benchmark (bench/imap.py)
hostname = "bench.example.org"
data_dir = "{data_dir}"
shutdown_grace_seconds = 1

[log]
level = "warn"

[limits]
max_connections = {connections}
max_connections_per_ip = {connections}
max_imap_sessions_per_account = {connections}

[listeners.bench]
ips = ["{ip}"]
imap = {{ {imap} }}
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
        # Run as root on purpose when the benchmark is (its directories are root's).
        proc = subprocess.Popen([str(Path(sys.executable).parent / "kittiwake"),
                                 "--config", str(config), "serve"],
                                env={**os.environ, "KITTIWAKE_ALLOW_ROOT": "1"},
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
        raise BenchError(f"kittiwake serve did not listen for IMAP on {IP}:{port}:\n"
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
        raise BenchError(f"Dovecot: {exc}") from None
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


Data = list[bytes | tuple[bytes, bytes] | None]
"""What imaplib returns for a command: lines, (line, literal) pairs, None for no data."""


def fetch_count(data: Data) -> int:
    """Number of FETCH responses in imaplib's answer (literals split them into pieces)."""
    n = 0
    for item in data:
        head = item[0] if isinstance(item, tuple) else item
        if head is not None and _FETCH_START.match(head):
            n += 1
    return n


class OpFailed(Exception):
    """A server's answer was not what the operation must give."""


def ok(answer: tuple[str, Data]) -> Data:
    typ, data = answer
    if typ != "OK":
        raise OpFailed(f"{typ} {data!r}"[:300])
    return data


def exists_of(imap: imaplib.IMAP4) -> int:
    return int(imap.untagged_responses.get("EXISTS", [b"0"])[-1])


# What an operation may fail with; the failure is shown in its row and the rest goes on.
OP_ERRORS = (OpFailed, imaplib.IMAP4.error, OSError, KeyError, ValueError, EOFError)


@dataclass
class Measured:
    """One operation's seconds per round and what its answer showed (or how it failed)."""

    seconds: list[float] = field(default_factory=list)
    check: str = ""
    exact: bool | None = None
    error: str | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds and not self.error else None


@dataclass
class Run:
    """Everything measured on one server."""

    ops: dict[str, Measured] = field(default_factory=dict)
    memory: IdleResult | str | None = None
    """The IDLE measurement, or why it failed."""


class Bench:
    """The timed operations against one server, with one imaplib client at a time.

    Each operation runs ``rounds`` times; ``setup`` (untimed) runs before
    each round so that rounds of a state-changing operation do the same
    work. An operation that fails is recorded with its error, its client is
    dropped, and the next operation starts on a new connection.
    """

    def __init__(self, endpoint: Endpoint, corpus: Corpus, rounds: int,
                 appends: list[bytes]) -> None:
        self.ep = endpoint
        self.corpus = corpus
        self.rounds = rounds
        self.appends = appends
        self.run = Run()
        self.uid_index: dict[int, int] = {}
        self._imap: imaplib.IMAP4 | None = None
        self._qresync = False

    # The client

    def client(self, *, qresync: bool = False) -> imaplib.IMAP4:
        """The logged-in client; a new one when none is open or QRESYNC must be (un)set."""
        if self._imap is not None and self._qresync == qresync:
            return self._imap
        self.drop()
        imap = imaplib.IMAP4(self.ep.host, self.ep.port, timeout=CLIENT_TIMEOUT)
        try:
            imap.login(self.ep.user, self.ep.password)
        except imaplib.IMAP4.error as exc:
            raise OpFailed(f"LOGIN as {self.ep.user} refused: {exc} (the benchmark logs in"
                           " without TLS, on loopback)") from None
        if qresync:
            ok(imap.xatom("ENABLE", "QRESYNC"))  # RFC 7162 §3.2.3 (implies CONDSTORE)
        self._imap, self._qresync = imap, qresync
        return imap

    def inbox(self, *, qresync: bool = False) -> imaplib.IMAP4:
        """The client with INBOX selected."""
        imap = self.client(qresync=qresync)
        if imap.state != "SELECTED":
            ok(imap.select("INBOX"))
        return imap

    def drop(self) -> None:
        if self._imap is not None:
            with contextlib.suppress(*OP_ERRORS):
                self._imap.logout()
            with contextlib.suppress(OSError):
                self._imap.shutdown()
        self._imap = None

    def measure(self, name: str, op: Callable[[], str], setup: Callable[[], None] | None = None
                ) -> Measured:
        m = Measured()
        self.run.ops[name] = m
        try:
            for _ in range(self.rounds):
                if setup is not None:
                    setup()
                start = time.perf_counter()
                check = op()
                m.seconds.append(time.perf_counter() - start)
                m.check = check
        except OP_ERRORS as exc:
            m.error = f"{type(exc).__name__}: {exc}"[:300]
            self.drop()
        return m

    # The operations

    def warm_up(self) -> None:
        """SELECT and map UIDs to corpus indices by Message-ID (untimed)."""
        data = ok(self.inbox().uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"))
        for item in data:
            if not isinstance(item, tuple):
                continue
            uid, msgid = _UID.search(item[0]), _MSGID.search(item[1])
            if uid and msgid:
                index = Corpus.index_of(msgid.group().decode())
                if index is not None:
                    self.uid_index[int(uid.group(1))] = index
        if sorted(self.uid_index.values()) != list(range(self.corpus.count)):
            raise OpFailed(f"INBOX holds {len(self.uid_index)} of the {self.corpus.count}"
                           " corpus messages")

    def all_ops(self) -> Run:
        """Every operation, in order; the warm-up must succeed (else OpFailed)."""
        self.warm_up()
        self.select()
        n = self.corpus.count
        self.fetch("(UID FLAGS ENVELOPE BODYSTRUCTURE)", "1:*", n)
        self.fetch("(BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)])", "1:*", n)
        self.fetch("BODY.PEEK[]", f"1:{min(2000, n)}", min(2000, n))
        for key in ("TEXT", "SUBJECT", "FROM"):
            self.search(key)
        self.store()
        self.changedsince()
        self.qresync()
        self.append()
        self.drop()
        return self.run

    def select(self) -> None:
        def close() -> None:
            imap = self.client()
            if imap.state == "SELECTED":
                ok(imap.close())

        def op() -> str:
            imap = self.client()
            ok(imap.select("INBOX"))
            if exists_of(imap) != self.corpus.count:
                raise OpFailed(f"EXISTS {exists_of(imap)}, expected {self.corpus.count}")
            return f"EXISTS {exists_of(imap)}"

        self.measure("SELECT INBOX", op, setup=close)

    def fetch(self, items: str, ranges: str, want: int) -> None:
        def op() -> str:
            got = fetch_count(ok(self.inbox().fetch(ranges, items)))
            if got != want:
                raise OpFailed(f"{got} FETCH responses, expected {want}")
            return f"{got} messages"

        self.measure(f"FETCH {ranges} {items}", op)

    def search(self, key: str) -> None:
        want = self.corpus.expected[key]

        def op() -> str:
            data = ok(self.inbox().uid("SEARCH", key, MARKER))
            uids = [int(u) for u in b" ".join(d for d in data if d).split()]
            got = {self.uid_index.get(u, -u) for u in uids}
            missed, extra = want - got, got - want
            places: dict[str, int] = {}
            for i in missed:
                place = str(self.corpus.planted[i])
                places[place] = places.get(place, 0) + 1
            text = f"{len(got & want)}/{len(want)} hits"
            if missed:
                text += ", missed " + ", ".join(f"{v} in {k}" for k, v in sorted(places.items()))
            if extra:
                text += f", {len(extra)} wrong"
            return ("exact " if not missed and not extra else "NOT exact: ") + text

        m = self.measure(f"UID SEARCH {key} {MARKER}", op)
        m.exact = m.check.startswith("exact") if not m.error else False

    def store(self) -> None:
        n = self.corpus.count

        def unflag() -> None:
            ok(self.inbox().uid("STORE", "1:*", "-FLAGS.SILENT", r"(\Flagged)"))

        def op() -> str:
            got = fetch_count(ok(self.inbox().uid("STORE", "1:*", "+FLAGS", r"(\Flagged)")))
            if got != n:
                raise OpFailed(f"{got} FETCH responses, expected {n}")
            return f"{got} FETCH responses"

        self.measure("UID STORE 1:* +FLAGS (\\Flagged)", op, setup=unflag)

    def _changed(self) -> tuple[str, int]:
        """100 UIDs spread over the mailbox, as a UID set, and how many."""
        uids = sorted(self.uid_index)
        chosen = uids[:: max(len(uids) // 100, 1)][:100]
        return ",".join(str(u) for u in chosen), len(chosen)

    def _select_qresync(self) -> tuple[int, int]:
        """SELECT INBOX on the QRESYNC client: its UIDVALIDITY and HIGHESTMODSEQ."""
        imap = self.client(qresync=True)
        ok(imap.select("INBOX"))
        return (int(imap.untagged_responses["UIDVALIDITY"][-1]),
                int(imap.untagged_responses["HIGHESTMODSEQ"][-1]))

    def changedsince(self) -> None:
        """RFC 7162 §3.1.4: FETCH ... (CHANGEDSINCE m) after 100 changes (one set-up)."""
        changed, n_changed = self._changed()
        since: list[int] = []

        def setup() -> None:
            if not since:
                since.append(self._select_qresync()[1])
                ok(self.inbox(qresync=True).uid("STORE", changed, "+FLAGS.SILENT",
                                                r"(\Answered)"))

        def op() -> str:
            got = fetch_count(ok(self.inbox(qresync=True).uid(
                "FETCH", "1:*", f"(FLAGS) (CHANGEDSINCE {since[0]})")))
            if got != n_changed:
                raise OpFailed(f"{got} FETCH responses, expected {n_changed}")
            return f"{got} changed"

        self.measure("UID FETCH 1:* (FLAGS) (CHANGEDSINCE m), 100 changed", op, setup=setup)

    def qresync(self) -> None:
        """RFC 7162 §3.2.5: SELECT with QRESYNC after 100 flag changes, each round anew."""
        changed, n_changed = self._changed()
        state: dict[str, int] = {}
        # Flipped before each round: +, -, +, ... so each round changes the same 100.
        toggle = ["-FLAGS.SILENT"]

        def change_100() -> None:
            state["validity"], state["modseq"] = self._select_qresync()
            toggle[0] = "-FLAGS.SILENT" if toggle[0] == "+FLAGS.SILENT" else "+FLAGS.SILENT"
            imap = self.inbox(qresync=True)
            ok(imap.uid("STORE", changed, toggle[0], "($BenchToggle)"))
            ok(imap.close())

        def op() -> str:
            imap = self.client(qresync=True)
            ok(imap.select(f"INBOX (QRESYNC ({state['validity']} {state['modseq']}))"))
            got = len(imap.untagged_responses.get("FETCH", []))
            if got != n_changed:
                raise OpFailed(f"{got} FETCH responses, expected {n_changed}")
            return f"{got} changed"

        self.measure("SELECT INBOX (QRESYNC (v m)), 100 changed", op, setup=change_100)

    def append(self) -> None:
        """APPEND into a new mailbox each round; checked and deleted outside the timing."""
        boxes = iter(range(1, self.rounds + 1))
        box: list[str] = []

        def check_and_delete() -> None:
            if not box:
                return
            imap = self.client()
            if imap.state == "SELECTED":
                ok(imap.close())
            ok(imap.select(box[-1], readonly=True))
            exists = exists_of(imap)
            ok(imap.close())
            if exists != len(self.appends):
                raise OpFailed(f"{box[-1]} holds {exists}, expected {len(self.appends)}")
            ok(imap.delete(box.pop()))

        def create() -> None:
            check_and_delete()
            box.append(f"BenchAppend{next(boxes)}")
            ok(self.client().create(box[-1]))

        def op() -> str:
            imap = self.client()
            for data in self.appends:
                ok(imap.append(box[-1], None, None, data))
            return f"{len(self.appends)} appended"

        m = self.measure(f"APPEND {len(self.appends)} messages", op, setup=create)
        if not m.error:
            try:
                check_and_delete()
            except OP_ERRORS as exc:
                m.error = f"{type(exc).__name__}: {exc}"[:300]


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


@dataclass
class IdleResult:
    """Connections held in IDLE and the server's memory before and after (KiB)."""

    wanted: int
    held: int
    failed: int
    processes: int
    open_seconds: float
    rss_before_kib: int
    rss_after_kib: int
    pss_before_kib: int
    pss_after_kib: int
    first_error: str | None = None

    @property
    def rss_per_conn_kib(self) -> float:
        return (self.rss_after_kib - self.rss_before_kib) / max(self.held, 1)

    @property
    def pss_per_conn_kib(self) -> float:
        return (self.pss_after_kib - self.pss_before_kib) / max(self.held, 1)

    def to_dict(self) -> dict[str, object]:
        return {**dataclasses.asdict(self), "rss_per_conn_kib": self.rss_per_conn_kib,
                "pss_per_conn_kib": self.pss_per_conn_kib}


async def hold_idle(ep: Endpoint, count: int, settle: float = 3.0) -> IdleResult:
    """Open ``count`` connections in IDLE (RFC 2177), measure, close them.

    Each: LOGIN, SELECT INBOX, IDLE, up to 64 being set up at a time, from
    source addresses spread over 127.0.0.2-201 (against per-address limits).
    Memory is read ``settle`` seconds after the last one is in IDLE; a
    connection counts as held when the server has not closed it by then.
    """
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
    processes = ep.processes()
    after_rss, after_pss = memory_kib(processes)
    alive = sum(1 for r, w in held if not r.at_eof() and not w.is_closing())
    for _, w in held:
        with contextlib.suppress(OSError, RuntimeError):
            w.write(b"DONE\r\nd LOGOUT\r\n")
            w.close()
    await asyncio.gather(*(w.wait_closed() for _, w in held), return_exceptions=True)
    return IdleResult(count, alive, len(errors), len(processes), opened, before_rss, after_rss,
                      before_pss, after_pss,
                      f"{type(errors[0]).__name__}: {errors[0]}" if errors else None)


# --- running and printing --------------------------------------------------------------

def bench_server(name: str, start: Callable[[], Endpoint], corpus: Corpus, rounds: int,
                 appends: list[bytes], idle: int) -> Run | str:
    """Run everything against one server; a string saying why when it cannot be run."""
    try:
        ep = start()
    except NoIMAPServer as exc:
        return str(exc)
    except BenchError as exc:
        raise SystemExit(f"{name}: {exc}") from None
    try:
        print(f"{name}: IMAP on {ep.host}:{ep.port}, timing ...", file=sys.stderr)
        bench = Bench(ep, corpus, rounds, appends)
        try:
            run = bench.all_ops()
        except OP_ERRORS as exc:  # the warm-up: without the corpus there is nothing to time
            bench.drop()
            return f"{name}: cannot benchmark: {type(exc).__name__}: {exc}"
        print(f"{name}: {idle} IDLE connections ...", file=sys.stderr)
        try:
            run.memory = asyncio.run(hold_idle(ep, idle))
        except OP_ERRORS as exc:
            run.memory = f"{type(exc).__name__}: {exc}"
        return run
    finally:
        ep.stop()


def _fmt(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.4f}"


def _check(m: Measured | None) -> str | None:
    if m is None:
        return None
    return f"FAILED {m.error}" if m.error else m.check


@dataclass
class Row:
    """One operation on both servers: medians, the ratio Dovecot/kittiwake, the checks."""

    op: str
    kittiwake: float | None
    dovecot: float | None
    ratio: float | None
    kittiwake_rounds: list[float] | None
    dovecot_rounds: list[float] | None
    kittiwake_check: str | None
    dovecot_check: str | None
    kittiwake_exact: bool | None
    dovecot_exact: bool | None


def compare(kw: Run | str, dc: Run | str) -> list[Row]:
    measured = [r for r in (kw, dc) if isinstance(r, Run)]
    names = list(measured[0].ops) if measured else []
    rows = []
    for op in names:
        k = kw.ops.get(op) if isinstance(kw, Run) else None
        d = dc.ops.get(op) if isinstance(dc, Run) else None
        km, dm = (k.median if k else None), (d.median if d else None)
        rows.append(Row(op, km, dm, dm / km if km and dm else None,
                        k.seconds if k else None, d.seconds if d else None,
                        _check(k), _check(d), k.exact if k else None, d.exact if d else None))
    return rows


def targets(rows: list[Row], kw: Run) -> list[tuple[str, bool, str]]:
    """The issue's targets for kittiwake, each met or not, with what decided it."""
    out = []
    slow = [r.op for r in rows if r.ratio is None or r.ratio < 1.0]
    out.append(("every op at least as fast as Dovecot (ratio >= 1.0)", not slow,
                "not: " + ", ".join(slow) if slow else ""))
    bad = [r.op.split()[2] for r in rows if r.op.startswith("UID SEARCH")
           and (not r.kittiwake_exact or r.kittiwake is None or r.kittiwake >= SEARCH_LIMIT)]
    out.append((f"every SEARCH exact and under {SEARCH_LIMIT} s", not bad,
                "not: " + ", ".join(bad) if bad else ""))
    m = kw.memory
    if isinstance(m, IdleResult):
        out.append((f"{m.wanted} IDLE connections held", m.held == m.wanted, f"held {m.held}"))
    else:
        out.append(("IDLE connections held", False, f"failed: {m}"))
    return out


def memory_line(label: str, m: IdleResult | str) -> str:
    if isinstance(m, str):
        return f"{label}: IDLE connections failed: {m}"
    what = "server process" if label == "kittiwake" else f"{m.processes} imap processes summed"
    line = (f"{label}: {m.held}/{m.wanted} IDLE connections held (opened in"
            f" {m.open_seconds:.1f} s), {what} RSS {m.rss_before_kib / 1024:.1f} ->"
            f" {m.rss_after_kib / 1024:.1f} MiB = {m.rss_per_conn_kib:.1f} KiB per connection"
            f" (PSS {m.pss_per_conn_kib:.1f} KiB)")
    if m.failed:
        line += f"; {m.failed} failed, first: {m.first_error}"
    return line


def report(corpus: Corpus, size: int, kw: Run | str, dc: Run | str, quick: bool
           ) -> dict[str, object]:
    """Print the table, memory and targets; the same as a dict (for --json)."""
    rows = compare(kw, dc)
    places = ", ".join(f"{sum(1 for q in corpus.planted.values() if q is p)} {p}" for p in Place)
    print(f"IMAP benchmark ({'quick' if quick else 'full'} run): {corpus.count} messages"
          f" ({size / 2**20:.0f} MiB), marker {MARKER!r} in {corpus.hits} messages ({places}),"
          " median seconds of the rounds, loopback, one imaplib client")
    if isinstance(dc, str):
        print(dc if dc.startswith("Dovecot") else f"Dovecot: {dc}")
    width = max([len(r.op) for r in rows] + [10])
    kcol = max(11, len(kw) if isinstance(kw, str) else 0)
    print(f"{'operation':<{width}}  {'kittiwake s':>{kcol}}  {'Dovecot s':>9}  {'ratio':>6}  check")
    for i, r in enumerate(rows):
        kcell = (kw if i == 0 else "") if isinstance(kw, str) else _fmt(r.kittiwake)
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}"
        checks = [f"{who} {check}" for who, check in (("kittiwake", r.kittiwake_check),
                                                        ("Dovecot", r.dovecot_check)) if check]
        print(f"{r.op:<{width}}  {kcell:>{kcol}}  {_fmt(r.dovecot):>9}  {ratio:>6}  "
              + "; ".join(checks))
    kmem = kw.memory if isinstance(kw, Run) else None
    dmem = dc.memory if isinstance(dc, Run) else None
    for label, mem in (("kittiwake", kmem), ("Dovecot", dmem)):
        if mem is not None:
            print(memory_line(label, mem))
    met: list[tuple[str, bool, str]] = []
    if isinstance(kw, Run):
        met = targets(rows, kw)
        if isinstance(kmem, IdleResult) and isinstance(dmem, IdleResult) and (
                dmem.rss_per_conn_kib > 0):
            share = kmem.rss_per_conn_kib / dmem.rss_per_conn_kib
            met.append(("memory per IDLE connection at most a tenth of Dovecot's",
                        share <= 0.1, f"{share:.3f} of Dovecot's (RSS)"))
        print("targets:")
        for text, good, detail in met:
            print(f"  [{'met' if good else 'NOT met'}] {text}{': ' + detail if detail else ''}")
    memory = {label: mem.to_dict() if isinstance(mem, IdleResult) else mem
              for label, mem in (("kittiwake", kmem), ("dovecot", dmem))}
    return {"messages": corpus.count, "bytes": size, "marker": MARKER, "quick": quick,
            "kittiwake_unavailable": kw if isinstance(kw, str) else None,
            "dovecot_unavailable": dc if isinstance(dc, str) else None,
            "ops": [dataclasses.asdict(r) for r in rows], "memory": memory,
            "targets": [{"target": t, "met": g, "detail": d} for t, g, d in met]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="2,000 messages, 200 appends, 1,000/200 IDLE connections")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--messages", type=int, default=0, help="corpus size")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per operation (median)")
    parser.add_argument("--seed", type=int, default=1, help="corpus seed")
    parser.add_argument("--idle", type=int, default=0,
                        help="kittiwake's IDLE connections (default 10,000; quick 1,000)")
    parser.add_argument("--only", choices=("kittiwake", "dovecot"), default=None,
                        help="benchmark one server only")
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    args = parser.parse_args()
    count = args.messages or (2000 if args.quick else 20000)
    idle_kw = args.idle or (1000 if args.quick else 10000)
    idle_dc = 200 if args.quick else 500
    n_append = 200 if args.quick else 1000
    limit = raise_nofile(max(NOFILE, 2 * idle_kw + 1000))
    if limit < idle_kw + 100:
        raise SystemExit(f"RLIMIT_NOFILE is {limit}: too low for {idle_kw} connections")
    corpus = Corpus(count, seed=args.seed)
    appends = list(Corpus(n_append, seed=args.seed + 1000, hits=0).messages())
    if args.dir:
        Path(args.dir).mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="kw-bench-imap-", dir=args.dir))
    base.chmod(0o755)  # Dovecot's mail processes (nobody) must reach the corpus files
    try:
        print(f"writing {count} messages to {base / 'corpus'} ...", file=sys.stderr)
        size = corpus.write_maildir(base / "corpus")
        dc: Run | str = "not run (--only kittiwake)"
        kw: Run | str = "kittiwake: not run (--only dovecot)"
        if args.only != "kittiwake":
            dc = bench_server("Dovecot", lambda: start_dovecot(base / "corpus"), corpus,
                              args.rounds, appends, idle_dc)
        if args.only != "dovecot":
            kw = bench_server("kittiwake", lambda: start_kittiwake(base / "corpus", work=base),
                              corpus, args.rounds, appends, idle_kw)
        if args.json:
            with contextlib.redirect_stdout(io.StringIO()):
                out = report(corpus, size, kw, dc, args.quick)
            print(json.dumps(out, indent=2))
        else:
            report(corpus, size, kw, dc, args.quick)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
