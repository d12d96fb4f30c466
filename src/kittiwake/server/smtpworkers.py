"""SMTP on every core: worker processes serving the SMTP listeners (``smtp_processes``).

One Python process runs Python code on one core at a time. Profiled under
``bench.smtp_inbound``, the server's main thread held the GIL most of the
time, about 60% of it in per-session SMTP work (parsing commands, replies,
spooling, the event loop's I/O) and 20% in the MX checks (iprev, SPF, DKIM,
DMARC); the CPU pool (:mod:`kittiwake.cpupool`) only takes message-sized
work. So the SMTP sessions themselves run in several processes:

- The server process binds the listening sockets (as root, before it drops
  its privileges: :mod:`kittiwake.server.privileges`) and starts
  ``smtp_processes`` workers (:mod:`kittiwake.server.smtpworker`), fresh
  interpreters (``python -m``; never a fork of the threaded server), each
  inheriting the listening sockets of the SMTP services (port 25, 587, 465,
  and localserve's SMTP and submission ports) and one end of a socket pair,
  its channel
  (:mod:`kittiwake.server.workerrpc`). All of them accept from the same
  kernel socket: the kernel gives each connection to one process waiting in
  accept, no SO_REUSEPORT needed (which would also need every worker to bind
  the port, which they may not, and would strand the connections queued on a
  dead worker's socket).
- A worker runs the session, STARTTLS, spooling (into its own directory,
  ``spool/smtp-N/``), the DNSBL check and the MX checks. It asks the server
  for what must be shared: a connection slot per connection (per-IP and
  total limits, with IMAP and submission in the same count) with the
  connection rate in the same round trip, the message rate (a port 25
  connection's first message is counted in that round trip too: the worker
  holds its token for the first MAIL FROM, and the close note gives back one
  never used; later messages ask at MAIL FROM), and
  the **account writes** (:func:`kittiwake.smtpserver.pipeline.
  write_accounts`: queue, mailboxes with the junk decision, DSNs), so that
  per-account writes stay in one process (the store's group commit). The
  reply to the data is the server's answer, given after its commit: the
  promise of a 250 is unchanged.
- Submission (587 STARTTLS, 465 implicit TLS) runs in the workers too: the
  session, TLS, the sender checks (RFC 6409 §6.1), Message-ID/Date and the
  DKIM signing (see :mod:`kittiwake.smtpserver.submission` for why the
  worker signs rather than the server). **AUTH** is the server's: a worker
  holds no credentials and no login counts. It sends the client's SASL data
  (``auth`` with the mechanism, the initial response and the connection's
  TLS channel bindings; ``auth_step`` for each further response;
  ``auth_end`` when the session drops an exchange) and the server runs the
  exchange (:class:`kittiwake.smtpserver.auth.LocalExchange`: the store's
  credentials, then the one :class:`~kittiwake.limits.LoginLimiter` that
  IMAP and every listener share, its delay awaited in the server) and
  answers with an :class:`~kittiwake.smtpserver.auth.AuthStep` (challenge,
  ok with the account, failed, refused, malformed). Guesses spread over the
  workers are counted as if sent to one process. The queue write of a
  submitted message is an account write like the others (``write``).

What the server does for its workers: a worker that exits (crash, SIGKILL,
out of memory) is logged with its exit status and started again, at once if
it ran for a while and with a delay doubling from 1 s up to 30 s if it keeps
dying within 10 s; the connection slots and AUTH exchanges it held are
released, the deliveries it asked for finish, then its spool directory is
emptied (its sessions never got a 250 for those files). domains.conf
reloads, new certificates (SIGHUP, ACME renewals), SIGHUP's "read the DKIM
keys again" (``dkimkeys``) and ``kittiwake loglevels`` are sent to the
workers. ``kittiwake stop``/``restart``/SIGTERM stop the workers
gracefully (they stop accepting and let sessions finish within the grace
time; then SIGKILL); a restart keeps the listening sockets open, so
connections wait in the kernel's queue meanwhile. If the server is killed,
each worker sees its channel end and exits at once. Workers' counters reach
the server's /metrics summed (:mod:`kittiwake.metricsshare`); their log
lines go to the server's standard error, with the connection id.

The setting, ``smtp_processes`` in kittiwake.conf: ``auto`` (the default)
is the number of usable cores, so ``1`` on one core; ``1`` is the
single-process server (no workers, everything in the server process); ``N``
> 1 starts N workers and the server process accepts no SMTP connection
itself.

Why the server process does not accept too, and why one worker per core
(``bench.smtp_inbound --quick``, localserve, 10 KiB messages, one message
per connection, 20 sessions; 2 cores shared with other jobs at a load of 4
to 11, so CPU time per message of each process, not wall-clock, is the
figure; ms of CPU per message during the load, server + workers):

====================================  ===========  ===========
setting (2026-12-01, 2 cores)          load ~5       load ~10
====================================  ===========  ===========
1 (all in the server process)          2.83          4.80
2 workers, server accepts none         1.57 + 1.97   2.43 + 3.00
server accepts + 1 worker              -             3.18 + 1.37
server accepts + 2 workers             -             3.12 + 2.70
3 workers, server accepts none         -             3.17 + 4.43
====================================  ===========  ===========

The server process does what no worker can take for every message (the
store's commit, the search index, the junk filter, its share of the
channel): that is the serial part, about half of the single process's CPU
per message. A server that also accepts carries session work on top of it
(3.1-3.2 ms instead of 2.4 at the same load), so it accepts none. Two
workers on two cores plus the server: the workers together spend about as
much as the sessions did in one process plus the channel's cost (the total
per message is about a quarter higher than with 1); a third worker on two
cores only adds its own overhead. So ``auto`` is one worker per core, and
one core gets the single process. Expected on a quiet machine (the lead's
benchmark decides): the single process is bound by its one core (2.8 ms
per message, about 350 msg/s); with workers the server's serial part (1.5
ms, about 650 msg/s) and the two cores (3.5 ms of CPU per message over
two, about 570 msg/s) bound it, so about 1.6 times as much. Each worker
costs about 65 MiB peak RSS (a fresh interpreter with the SMTP modules).

The full MX path (``bench.smtp_inbound --mx-only --quick``, iprev, SPF,
DKIM, DMARC against bind9 + unbound, load ~9): 1 process 16.4 ms per
message (20 sessions) and 16.6 ms (100 sessions); 2 workers 8.9 + 10.7 ms
and 7.7 + 9.0 ms. There the server's serial part is larger (the junk
filter and the DMARC recorder run there for every MX message).

Submission in the workers (``bench.submission``: AUTH PLAIN, DKIM with
Ed25519 and RSA-2048, a remote recipient, so queued; 10 KiB, one message
per connection, 10 sessions, 200 messages; 2026-12-02, load 8-10, ms of
CPU per message; "loop" is the server's main thread, its event loop):

=====================  =============================  ================================
run                     before (all in the server)     2 workers: server + workers
=====================  =============================  ================================
587 STARTTLS            13.2, 17.2 (loop 7.2)          6.8 + 6.4, 7.5 + 7.1 (loop 1.6)
465 implicit TLS        10.9, 11.8, 16.7 (loop 6.9)    7.3 + 7.5, 9.8 + 9.8 (loop 2.1)
=====================  =============================  ================================

What stays in the server per submitted message: the queue write (its
commit) and the AUTH exchange, whose PLAIN check derives the SCRAM key
(PBKDF2-SHA-256, 10,000 rounds: 3.5 ms of CPU) in a worker thread; hashlib
releases the GIL there, so it runs beside the event loop, not in the serial
part. The server's event loop went from about 7 ms to about 2 ms per
message; the total grew by the channel's share and the second process's
own overhead, as for MX mail. Giving the workers the stored credentials
instead would move the 3.5 ms too, but the workers would then hold every
account's password-equivalent keys (CRAM-MD5's), and the limiter's verdict
and the check would happen in different processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kittiwake import log, metrics, metricsshare
from kittiwake.limits import Refusal
from kittiwake.listener import INHERIT_ENV, SOCKETS
from kittiwake.server.smtpworker import ListenerSpec, WorkerSpec
from kittiwake.server.workerrpc import Channel

if TYPE_CHECKING:
    from kittiwake.server.tls import CertificateFiles, ServerTLS
    from kittiwake.smtp import Reply
    from kittiwake.smtpserver.auth import AuthStep, LocalExchange
    from kittiwake.smtpserver.context import ServerContext
    from kittiwake.smtpserver.pipeline import AccountWrites
    from kittiwake.smtpserver.service import Held

logger = log.get_logger("server")

AUTO = "auto"
PROCESSES_ENV = "KITTIWAKE_SMTP_PROCESSES"
MAX_PROCESSES = 64
START_TIMEOUT = 30.0     # seconds for a new worker to say it is ready
SHORT_LIFE = 10.0        # a worker that dies younger than this is restarted with a delay
MAX_RESTART_DELAY = 30.0
KILL_AFTER = 5.0         # seconds past the grace time before a stopping worker is killed
MAX_EXCHANGES = 10_000   # AUTH exchanges in progress per worker (a 334 awaiting its answer)

WORKERS = metrics.gauge("smtp_workers", "SMTP worker processes running (smtp_processes)")
WORKER_RESTARTS = metrics.counter(
    "smtp_worker_restarts", "SMTP worker processes started again after one exited unasked")


def process_count(setting: str | int, cores: int | None = None) -> int:
    """Processes serving SMTP for ``smtp_processes``: ``auto`` is the usable cores.

    The environment variable ``KITTIWAKE_SMTP_PROCESSES`` (an integer from 1 to
    64; benchmarks, debugging) overrides the setting; another value is ignored
    with a warning."""
    text = os.environ.get(PROCESSES_ENV, "").strip()
    if text:
        if text.isdigit() and 1 <= int(text) <= MAX_PROCESSES:
            return int(text)
        logger.warning("ignoring invalid process count", variable=PROCESSES_ENV, value=text,
                       expected=f"an integer from 1 to {MAX_PROCESSES}")
    if setting == AUTO:
        if cores is None:
            try:
                cores = len(os.sched_getaffinity(0))
            except (AttributeError, OSError):
                cores = os.cpu_count() or 1
        return max(1, min(MAX_PROCESSES, cores))
    return int(setting)


def clean_worker_spools(spool_root: Path) -> int:
    """At start: remove the spool directories workers left (a crash of the server, or a
    larger ``smtp_processes`` before) with their files, never acknowledged; how many
    files."""
    from kittiwake.smtpserver.spool import clean_spool

    removed = 0
    for stale in spool_root.glob("smtp-*"):
        if stale.is_dir():
            removed += clean_spool(stale)
            with contextlib.suppress(OSError):
                stale.rmdir()
    return removed


class WorkerListener:
    """The server process's side of an SMTP service its workers serve: the sockets."""

    def __init__(self, workers: SMTPWorkers, listener: str, kind: str, ips: list[str],
                 port: int, backlog: int) -> None:
        self.name = kind
        self.workers = workers
        self.listener = listener
        self.ips = ips
        self.port = port
        self.backlog = backlog
        self.sockets: list[tuple[str, int, socket.socket]] = []
        self._bound: list[str] = []

    async def start(self) -> None:
        if self.name == "submissions" and self.workers.contexts[self.listener].tls_context is None:
            raise OSError("submissions needs TLS certificates on the listener")
        for ip in self.ips:
            sock = SOCKETS.socket(ip, self.port, self.backlog)
            host, port = sock.getsockname()[:2]
            self.sockets.append((ip, int(port), sock))
            self._bound.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")

    async def close(self, grace: float) -> None:
        await self.workers.stop(grace)
        for ip, port, _sock in self.sockets:
            SOCKETS.release(ip, port)
        self.sockets.clear()

    def addresses(self) -> list[str]:
        return list(self._bound)

    def open_sessions(self) -> int:
        return self.workers.open_sessions((self.listener, self.name))


