"""A private Postfix instance on loopback, for tests and the benchmark (a real SMTP peer).

Postfix (RFC 5321 MTA, Debian ``postfix``) runs from its own
``config_directory``/``queue_directory``/``data_directory`` in a temporary
directory; nothing of the system's Postfix is used or changed::

    ip = free_loopback()
    with Postfix(ip=ip, port=free_port(ip), main={"relayhost": "[127.0.0.1]:2525"}) as pf:
        pf.sendmail(b"From: ...", sender="a@x.test", recipients=["b@y.test"])
        pf.wait_log(r"status=sent")

Traps avoided (see /work/shared/PEERS.md): chroot is off in master.cf, the
smtpd listener is an explicit ``IP:PORT`` line, ``inet_interfaces = all``,
start-up errors are caught by running ``postfix start`` under ``script`` (it
prints them only to a terminal), and the log goes to ``maillog_file``
(:meth:`Postfix.maillog`). When Postfix is not installed, :meth:`start`
raises :class:`PostfixError`: a test failure, never a skip.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

SBIN = "/usr/sbin"
MASTER_CF = Path("/etc/postfix/master.cf")
START_TIMEOUT = 20.0


class PostfixError(RuntimeError):
    """Postfix could not be set up, started or used; the message carries its log."""


def tool(name: str) -> str:
    """Full path of a Postfix program (``postfix``, ``smtp-source``, ...), or PostfixError."""
    path = shutil.which(name, path=f"{SBIN}:/usr/bin:{os.environ.get('PATH', '')}")
    if path is None:
        raise PostfixError(f"{name} not found: install the Debian package postfix")
    return path


def _master_cf(listen: str | None) -> str:
    """The Debian master.cf with chroot off and smtpd on ``listen`` (``IP:PORT``) only."""
    if not MASTER_CF.exists():
        raise PostfixError(f"{MASTER_CF} missing: install the Debian package postfix")
    out = []
    for line in MASTER_CF.read_text().splitlines():
        fields = line.split()
        if line and not line[0].isspace() and not line.startswith("#") and len(fields) >= 8:
            if fields[0] == "smtp" and fields[1] == "inet":
                continue  # the system's port 25 listener: replaced below
            fields[4] = "n"  # chroot off: the private queue is not set up for one
            line = "  ".join(fields[:8]) + (" " + " ".join(fields[8:]) if fields[8:] else "")
        out.append(line)
    if listen:
        out.append(f"{listen} inet n - n - - smtpd")
    return "\n".join(out) + "\n"


class Postfix:
    """One private Postfix: smtpd on ``ip:port`` (no listener when ``port`` is 0).

    ``main`` adds or overrides main.cf settings (e.g. ``relayhost``,
    ``smtp_tls_security_level``, ``virtual_mailbox_domains``).
    """

    def __init__(self, *, ip: str = "127.0.0.1", port: int = 0,
                 main: dict[str, str] | None = None, hostname: str = "postfix.test",
                 directory: Path | None = None) -> None:
        self.ip = ip
        self.port = port
        self.hostname = hostname
        self.extra = dict(main or {})
        self._own_dir = directory is None
        self.dir = Path(directory or tempfile.mkdtemp(prefix="kw-postfix-"))
        self.config_dir = self.dir / "etc"
        self.queue_dir = self.dir / "spool"
        self.data_dir = self.dir / "lib"
        self.log_file = self.dir / "maillog"
        self.running = False

    # -- configuration ----------------------------------------------------------

    def main_cf(self) -> dict[str, str]:
        """All main.cf settings this instance is started with."""
        settings = {
            "compatibility_level": "3.6",
            "config_directory": str(self.config_dir),
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.data_dir),
            "maillog_file": str(self.log_file),
            "maillog_file_prefixes": str(self.dir),
            "syslog_name": f"postfix-{self.port or 'client'}",
            "myhostname": self.hostname,
            "mydomain": self.hostname.partition(".")[2] or self.hostname,
            "mydestination": "",
            "inet_interfaces": "all",  # naming a 127.x other than .1 fails (PEERS.md)
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtp_dns_support_level": "disabled",
            "disable_dns_lookups": "yes",
            "smtpd_peername_lookup": "no",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "biff": "no",
            "smtputf8_enable": "yes",
            "smtpd_banner": "$myhostname ESMTP",
            # Tests want immediate retries and no stale queue runs.
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "in_flow_delay": "0",
        }
        settings.update(self.extra)
        return settings

    def _write_config(self) -> None:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.queue_dir.mkdir(parents=True, exist_ok=True)
        # Postfix daemons run as the postfix user and must reach the queue.
        self.dir.chmod(0o755)
        os.chown(self.data_dir, *_postfix_ids())
        main = "".join(f"{k} = {v}\n" for k, v in self.main_cf().items())
        (self.config_dir / "main.cf").write_text(main)
        listen = f"{self.ip}:{self.port}" if self.port else None
        (self.config_dir / "master.cf").write_text(_master_cf(listen))

    # -- running ----------------------------------------------------------------

    def _postfix(self, *args: str,
                 timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess[str]:
        # Postfix prints errors to stderr only when it is a terminal: run it under script(1).
        command = " ".join([tool("postfix"), "-c", str(self.config_dir), *args])
        return subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def start(self) -> Postfix:
        """Write the config, start master and wait until smtpd accepts connections."""
        tool("postfix")
        if shutil.which("script") is None:
            raise PostfixError("script not found: install the Debian package bsdutils")
        self._write_config()
        done = self._postfix("start")
        if done.returncode != 0:
            raise PostfixError(f"postfix start failed ({done.returncode}):\n{done.stdout}"
                               f"{done.stderr}\n{self.maillog()}")
        self.running = True
        deadline = time.monotonic() + START_TIMEOUT
        while self.port:
            with contextlib.suppress(OSError), socket.create_connection((self.ip, self.port), 1):
                break
            if time.monotonic() > deadline:
                self.stop()
                raise PostfixError(f"postfix smtpd not listening on {self.ip}:{self.port}\n"
                                   f"{self.maillog()}")
            time.sleep(0.05)
        return self

    def master_pid(self) -> int | None:
        try:
            return int((self.queue_dir / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        """Stop master and its children; wait for them (a few seconds at most)."""
        if not self.running:
            self._cleanup()
            return
        pid = self.master_pid()
        self._postfix("stop")
        deadline = time.monotonic() + 10
        while pid and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid and _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.running = False
        self._cleanup()

    def _cleanup(self) -> None:
        if self._own_dir and not os.environ.get("KITTIWAKE_KEEP_POSTFIX"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Postfix:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- using --------------------------------------------------------------------

    def maillog(self) -> str:
        """Everything Postfix logged so far."""
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def wait_log(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        """Wait until a log line matches ``pattern`` (regex); PostfixError on timeout."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.maillog())
            if match:
                return match
            if time.monotonic() > deadline:
                raise PostfixError(f"no log line matching {pattern!r} after {timeout} s:\n"
                                   f"{self.maillog()}")
            time.sleep(0.1)

    def sendmail(self, message: bytes, *, sender: str, recipients: list[str]) -> None:
        """Inject a message with Postfix's sendmail(1) (``sendmail -C DIR``)."""
        done = subprocess.run([tool("sendmail"), "-C", str(self.config_dir), "-i",
                               "-f", sender, "--", *recipients], input=message,
                              capture_output=True, timeout=30)
        if done.returncode != 0:
            raise PostfixError(f"sendmail failed ({done.returncode}): "
                               f"{done.stderr.decode(errors='replace')}\n{self.maillog()}")

    def reload(self) -> None:
        """``postfix reload``: re-read main.cf and the lookup tables (new smtpd processes)."""
        before = self.maillog().count("reload -- version")
        done = self._postfix("reload")
        if done.returncode != 0:
            raise PostfixError(f"postfix reload failed ({done.returncode}):\n{done.stdout}")
        deadline = time.monotonic() + START_TIMEOUT
        while self.maillog().count("reload -- version") <= before:
            if time.monotonic() > deadline:
                raise PostfixError(f"postfix did not reload:\n{self.maillog()}")
            time.sleep(0.05)

    def postqueue_flush(self) -> None:
        subprocess.run([tool("postqueue"), "-c", str(self.config_dir), "-f"],
                       capture_output=True, timeout=30)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _postfix_ids() -> tuple[int, int]:
    import pwd

    try:
        entry = pwd.getpwnam("postfix")
    except KeyError:
        raise PostfixError("no postfix user: install the Debian package postfix") from None
    return entry.pw_uid, entry.pw_gid
