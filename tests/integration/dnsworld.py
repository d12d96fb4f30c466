"""A private DNSSEC world on loopback: authoritative bind9 plus a validating unbound.

Tests that need real DNS (DNSSEC ``authentic`` flags, extended DNS errors of
RFC 8914, real wire formats) build a :class:`DNSWorld`, add records, start it,
and point kittiwake at ``world.resolver`` (``KITTIWAKE_DNS``)::

    world = DNSWorld()
    world.add("signed.test", "_dmarc", "TXT", '"v=DMARC1; p=reject"')
    world.add("mx.signed.test", "A", "127.0.0.1")          # full-name form
    with world:                                             # start() ... stop()
        resolver = world.stub_resolver()
        subprocess.run([...], env=world.env)               # KITTIWAKE_DNS set

The zones (all served by one ``named`` on 127.0.0.1 and an ephemeral port):

- ``test.``: a private root-like zone, DNSSEC-signed; its DS is the trust
  anchor of the validating ``unbound``.
- ``signed.test``: signed, with its DS in ``test.`` (answers are authentic).
- ``unsigned.test``: delegated without a DS (insecure: answers not authentic).
- ``bogus.test``: signed, DS in ``test.``, but every signature expired a week
  ago (RFC 4035 §5.3.1): unbound answers SERVFAIL with EDE 7 "Signature
  Expired" (RFC 8914 §4.8).
- ``127.in-addr.arpa``: signed reverse zone with its own trust anchor, for PTR
  records of loopback addresses (:meth:`DNSWorld.add_ptr`).

More zones: :meth:`DNSWorld.add_zone`. Children are signed first and their
DS sets appended to their parent before the parent is signed (RFC 4035 §2.4).
Unbound gets a stub-zone for every zone, so it never follows a delegation to
port 53, and refuses every name outside the world, so nothing leaves the
machine.

Needs Debian's bind9 (``named``), bind9-utils (``dnssec-keygen``,
``dnssec-signzone``) and unbound. When one is missing, :meth:`DNSWorld.start`
raises :class:`DNSWorldError` (a test failure, never a skip).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode

from kittiwake.dns import Nameserver, StubResolver

from . import loopback

ROOT = "test"
REVERSE_V4 = "127.in-addr.arpa"
REVERSE_V6 = ipaddress.ip_address("::1").reverse_pointer  # on demand (add_ptr)
SIGNED, UNSIGNED, BOGUS = "signed", "unsigned", "bogus"
MODES = (SIGNED, UNSIGNED, BOGUS)
DEFAULT_TTL = 60
# A bogus zone's signatures: valid from 30 days ago until 7 days ago. Unbound
# tolerates a little clock skew (at most a day), a week is far beyond it.
BOGUS_VALIDITY = ("now-2592000", "now-604800")
START_TIMEOUT = 15.0
TOOLS = ("named", "unbound", "dnssec-keygen", "dnssec-signzone")
TOOL_PACKAGES = {"named": "bind9", "unbound": "unbound", "dnssec-keygen": "bind9-utils",
                 "dnssec-signzone": "bind9-utils"}


class DNSWorldError(RuntimeError):
    """The world could not be built or started; the message carries the servers' logs."""


@dataclass
class Zone:
    """One zone of the world and the records tests added to it."""

    name: str  # no trailing dot, lower case
    mode: str  # SIGNED, UNSIGNED or BOGUS
    records: list[tuple[str, int, str, str]] = field(default_factory=list)  # fqdn, ttl, type, rdata

    @property
    def signed(self) -> bool:
        return self.mode in (SIGNED, BOGUS)


def _norm(name: str) -> str:
    return name.strip().rstrip(".").lower()


def _is_within(name: str, zone: str) -> bool:
    return name == zone or name.endswith("." + zone)