@dataclass
class WorkerProcess:
    """One running (or starting) worker, as the server sees it."""

    index: int
    spool_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    channel: Channel | None = None
    slots: dict[int, Held] = field(default_factory=dict)
    services: dict[int, tuple[str, str]] = field(default_factory=dict)  # slot: listener, kind
    # Connections holding a message-rate token taken at open: slot -> (listener, ip).
    tokens: dict[int, tuple[str, str]] = field(default_factory=dict)
    exchanges: dict[int, LocalExchange] = field(default_factory=dict)  # AUTH going on
    ready: asyncio.Future[int] | None = None
    started: float = 0.0
    delay: float = 0.0  # before the next restart

    @property
    def name(self) -> str:
        return f"smtp{self.index}"


class SMTPWorkers:
    """Starts, watches, restarts and stops the SMTP worker processes; answers them."""

    def __init__(self, count: int, *, data_dir: Path, config_dir: Path, static: Any,
                 domains: Callable[[], Any], localserve: bool,
                 tls: Callable[[str], ServerTLS | None]) -> None:
        self.count = count
        self.data_dir = data_dir
        self.config_dir = config_dir
        self.static = static
        self.domains = domains
        self.localserve = localserve
        self.tls = tls
        self.listeners: list[WorkerListener] = []
        self.contexts: dict[str, ServerContext] = {}
        self.workers: list[WorkerProcess] = []
        self.shared = metricsshare.Shared()
        self.retired_today: tuple[Any, dict[str, int]] = (None, {})
        self.today: dict[str, dict[str, int]] = {}
        self._ids = itertools.count(1)
        self._watchers: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._stop_task: asyncio.Task[None] | None = None

    @property
    def spool_root(self) -> Path:
        return self.data_dir / "spool"

    def listener(self, ctx: ServerContext, listener: str, kind: str, ips: list[str],
                 port: int) -> WorkerListener:
        """The service standing for ``kind`` of ``listener`` in the server process."""
        self.contexts[listener] = ctx
        service = WorkerListener(self, listener, kind, ips, port, ctx.limits.listen_backlog)
        self.listeners.append(service)
        return service

    # --- life cycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Start every worker (after the listeners bound their sockets); RuntimeError
        naming the problem when one does not start."""
        if not self.listeners:
            return  # no smtp service in the config: nothing for workers to serve
        metricsshare.SHARED = self.shared
        metricsshare.REFRESH = self.refresh_metrics
        for name in {wl.listener for wl in self.listeners}:
            tls = self.tls(name)
            if tls is not None:
                tls.on_update.append(self._certificates_changed(name))
        self.workers = [WorkerProcess(i, self.spool_root / f"smtp-{i}")
                        for i in range(1, self.count + 1)]
        try:
            await asyncio.gather(*(self._spawn(w) for w in self.workers))
        except Exception:
            await self.stop(0)
            raise
        logger.info("smtp workers started", workers=self.count,
                    pids=",".join(str(w.proc.pid) for w in self.workers if w.proc))

    def _spec(self, worker: WorkerProcess) -> WorkerSpec:
        specs: dict[tuple[str, str], ListenerSpec] = {}
        for wl in self.listeners:
            ctx = self.contexts[wl.listener]
            spec = specs.get((wl.listener, wl.name))
            if spec is None:
                tls = self.tls(wl.listener)
                spec = specs[(wl.listener, wl.name)] = ListenerSpec(
                    name=wl.listener, kind=wl.name, sockets=[], hostname=ctx.hostname,
                    listener=ctx.listener, limits=ctx.limits,
                    certificates=tls.certificates if tls else None,
                    min_version=tls.min_version if tls else "TLSv1.2")
            spec.sockets.extend((ip, port) for ip, port, _ in wl.sockets)
        return WorkerSpec(
            index=worker.index, listeners=list(specs.values()), domains=self.domains(),
            data_dir=self.data_dir, config_dir=self.config_dir, spool_dir=worker.spool_dir,
            postmaster_account=self.static.postmaster_account, localserve=self.localserve,
            resolvers=[str(r) for r in self.static.dns.resolvers],
            log_levels=log.current_levels(), log_format=str(self.static.log.format))

    async def _spawn(self, worker: WorkerProcess) -> None:
        """Start ``worker``'s process and wait until it accepts."""
        worker.spool_dir.mkdir(parents=True, exist_ok=True)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        listening = [(ip, port, sock) for wl in self.listeners for ip, port, sock in wl.sockets]
        env = {**os.environ,
               INHERIT_ENV: ";".join(f"{ip},{port},{sock.fileno()}"
                                     for ip, port, sock in listening)}
        try:
            worker.proc = subprocess.Popen(
                [sys.executable, "-m", "kittiwake.server.smtpworker", str(theirs.fileno())],
                pass_fds=[theirs.fileno(), *(sock.fileno() for _, _, sock in listening)],
                env=env, stdin=subprocess.DEVNULL)
        finally:
            theirs.close()
        worker.started = time.monotonic()
        ours.setblocking(False)
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        loop = asyncio.get_running_loop()
        worker.ready = loop.create_future()
        worker.channel = Channel(reader, writer, self._handlers(worker), name=worker.name)
        watcher = loop.create_task(self._watch(worker))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        worker.channel.note("init", self._spec(worker))
        try:
            pid = await asyncio.wait_for(asyncio.shield(worker.ready), START_TIMEOUT)
        except TimeoutError:
            worker.proc.kill()
            raise RuntimeError(f"smtp worker {worker.name} did not start within"
                               f" {START_TIMEOUT:g} s") from None
        WORKERS.inc()
        logger.info("smtp worker ready", worker=worker.name, pid=pid)

    async def _watch(self, worker: WorkerProcess) -> None:
        """Until ``worker`` exits: serve its channel; then clean up and start it again."""
        assert worker.channel is not None and worker.proc is not None
        channel, proc = worker.channel, worker.proc
        await channel.run()
        was_ready = worker.ready is not None and worker.ready.done() and \
            not worker.ready.exception()
        if worker.ready is not None and not worker.ready.done():
            worker.ready.set_exception(RuntimeError(
                f"smtp worker {worker.name} exited before it was ready"))
        for slot in worker.slots.values():
            slot.release()
        worker.slots.clear()
        worker.services.clear()
        worker.tokens.clear()  # (the messages of a killed worker's connections stay counted)
        worker.exchanges.clear()
        self.shared.retire(worker.name)
        self._retire_today(worker.name)
        await channel.wait_handlers(timeout=120)  # deliveries it asked for finish first
        try:
            code = await asyncio.to_thread(proc.wait, KILL_AFTER)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = await asyncio.to_thread(proc.wait)
        if was_ready:
            WORKERS.dec()
        removed = self._clean_spool(worker.spool_dir)
        if self._stopping:
            with contextlib.suppress(OSError):
                worker.spool_dir.rmdir()
            logger.info("smtp worker stopped", worker=worker.name, pid=proc.pid, status=code)
            return
        lived = time.monotonic() - worker.started
        worker.delay = 0.5 if lived >= SHORT_LIFE else \
            min(MAX_RESTART_DELAY, max(1.0, worker.delay * 2))
        logger.error("smtp worker exited; starting it again", worker=worker.name, pid=proc.pid,
                     status=_status(code), lived_seconds=round(lived, 1),
                     spool_files_removed=removed, restart_in_seconds=worker.delay)
        if not was_ready:
            return  # a worker that never started: its starter reports the error
        WORKER_RESTARTS.inc()
        while not self._stopping:
            await asyncio.sleep(worker.delay)
            if self._stopping:
                return
            try:
                await self._spawn(worker)
                return
            except Exception as exc:
                worker.delay = min(MAX_RESTART_DELAY, max(1.0, worker.delay * 2))
                logger.error("smtp worker did not start again", worker=worker.name,
                             error=str(exc), restart_in_seconds=worker.delay)

    @staticmethod
    def _clean_spool(directory: Path) -> int:
        from kittiwake.smtpserver.spool import clean_spool

        return clean_spool(directory)

    async def stop(self, grace: float) -> None:
        """Stop every worker gracefully (idempotent; every caller waits for it)."""
        if self._stop_task is None:
            self._stop_task = asyncio.get_running_loop().create_task(self._stop(grace))
        await asyncio.shield(self._stop_task)

    async def _stop(self, grace: float) -> None:
        self._stopping = True
        for worker in self.workers:
            if worker.channel is not None and not worker.channel.closed:
                with contextlib.suppress(ConnectionError):
                    worker.channel.note("stop", grace)
        for worker in self.workers:  # started while the start was cancelled
            if worker.channel is None and worker.proc is not None and worker.proc.poll() is None:
                worker.proc.kill()
                await asyncio.to_thread(worker.proc.wait)
        watchers = list(self._watchers)
        if watchers:
            _done, pending = await asyncio.wait(watchers, timeout=grace + KILL_AFTER)
            if pending:
                for worker in self.workers:
                    if worker.proc is not None and worker.proc.poll() is None:
                        logger.warning("smtp worker did not stop in time, killing it",
                                       worker=worker.name, pid=worker.proc.pid)
                        worker.proc.kill()
                await asyncio.wait(pending, timeout=KILL_AFTER + 5)
        WORKERS.set(0)
        metricsshare.REFRESH = None

    # --- what the server tells the workers -------------------------------------------

    def broadcast(self, name: str, *args: Any) -> None:
        for worker in self.workers:
            if worker.channel is not None and not worker.channel.closed:
                with contextlib.suppress(ConnectionError):
                    worker.channel.note(name, *args)

    def _certificates_changed(self, listener: str) -> Callable[[list[CertificateFiles]], None]:
        loop = asyncio.get_running_loop()

        def changed(certificates: list[CertificateFiles]) -> None:
            # ServerTLS.update runs in a worker thread: hand over to the loop.
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(self.broadcast, "tls", listener, certificates)
        return changed

    # --- what the workers ask ----------------------------------------------------------

    def _handlers(self, worker: WorkerProcess) -> dict[str, Callable[..., Any]]:
        def ready(pid: int) -> None:
            if worker.ready is not None and not worker.ready.done():
                worker.ready.set_result(pid)

        def failed(message: str) -> None:
            if worker.ready is not None and not worker.ready.done():
                worker.ready.set_exception(RuntimeError(f"smtp worker: {message}"))

        def open_(listener: str, ip: str, kind: str = "smtp"
                  ) -> tuple[int | None, str | None, bool, bool]:
            """A connection slot, the connection rate and, on port 25, the message rate
            for its first message (a token the worker uses at its first MAIL FROM: one
            round trip per connection fewer, for the MX's usual one message each)."""
            ctx = self.contexts[listener]
            got = ctx.connections.acquire(ip)
            if isinstance(got, Refusal):
                return None, str(got), True, False
            ident = next(self._ids)
            worker.slots[ident] = got
            worker.services[ident] = (listener, kind)
            admitted = ctx.connection_rate.take(ip)
            token = admitted and kind == "smtp" and ctx.message_rate.take(ip)
            if token:
                worker.tokens[ident] = (listener, ip)
            return ident, None, admitted, token

        def close(ident: int, token_unused: bool = False) -> None:
            slot = worker.slots.pop(ident, None)
            worker.services.pop(ident, None)
            held = worker.tokens.pop(ident, None)
            if held is not None and token_unused:  # no message came: not one to count
                listener, ip = held
                self.contexts[listener].message_rate.give_back(ip)
            if slot is not None:
                slot.release()

        def rate(listener: str, ip: str) -> bool:
            return self.contexts[listener].message_rate.take(ip)

        async def write(listener: str, writes: AccountWrites, service: str = "smtp") -> Reply:
            from kittiwake.smtpserver.pipeline import write_accounts

            with log.bind(cid=writes.session_id, service=service, worker=worker.name):
                return await write_accounts(self.contexts[listener], writes,
                                            log.get_logger("smtpserver"))

        def dmarc(listener: str, result: Any, spf: Any, dkim: list[Any], ip: str,
                  mailfrom: str, recipient_domain: str) -> None:
            recorder = self.contexts[listener].dmarc_recorder
            if recorder is not None:
                recorder.record(result, spf, dkim, ip=ip, mailfrom=mailfrom,
                                recipient_domain=recipient_domain)

        async def auth(listener: str, ip: str, mechanism: str, channel_bindings: tuple[Any, ...],
                       initial: bytes | None) -> tuple[int | None, AuthStep]:
            from kittiwake.smtpserver.auth import LocalExchange

            exchange = LocalExchange(self.contexts[listener], ip, mechanism,
                                     tuple(channel_bindings))
            step = await exchange.start(initial)
            if step.final:
                return None, step
            ident = next(self._ids)
            if len(worker.exchanges) >= MAX_EXCHANGES:  # sessions that never finish
                worker.exchanges.pop(next(iter(worker.exchanges))).close()
            worker.exchanges[ident] = exchange
            return ident, step

        async def auth_step(ident: int, data: bytes) -> AuthStep:
            from kittiwake.smtpserver.auth import AuthStep

            exchange = worker.exchanges.get(ident)
            if exchange is None:  # dropped (too many at once)
                return AuthStep("malformed")
            step = await exchange.step(data)
            if step.final:
                worker.exchanges.pop(ident, None)
            return step

        def auth_end(ident: int) -> None:
            exchange = worker.exchanges.pop(ident, None)
            if exchange is not None:
                exchange.close()

        def shipped(values: metricsshare.Snapshot, today: dict[str, int]) -> None:
            self.shared.update(worker.name, values)
            self.today[worker.name] = today

        return {"ready": ready, "failed": failed, "open": open_, "close": close,
                "rate": rate, "write": write, "dmarc": dmarc, "metrics": shipped,
                "auth": auth, "auth_step": auth_step, "auth_end": auth_end}

    # --- figures ---------------------------------------------------------------------

    async def refresh_metrics(self, timeout: float = 1.0) -> None:
        """Fetch every ready worker's counts now (a scrape of /metrics)."""
        async def one(worker: WorkerProcess) -> None:
            assert worker.channel is not None
            with contextlib.suppress(Exception):
                values, today = await asyncio.wait_for(worker.channel.call("snapshot"),
                                                       timeout)
                if not worker.channel.closed:
                    self.shared.update(worker.name, values)
                    self.today[worker.name] = today

        await asyncio.gather(*(one(w) for w in self.workers if w.channel is not None
                               and not w.channel.closed and w.ready is not None
                               and w.ready.done() and not w.ready.exception()))

    def _retire_today(self, name: str) -> None:
        day = datetime.now(UTC).date()
        kept_day, kept = self.retired_today
        if kept_day != day:
            kept = {}
        for key, n in self.today.pop(name, {}).items():
            kept[key] = kept.get(key, 0) + n
        self.retired_today = (day, kept)

    def received_today(self) -> dict[str, int]:
        """Messages the workers received today, by service (for ``kittiwake status``)."""
        day, kept = self.retired_today
        out = dict(kept) if day == datetime.now(UTC).date() else {}
        for counts in self.today.values():
            for key, n in counts.items():
                out[key] = out.get(key, 0) + n
        return out

    def open_sessions(self, service: tuple[str, str] | None = None) -> int:
        """Sessions the workers serve: all, or those of one (listener, kind)."""
        if service is None:
            return sum(len(w.slots) for w in self.workers)
        return sum(1 for w in self.workers for held in w.services.values() if held == service)

    def pids(self) -> list[int]:
        return [w.proc.pid for w in self.workers if w.proc is not None and
                w.proc.poll() is None]


def _status(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return signal.Signals(-code).name
        return f"signal {-code}"
    return f"exit {code}"
