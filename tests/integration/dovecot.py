"""A private Dovecot IMAP server on loopback, for comparison tests and the benchmark.

Dovecot (Debian ``dovecot-imapd``) runs from its own configuration file in a
temporary directory: its own ``base_dir``, ``state_dir``, log file, a static
passdb (any user, one password) and a static userdb whose mail lives in a
Maildir there. Nothing of the system's Dovecot is read or changed::

    with Dovecot(messages=[b"From: a@x.test\\r\\n\\r\\nhi\\r\\n"]) as dc:
        with dc.client() as imap:
            imap.login()
            imap.select_inbox(dc.messages)
            untagged, status = imap.command("FETCH 1 BODYSTRUCTURE")

With ``tls=(cert_chain_pem, key_pem)`` Dovecot offers STARTTLS on ``port``
and implicit TLS (IMAPS) on ``imaps_port`` (plaintext LOGIN stays allowed);
without it, TLS is off and ``imaps_port`` is 0.

The messages are written as Maildir files exactly as given (``new/``), so
Dovecot sees the bytes the test chose (CRLF or bare LF). Run as root, the
mail processes run as ``nobody`` (Dovecot refuses UID 0 for mail), and the
directory is made traversable for that user; run as another user, everything
runs as that user and its group, login processes without chroot (checked
with ``runuser -u nobody``). When Dovecot is not installed, :meth:`Dovecot.start`
raises :class:`DovecotError`: a test failure, never a skip.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from tests.integration.loopback import free_port

DOVECOT = "/usr/sbin/dovecot"
START_TIMEOUT = 20.0
PASSWORD = "secret"


class DovecotError(RuntimeError):
    """Dovecot could not be set up, started or used; the message carries its log."""


def _config(d: Path, ip: str, port: int, user: str, group: str, uid: int, gid: int,
            extra: str, tls: tuple[Path, Path] | None = None, imaps_port: int = 0) -> str:
    # Login processes chroot into base_dir/login, which only root may do.
    chroot = "" if os.getuid() == 0 else "  chroot =\n"
    ssl = (f"ssl = yes\nssl_cert = <{tls[0]}\nssl_key = <{tls[1]}\n" if tls
           else "ssl = no\n")
    return f"""\