def quote_txt(text: str) -> str:
    """TXT presentation form: quoted strings of at most 255 octets (RFC 1035 §3.3.14)."""
    data = text.encode("utf-8")
    chunks = [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
    out = []
    for chunk in chunks:
        escaped = "".join(
            "\\" + chr(b) if b in (0x22, 0x5C) else chr(b) if 0x20 <= b < 0x7F else f"\\{b:03d}"
            for b in chunk
        )
        out.append(f'"{escaped}"')
    return " ".join(out)


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (named and unbound need both)."""
    try:
        return loopback.free_port("127.0.0.1", udp=True)
    except RuntimeError as exc:
        raise DNSWorldError(str(exc)) from None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Kill the server when the test process dies, even by SIGKILL (prctl PR_SET_PDEATHSIG)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


class DNSWorld:
    """Authoritative bind9 with signed, unsigned and bogus zones, and a validating unbound.

    Add records before :meth:`start`; afterwards the zones are fixed.
    """

    def __init__(self, *, ttl: int = DEFAULT_TTL, keep_dir: bool = False) -> None:
        self.ttl = ttl
        self.keep_dir = keep_dir or bool(os.environ.get("KITTIWAKE_KEEP_DNSWORLD"))
        self.zones: dict[str, Zone] = {}
        for name, mode in ((ROOT, SIGNED), (f"signed.{ROOT}", SIGNED),
                           (f"unsigned.{ROOT}", UNSIGNED), (f"bogus.{ROOT}", BOGUS),
                           (REVERSE_V4, SIGNED)):
            self.zones[name] = Zone(name, mode)
        self.dir: Path | None = None
        self.named_port = 0
        self.unbound_port = 0
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._started = False
        self._finalizer: weakref.finalize | None = None

    # -- building -----------------------------------------------------------

    def add_zone(self, name: str, mode: str = SIGNED) -> Zone:
        """Add a zone (e.g. ``"other.test"`` or a child of another zone).

        ``mode`` is ``"signed"``, ``"unsigned"`` (no DS in the parent) or
        ``"bogus"`` (signed with expired signatures). A zone not below any
        world zone becomes a top zone with its own trust anchor when signed.
        """
        self._check_not_started()
        zone = _norm(name)
        if mode not in MODES:
            raise ValueError(f"zone mode must be one of {MODES}, not {mode!r}")
        if zone in self.zones:
            raise ValueError(f"zone {zone!r} exists already")
        if not zone:
            raise ValueError("the root zone cannot be served")
        self.zones[zone] = Zone(zone, mode)
        return self.zones[zone]

    def add(self, *args: str, ttl: int | None = None) -> None:
        """Add one record before start.

        ``add(zone, owner, type, rdata)``: ``owner`` relative to ``zone``
        (``"@"`` or ``""`` for the apex) or absolute with a trailing dot.
        ``add(fqdn, type, rdata)``: the record goes into the deepest zone that
        contains ``fqdn``.

        ``rdata`` is in zone-file presentation form (``"10 mx.signed.test."``;
        names without a trailing dot are relative to the zone). TXT values
        that do not start with a quote are quoted and split into 255-octet
        strings for you.
        """
        self._check_not_started()
        if len(args) == 4:
            zone_name, owner, rtype, rdata = args
            zone = self._zone(zone_name)
            owner = owner.strip()
            if owner in ("", "@"):
                fqdn = zone.name
            elif owner.endswith("."):
                fqdn = _norm(owner)
            else:
                fqdn = _norm(f"{owner}.{zone.name}")
            if not _is_within(fqdn, zone.name):
                raise ValueError(f"{fqdn!r} is not inside zone {zone.name!r}")
            deepest = self.zone_for(fqdn)
            if deepest is not zone:
                raise ValueError(
                    f"{fqdn!r} is inside the child zone {deepest.name!r}; add it there"
                )
        elif len(args) == 3:
            fqdn, rtype, rdata = _norm(args[0]), args[1], args[2]
            zone = self.zone_for(fqdn)
        else:
            raise TypeError("add(zone, owner, type, rdata) or add(fqdn, type, rdata)")
        rtype = rtype.strip().upper()
        if not rtype.isalnum():
            raise ValueError(f"bad record type {rtype!r}")
        if rtype in ("TXT", "SPF") and not rdata.lstrip().startswith('"'):
            rdata = quote_txt(rdata)
        if rtype == "CNAME" and fqdn == zone.name:
            raise ValueError("a CNAME cannot be at a zone apex (RFC 1034 §3.6.2)")
        zone.records.append((fqdn, self.ttl if ttl is None else ttl, rtype, rdata))

    def add_ptr(self, ip: str, target: str, ttl: int | None = None) -> None:
        """A PTR record for a loopback address (127.0.0.0/8, or ::1 whose signed reverse
        zone, its own top zone, is made on first use) pointing at ``target``."""
        address = ipaddress.ip_address(ip)
        if isinstance(address, ipaddress.IPv6Address) and address.is_loopback:
            if REVERSE_V6 not in self.zones:
                self.add_zone(REVERSE_V6, SIGNED)
        elif not (isinstance(address, ipaddress.IPv4Address) and address.is_loopback):
            raise ValueError(f"{ip}: only 127.0.0.0/8 and ::1 have a reverse zone in the world")
        self.add(address.reverse_pointer, "PTR", _norm(target) + ".", ttl=ttl)

    def zone_for(self, name: str) -> Zone:
        """The deepest world zone that contains ``name``."""
        fqdn = _norm(name)
        best: Zone | None = None
        for zone in self.zones.values():
            if _is_within(fqdn, zone.name) and (best is None or len(zone.name) > len(best.name)):
                best = zone
        if best is None:
            known = ", ".join(sorted(self.zones))
            raise ValueError(f"{fqdn!r} is in no zone of the world (zones: {known})")
        return best

    def _zone(self, name: str) -> Zone:
        zone = self.zones.get(_norm(name))
        if zone is None:
            known = ", ".join(sorted(self.zones))
            raise ValueError(f"no zone {name!r} in the world (zones: {known})")
        return zone

    def _check_not_started(self) -> None:
        if self._started:
            raise RuntimeError("the DNS world is running: add records before start()")

    def _parent(self, zone: Zone) -> Zone | None:
        parent: Zone | None = None
        for other in self.zones.values():
            if other is not zone and zone.name.endswith("." + other.name) and (
                    parent is None or len(other.name) > len(parent.name)):
                parent = other
        return parent

    # -- running ------------------------------------------------------------

    @property
    def resolver(self) -> tuple[str, int]:
        """(host, port) of the validating unbound."""
        self._check_running()
        return ("127.0.0.1", self.unbound_port)

    @property
    def authoritative(self) -> tuple[str, int]:
        """(host, port) of named, the authoritative server of every zone."""
        self._check_running()
        return ("127.0.0.1", self.named_port)

    @property
    def dns_spec(self) -> str:
        """The value for ``KITTIWAKE_DNS``: ``127.0.0.1:PORT`` of unbound."""
        host, port = self.resolver
        return f"{host}:{port}"

    @property
    def env(self) -> dict[str, str]:
        """The current environment plus ``KITTIWAKE_DNS`` pointing at unbound, for subprocesses."""
        return {**os.environ, "KITTIWAKE_DNS": self.dns_spec}

    @property
    def trust_anchor_files(self) -> list[Path]:
        """DS sets of the top zones (``test.`` first), as given to unbound (after start)."""
        if self.dir is None:
            raise RuntimeError("the DNS world has not been started")
        return [self.dir / "anchors" / f"{z.name}.ds" for z in self._top_zones() if z.signed]

    def stub_resolver(self, timeout: float = 3.0) -> StubResolver:
        """A :class:`kittiwake.dns.StubResolver` asking unbound."""
        host, port = self.resolver
        return StubResolver([Nameserver(host, port)], timeout=timeout)

    def dig(self, *args: str) -> str:
        """Run ``dig @unbound -p PORT ARGS...`` (e.g. ``"+dnssec", NAME, "TXT"``); its stdout."""
        dig = shutil.which("dig")
        if dig is None:
            raise DNSWorldError("dig is missing: install the Debian package bind9-dnsutils")
        host, port = self.resolver
        result = subprocess.run([dig, f"@{host}", "-p", str(port), *args], capture_output=True,
                                text=True, timeout=30, check=False)
        return result.stdout

    def logs(self) -> str:
        """Both servers' output so far."""
        if self.dir is None:
            return ""
        parts = []
        for name in ("named", "unbound"):
            path = self.dir / f"{name}.log"
            text = path.read_text(errors="replace") if path.exists() else "(no log)"
            parts.append(f"----- {name} log ({path}) -----\n{text.rstrip()}")
        return "\n".join(parts)

    def start(self) -> DNSWorld:
        """Sign the zones, start named and unbound, and wait until unbound validates."""
        if self._started:
            raise RuntimeError("the DNS world is already running")
        missing = [t for t in TOOLS if shutil.which(t, path=_sbin_path()) is None]
        if missing:
            pkgs = sorted({TOOL_PACKAGES.get(t, t) for t in missing})
            raise DNSWorldError(
                f"DNS world needs {', '.join(missing)}: install the Debian packages "
                f"{' '.join(pkgs)} (.ci/run installs them)"
            )
        self.dir = Path(tempfile.mkdtemp(prefix="kittiwake-dnsworld-"))
        self._started = True
        self._finalizer = weakref.finalize(self, _cleanup, self._procs, self.dir, self.keep_dir)
        atexit.register(self._finalizer)
        try:
            self._build()
            self._launch()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop both servers and remove the temporary directory."""
        if self._finalizer is not None:
            self._finalizer()
            atexit.unregister(self._finalizer)
            self._finalizer = None
        self._started = False

    def __enter__(self) -> DNSWorld:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _check_running(self) -> None:
        if not self._procs:
            raise RuntimeError("the DNS world is not running: call start() first")
        dead = [f"{name} (status {p.returncode})" for name, p in self._procs.items()
                if p.poll() is not None]
        if dead:
            raise DNSWorldError(f"DNS world server exited: {', '.join(dead)}\n{self.logs()}")

    # -- internals ----------------------------------------------------------

    def _top_zones(self) -> list[Zone]:
        tops = [z for z in self.zones.values() if self._parent(z) is None]
        return sorted(tops, key=lambda z: (z.name != ROOT, z.name))

    def _run(self, *cmd: str) -> str:
        result = subprocess.run(cmd, capture_output=True, text=True, env=_tool_env(),
                                cwd=self.dir, timeout=60)
        if result.returncode != 0:
            raise DNSWorldError(
                f"{' '.join(cmd)} failed with status {result.returncode}:\n"
                f"{result.stderr.strip()}\n{result.stdout.strip()}"
            )
        return result.stdout

    def _build(self) -> None:
        assert self.dir is not None
        for sub in ("keys", "zones", "ds", "anchors"):
            (self.dir / sub).mkdir()
        # Children before parents (RFC 4035 §2.4: the parent holds the child's DS).
        order = sorted(self.zones.values(), key=lambda z: -z.name.count("."))
        signed = [z for z in order if z.signed]
        # Keys are independent of each other: generate them in parallel.
        keygens = [
            subprocess.Popen(
                ["dnssec-keygen", "-q", "-a", "ECDSAP256SHA256", "-f", "KSK", "-K",
                 str(self.dir / "keys"), "-n", "ZONE", z.name + "."],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_tool_env(), text=True)
            for z in signed
        ]
        for zone, proc in zip(signed, keygens, strict=True):
            _out, err = proc.communicate(timeout=60)
            if proc.returncode != 0:
                raise DNSWorldError(f"dnssec-keygen for {zone.name} failed: {err.strip()}")
        for zone in order:
            self._write_zone(zone)
            if zone.signed:
                cmd = ["dnssec-signzone", "-q", "-z", "-S", "-K", str(self.dir / "keys"),
                       "-o", zone.name + ".", "-d", str(self.dir / "ds"),
                       "-f", str(self.dir / "zones" / f"{zone.name}.signed")]
                if zone.mode == BOGUS:
                    # -P: the post-signing check would refuse expired signatures.
                    cmd += ["-P", "-s", BOGUS_VALIDITY[0], "-e", BOGUS_VALIDITY[1]]
                self._run(*cmd, str(self.dir / "zones" / f"{zone.name}.zone"))
        for zone in self._top_zones():
            if zone.signed:
                shutil.copy(self.dir / "ds" / f"dsset-{zone.name}.",
                            self.dir / "anchors" / f"{zone.name}.ds")

    def _write_zone(self, zone: Zone) -> None:
        assert self.dir is not None
        origin = zone.name + "."
        lines = [
            f"$ORIGIN {origin}",
            f"$TTL {self.ttl}",
            # RFC 2308 §5: the SOA minimum is the negative-caching TTL.
            f"@ {self.ttl} IN SOA ns.{origin} hostmaster.{origin} 1 3600 600 86400 {self.ttl}",
            f"@ IN NS ns.{origin}",
            f"ns.{origin} IN A 127.0.0.1",
        ]
        for child in self.zones.values():
            if child is zone or self._parent(child) is not zone:
                continue
            lines.append(f"{child.name}. IN NS ns.{child.name}.")
            lines.append(f"ns.{child.name}. IN A 127.0.0.1")  # glue
            if child.signed:
                dsset = self.dir / "ds" / f"dsset-{child.name}."
                lines.append(dsset.read_text().strip())
        for fqdn, ttl, rtype, rdata in zone.records:
            lines.append(f"{fqdn}. {ttl} IN {rtype} {rdata}")
        (self.dir / "zones" / f"{zone.name}.zone").write_text("\n".join(lines) + "\n")

    def _named_conf(self) -> str:
        assert self.dir is not None
        d = self.dir
        zones = []
        for zone in self.zones.values():
            suffix = "signed" if zone.signed else "zone"
            zones.append(f'zone "{zone.name}." {{ type primary; '
                         f'file "{d}/zones/{zone.name}.{suffix}"; }};')
        return "\n".join([
            "options {",
            f'  directory "{d}";',
            f'  pid-file "{d}/named.pid";',
            f'  session-keyfile "{d}/session.key";',
            f'  managed-keys-directory "{d}";',
            f"  listen-on port {self.named_port} {{ 127.0.0.1; }};",
            "  listen-on-v6 { none; };",
            "  recursion no;",
            "  dnssec-validation no;",
            "  minimal-responses yes;",
            "  notify no;",
            "  allow-transfer { none; };",
            # Zones such as _tcp.mx.example.test (DANE tests) have NS names with an
            # underscore; they are test names, not host names to police.
            "  check-names primary ignore;",
            "};",
            "controls { };",
            *zones,
        ]) + "\n"

    def _unbound_conf(self) -> str:
        assert self.dir is not None
        d = self.dir
        lines = [
            "server:",
            "  interface: 127.0.0.1",
            f"  port: {self.unbound_port}",
            "  do-ip6: no",
            "  so-reuseport: no",
            "  num-threads: 1",
            '  username: ""',
            '  chroot: ""',
            f'  directory: "{d}"',
            f'  pidfile: "{d}/unbound.pid"',
            '  logfile: ""',
            "  use-syslog: no",
            "  verbosity: 1",
            "  val-log-level: 2",
            "  log-servfail: yes",
            "  ede: yes",
            '  module-config: "validator iterator"',
            "  do-not-query-localhost: no",
            # Queries leave only from loopback, and names outside the world are
            # refused: nothing reaches the Internet.
            "  outgoing-interface: 127.0.0.1",
            '  local-zone: "." refuse',
            "  qname-minimisation: no",
            "  aggressive-nsec: no",
            "  prefetch: no",
            "  access-control: 127.0.0.0/8 allow",
        ]
        for path in self.trust_anchor_files:
            lines.append(f'  trust-anchor-file: "{path}"')
        for zone in self._top_zones():
            # Overrides unbound's default local zones (test., 127.in-addr.arpa.).
            lines.append(f'  local-zone: "{zone.name}." transparent')
        for zone in self.zones.values():
            # A stub for every zone: delegations point at port 53 (NS glue),
            # the stubs keep unbound on named's port.
            lines += ["stub-zone:", f'  name: "{zone.name}."',
                      f"  stub-addr: 127.0.0.1@{self.named_port}"]
        return "\n".join(lines) + "\n"

    def _launch(self) -> None:
        assert self.dir is not None
        last_error: DNSWorldError | None = None
        for _attempt in range(3):  # another process may take a port we picked
            self.named_port, self.unbound_port = free_port(), free_port()
            while self.unbound_port == self.named_port:
                self.unbound_port = free_port()
            (self.dir / "named.conf").write_text(self._named_conf())
            (self.dir / "unbound.conf").write_text(self._unbound_conf())
            try:
                # Both start at once; unbound asks named nothing until asked.
                self._spawn("named", "named", "-g", "-4", "-n", "1", "-c",
                            str(self.dir / "named.conf"))
                self._spawn("unbound", "unbound", "-d", "-c", str(self.dir / "unbound.conf"))
                self._wait_ready("named", self.named_port, want_ad=False)
                self._wait_ready("unbound", self.unbound_port, want_ad=True)
                return
            except DNSWorldError as exc:
                last_error = exc
                logs = self.logs().lower()
                port_taken = "address in use" in logs or "address already in use" in logs
                _terminate(self._procs)
                if not port_taken:
                    raise
        assert last_error is not None
        raise last_error

    def _spawn(self, name: str, *cmd: str) -> None:
        assert self.dir is not None
        log = open(self.dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        try:
            in_main = threading.current_thread() is threading.main_thread()
            self._procs[name] = subprocess.Popen(
                list(cmd), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.dir, env=_tool_env(),
                # PDEATHSIG fires when the *thread* that forked ends: only use it
                # from the main thread.
                preexec_fn=_die_with_parent if in_main and sys.platform == "linux" else None,
            )
        finally:
            log.close()

    def _wait_ready(self, name: str, port: int, want_ad: bool) -> None:
        """Ask SOA of ``test.`` until the server answers (with AD from the validator)."""
        query = dns.message.make_query(ROOT + ".", "SOA", want_dnssec=True)
        if want_ad:
            query.flags |= dns.flags.AD | dns.flags.RD
        deadline = time.monotonic() + START_TIMEOUT
        problem = "no answer"
        proc = self._procs[name]
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise DNSWorldError(
                    f"{name} exited with status {proc.returncode} at start\n{self.logs()}"
                )
            try:
                response = dns.query.udp(query, "127.0.0.1", port=port, timeout=0.5)
            except (OSError, dns.exception.DNSException) as exc:
                problem = f"{type(exc).__name__}: {exc}"
                time.sleep(0.05)
                continue
            rcode = response.rcode()
            if rcode == dns.rcode.NOERROR and (not want_ad or response.flags & dns.flags.AD):
                return
            problem = f"rcode {dns.rcode.to_text(rcode)}, flags {dns.flags.to_text(response.flags)}"
            if want_ad and rcode == dns.rcode.NOERROR:
                break  # answered but did not validate: waiting will not help
            time.sleep(0.05)
        raise DNSWorldError(
            f"{name} on 127.0.0.1:{port} not ready"
            f"{' (DNSSEC validation of test. failed)' if want_ad else ''}: {problem}\n"
            f"{self.logs()}"
        )


def _sbin_path() -> str:
    return os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/local/sbin"


def _tool_env() -> dict[str, str]:
    return {**os.environ, "PATH": _sbin_path()}


def _terminate(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.terminate()
    for proc in procs.values():
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    procs.clear()


def _cleanup(procs: dict[str, subprocess.Popen[bytes]], directory: Path, keep: bool) -> None:
    _terminate(procs)
    if not keep:
        with contextlib.suppress(OSError):
            shutil.rmtree(directory)


# -- the default record set -------------------------------------------------

# A TLSA 3 1 1 (DANE-EE, SPKI, SHA-256) value: any 32 octets serve for lookups.
DEFAULT_TLSA_DATA = "8cb0fc6c527506a053f4f14c8464bebbd6dede2738d11468dd953d7d6a3021f1"

DEFAULT_RECORDS: tuple[tuple[str, str, str], ...] = (
    # signed.test: DNSSEC-authentic answers.
    ("signed.test", "TXT", "v=spf1 ip4:127.0.0.1 -all"),
    ("signed.test", "MX", "10 mx.signed.test."),
    ("signed.test", "A", "127.0.0.1"),
    ("signed.test", "CAA", '0 issue "ca.test"'),
    ("_dmarc.signed.test", "TXT", "v=DMARC1; p=reject"),
    ("mx.signed.test", "A", "127.0.0.1"),
    ("mx.signed.test", "AAAA", "::1"),
    ("_25._tcp.mx.signed.test", "TLSA", f"3 1 1 {DEFAULT_TLSA_DATA}"),
    ("_submissions._tcp.signed.test", "SRV", "0 1 465 mx.signed.test."),
    ("nullmx.signed.test", "MX", "0 ."),
    ("nullmx.signed.test", "TXT", "v=spf1 -all"),
    ("alias.signed.test", "CNAME", "alias2.signed.test."),
    ("alias2.signed.test", "CNAME", "mx.signed.test."),
    # unsigned.test: delegated without DS, answers are not authentic.
    ("unsigned.test", "TXT", "v=spf1 ip4:127.0.0.1 -all"),
    ("unsigned.test", "MX", "10 mx.unsigned.test."),
    ("_dmarc.unsigned.test", "TXT", "v=DMARC1; p=none"),
    ("mx.unsigned.test", "A", "127.0.0.1"),
    # bogus.test: expired signatures, every lookup is a SERVFAIL with EDE 7.
    ("bogus.test", "TXT", "v=spf1 ip4:127.0.0.1 -all"),
    ("bogus.test", "MX", "10 mx.bogus.test."),
    ("_dmarc.bogus.test", "TXT", "v=DMARC1; p=reject"),
    ("mx.bogus.test", "A", "127.0.0.1"),
)
DEFAULT_PTRS: tuple[tuple[str, str], ...] = (("127.0.0.1", "mx.signed.test"),)


MakeDNSWorld = Callable[..., "DNSWorld"]
"""Type of the ``make_dns_world`` fixture (see tests/integration/conftest.py)."""


def add_default_records(world: DNSWorld) -> DNSWorld:
    """Add :data:`DEFAULT_RECORDS` and :data:`DEFAULT_PTRS` to an unstarted world."""
    for name, rtype, rdata in DEFAULT_RECORDS:
        world.add(name, rtype, rdata)
    for ip, target in DEFAULT_PTRS:
        world.add_ptr(ip, target)
    return world