# Private Dovecot for kittiwake tests (tests/integration/dovecot.py).
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
protocols = imap
listen = {ip}
{ssl}disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
first_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:{d}/mail/%u
mail_uid = {uid}
mail_gid = {gid}
imap_capability = +BINARY
passdb {{
  driver = static
  args = password={PASSWORD}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/home/%u
}}
service imap-login {{
{chroot}  inet_listener imap {{
    address = {ip}
    port = {port}
  }}
  inet_listener imaps {{
    address = {ip}
    port = {imaps_port}
  }}
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
{extra}
"""


class Dovecot:
    """One private Dovecot listening for IMAP on ``ip:port``, INBOX holding ``messages``."""

    def __init__(self, messages: Sequence[bytes] = (), *, ip: str = "127.0.0.1",
                 port: int | None = None, user: str = "test", extra_config: str = "",
                 tls: tuple[Path, Path] | None = None) -> None:
        self.ip = ip
        self.port = port or free_port(ip)
        # With ``tls`` (certificate chain and key PEM files): STARTTLS on ``port``
        # and implicit TLS (IMAPS) on ``imaps_port``; plaintext LOGIN stays allowed.
        self.tls = tls
        self.imaps_port = free_port(ip) if tls else 0
        self.user = user
        self.messages = list(messages)
        self.extra_config = extra_config
        self.dir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        assert self.dir is not None
        return self.dir / "dovecot.conf"

    def log(self) -> str:
        """Dovecot's log so far."""
        if self.dir is None:
            return ""
        path = self.dir / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _account(self) -> tuple[str, str, int, int]:
        """Internal user and group of Dovecot's helpers, and the mail uid and gid."""
        if os.getuid() == 0:
            pw = pwd.getpwnam("nobody")
            internal = "dovecot" if _user_exists("dovecot") else "nobody"
            group = grp.getgrgid(pwd.getpwnam(internal).pw_gid).gr_name
            return internal, group, pw.pw_uid, pw.pw_gid
        pw = pwd.getpwuid(os.getuid())
        return pw.pw_name, grp.getgrgid(pw.pw_gid).gr_name, pw.pw_uid, pw.pw_gid

    def start(self) -> Dovecot:
        if not os.path.exists(DOVECOT):
            raise DovecotError(f"{DOVECOT} missing: install the Debian package dovecot-imapd")
        internal, group, uid, gid = self._account()
        self.dir = Path(tempfile.mkdtemp(prefix="kw-dovecot-"))
        os.chmod(self.dir, 0o755)  # the mail processes (uid) must reach mail/ and home/
        maildir = self.dir / "mail" / self.user
        for sub in ("new", "cur", "tmp"):
            (maildir / sub).mkdir(parents=True)
        for i, data in enumerate(self.messages):
            # Maildir file names: unique, sorting in delivery order.
            (maildir / "new" / f"{1_700_000_000 + i}.M{i}P1.kittiwake").write_bytes(data)
        (self.dir / "home" / self.user).mkdir(parents=True)
        self.config_path.write_text(_config(self.dir, self.ip, self.port, internal, group,
                                            uid, gid, self.extra_config, self.tls,
                                            self.imaps_port))
        if os.getuid() == 0:
            for path in (self.dir / "mail", self.dir / "home"):
                for root, dirs, files in os.walk(path):
                    os.chown(root, uid, gid)
                    for name in dirs + files:
                        os.chown(os.path.join(root, name), uid, gid)
        self.proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.config_path)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode(errors="replace") if self.proc.stdout else ""
                raise DovecotError(f"dovecot exited with {self.proc.returncode}: {out}\n"
                                   f"{self.log()}")
            with contextlib.suppress(OSError), socket.create_connection(
                    (self.ip, self.port), timeout=1) as sock:
                if sock.recv(100).startswith(b"* OK"):
                    return self
            time.sleep(0.05)
        self.stop()
        raise DovecotError(f"dovecot did not answer on {self.ip}:{self.port}\n{self.log()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def client(self, timeout: float = 10.0) -> IMAPClient:
        """A minimal IMAP client connected to this server (see :class:`IMAPClient`)."""
        return IMAPClient(self.ip, self.port, self.user, timeout)

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, v: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


_LITERAL = re.compile(rb"~?\{(\d+)\}\r\n\Z")


class IMAPClient:
    """A line-and-literal IMAP client that returns responses as raw bytes.

    The comparison tests want Dovecot's exact octets, not a library's
    interpretation: :meth:`command` returns each untagged response as one
    ``bytes`` (literals inlined as ``{n}\\r\\n`` plus their octets) and the
    tagged status line.
    """

    def __init__(self, ip: str, port: int, user: str, timeout: float) -> None:
        self.sock = socket.create_connection((ip, port), timeout=timeout)
        self.file = self.sock.makefile("rb")
        self.user = user
        self.tag = 0
        self.greeting = self._response()

    def _response(self) -> bytes:
        out = b""
        while True:
            line = self.file.readline()
            if not line:
                raise DovecotError(f"connection closed after {out[-200:]!r}")
            out += line
            m = _LITERAL.search(line)
            if m is None:
                return out
            out += self.file.read(int(m.group(1)))

    def command(self, text: str | bytes) -> tuple[list[bytes], bytes]:
        """Send one command; its untagged responses and the tagged status line."""
        self.tag += 1
        tag = b"t%d" % self.tag
        data = text.encode() if isinstance(text, str) else text
        self.sock.sendall(tag + b" " + data + b"\r\n")
        untagged: list[bytes] = []
        while True:
            resp = self._response()
            if resp.startswith(tag + b" "):
                return untagged, resp
            untagged.append(resp)

    def select_inbox(self, messages: Sequence[bytes]) -> None:
        """SELECT INBOX and check it holds ``messages`` in this order.

        Dovecot numbers new Maildir files by the time in their names; the
        sizes (RFC822.SIZE counts bare LF as CRLF) confirm the order.
        """
        _, status = self.command("SELECT INBOX")
        if b" OK " not in status:
            raise DovecotError(f"SELECT failed: {status!r}")
        if not messages:
            return
        untagged, status = self.command("FETCH 1:* (RFC822.SIZE)")
        sizes = [int(m.group(1)) for r in untagged
                 if (m := re.search(rb"RFC822\.SIZE (\d+)", r))]
        want = [len(m) + m.count(b"\n") - m.count(b"\r\n") for m in messages]
        if sizes != want:
            raise DovecotError(f"INBOX holds sizes {sizes}, expected {want}")

    def login(self) -> None:
        _, status = self.command(f"LOGIN {self.user} {PASSWORD}")
        if b" OK" not in status:
            raise DovecotError(f"LOGIN failed: {status!r}")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.command("LOGOUT")
        self.file.close()
        self.sock.close()

    def __enter__(self) -> IMAPClient:
        return self

    def __exit__(self, t: type[BaseException] | None, v: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
