"""Real IMAP clients from Debian, each run as a user would run it, against any server.

One helper per client: it writes that client's own configuration into a
work directory (which is also the client's ``HOME``, so the user's real
configuration is never read), runs the client with a timeout and returns a
:class:`ClientRun` with what it printed. The server is an
:class:`IMAPEndpoint`: host, port, TLS mode (``plain``, ``starttls`` for
RFC 3501 §6.2.1 STARTTLS, ``implicit`` for RFC 8314 §3 implicit TLS), the CA
file that signed the server's certificate, user and password.

- :func:`mbsync_sync`: isync's ``mbsync`` two-way sync of every folder with a
  local Maildir (``Sync All``, ``Create Both``, ``Expunge Both``).
- :func:`offlineimap_sync`: one offlineimap run (``-o -u basic``) of one
  account with a local Maildir.
- :func:`mutt_read_and_move`: mutt driven in tmux (``send-keys`` and
  ``capture-pane``): open the first message of INBOX, look at it, save it
  to another folder, sync (expunge) and quit.
- :func:`curl_fetch` and :func:`curl_command`: curl's IMAP URL scheme
  (RFC 5092): one message by UID, or a custom command (``-X``).
- :func:`fetchmail_fetch`: fetchmail fetching every message of INBOX into a
  local Maildir through an MDA, with or without ``--keep``.

:func:`maildir_view` reads a local Maildir tree (what mbsync and offlineimap
leave) as folder -> Message-ID -> flags, the shape
:meth:`~tests.integration.conftest_imap.IMAPServer.snapshot` returns for the
server side, so a test compares both sides with ``==``.

What these clients send (Debian 12 versions; from ``mbsync -D``,
``offlineimap -d imap``, ``mutt -d 5``, ``curl -v``, ``fetchmail -v -v``
against Dovecot), i.e. what a server must get right:

- mbsync (isync 1.4.4): pipelines commands (several in flight) including
  ``APPEND "INBOX" (\\Seen) {n+}`` with a LITERAL+ literal while STOREs are
  outstanding; adds an ``X-TUID:`` header to every message it uploads and
  takes the new UID from ``APPENDUID`` (RFC 4315); asks ``NAMESPACE`` and maps
  folder names with its prefix and separator; ``UID FETCH 1:N (UID FLAGS)``
  with N the last UID it knows (possibly past the last message); fetches with
  ``UID FETCH n (BODY.PEEK[])``; changes flags with ``UID STORE n
  +FLAGS.SILENT (...)`` / ``-FLAGS.SILENT``; expunges by ``CLOSE`` (RFC 3501
  §6.4.2: expunge silently), after a ``CHECK``; ``CREATE`` then ``SELECT``
  for a folder it creates. It does not sync keywords (1.4), so it must not
  lose them either.
- offlineimap3 (0.0~git20211018, "8.0.0"): ``ID`` before login;
  ``AUTHENTICATE PLAIN`` without SASL-IR (empty continuation); ``LIST ""
  ""`` then ``LIST "" "*"``; unquoted atom mailbox names (``SELECT
  Lists.kittiwake``); ``SELECT`` immediately followed by ``EXAMINE`` of the
  same mailbox; ``FETCH 1:* (FLAGS UID INTERNALDATE)`` by sequence number;
  ``APPEND box () "dd-Mon-yyyy hh:mm:ss +0000" {n}`` (empty flag list,
  synchronizing literal, INTERNALDATE) then ``CHECK``, UID from APPENDUID;
  ``UID STORE n +FLAGS (...)`` (not silent); deletes with ``UID STORE
  +FLAGS (\\Deleted)`` and a plain ``EXPUNGE``. Its STARTTLS is racy (see
  tests/integration/test_imap_clients.py); use implicit TLS with it.
- mutt 2.2.12: ``AUTHENTICATE PLAIN`` with SASL-IR and authzid = authcid
  (``user\\0user\\0pass``); ``ENABLE UTF8=ACCEPT`` even when the server does
  not announce UTF8=ACCEPT, with ``LIST "" ""`` pipelined behind it; one big
  ``FETCH 1:n (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS
  (DATE FROM SENDER SUBJECT TO CC MESSAGE-ID REFERENCES CONTENT-TYPE ...)])``;
  reads with ``UID FETCH n BODY.PEEK[]`` and then sets the flags itself with
  ``UID STORE n FLAGS.SILENT (\\Seen)`` (replace, not add); ``STATUS box
  (UIDVALIDITY)`` before saving; saves by ``UID COPY`` (not MOVE, though
  announced) + ``UID STORE +FLAGS.SILENT (\\Deleted)`` + ``EXPUNGE``;
  ``CLOSE`` then ``LOGOUT`` on quit.
- curl 7.88.1: ``AUTHENTICATE PLAIN`` with SASL-IR; ``SELECT`` (read-write)
  then ``UID FETCH n BODY[]`` (not PEEK: the message becomes \\Seen); ``-X``
  sends the command verbatim after SELECT and prints the untagged
  responses; closes the TCP connection without LOGOUT; a login failure is
  exit status 67.
- fetchmail 6.4.37: ``LOGIN "user" "pass"`` (quoted strings) even when
  AUTHENTICATE is offered; opportunistic STARTTLS whenever announced (and
  then a certificate check) unless ``sslproto ''``; with ``sslcertck`` it
  wants the host name in the certificate's subject CN: a trustme certificate
  with the name only in subjectAltName failed ("Server name not specified in
  certificate!"), so the fixture certificate has a CN too; ``FETCH 1:n
  RFC822.SIZE``; per message ``FETCH n RFC822.HEADER`` (must not set
  \\Seen, RFC 3501 §6.4.5), ``FETCH n BODY.PEEK[TEXT]`` and ``STORE n
  +FLAGS (\\Seen)``; without keep ``STORE 1 +FLAGS (\\Seen \\Deleted)`` and
  ``EXPUNGE`` after every message, always addressing message 1 (sequence
  numbers must be renumbered after each EXPUNGE); it gives the MDA LF line
  ends.
"""

from __future__ import annotations

import email.parser
import email.policy
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

TLSMode = Literal["plain", "starttls", "implicit"]
TLS_MODES: tuple[TLSMode, ...] = ("plain", "starttls", "implicit")

# Maildir info flags (the "2," part of a file name) and their IMAP system flags.
MAILDIR_FLAGS = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered", "S": "\\Seen",
                 "T": "\\Deleted"}
SYSTEM_FLAGS = frozenset(MAILDIR_FLAGS.values())


@dataclass(frozen=True)
class IMAPEndpoint:
    """Where and how a client reaches the IMAP server under test."""

    host: str
    port: int
    tls: TLSMode
    ca_file: Path | None
    user: str
    password: str


@dataclass
class ClientRun:
    """One finished client run: its command line, exit status and output."""

    argv: list[str]
    returncode: int
    stdout: bytes
    stderr: bytes
    seconds: float

    @property
    def output(self) -> str:
        """stdout and stderr as text, for assertion messages."""
        return (self.stdout + b"\n" + self.stderr).decode(errors="replace")

    def check(self) -> ClientRun:
        """Raise :class:`ClientError` unless the client exited with status 0."""
        if self.returncode != 0:
            raise ClientError(f"{shlex.join(self.argv)} exited with {self.returncode}:\n"
                              f"{self.output[-6000:]}")
        return self


class ClientError(AssertionError):
    """A client failed; the message carries its command line and output."""


def _env(workdir: Path, **extra: str) -> dict[str, str]:
    """A minimal environment whose HOME is the work directory."""
    env = {"HOME": str(workdir), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "LANG": "C.UTF-8", "TZ": "UTC"}
    env.update(extra)
    return env


def _run(argv: list[str], workdir: Path, timeout: float,
         env: dict[str, str] | None = None) -> ClientRun:
    exe = shutil.which(argv[0])
    if exe is None:
        raise ClientError(f"{argv[0]} is not installed: run scripts/install-peers.sh")
    start = time.monotonic()
    try:
        proc = subprocess.run(argv, cwd=workdir, env=env or _env(workdir), timeout=timeout,
                              stdin=subprocess.DEVNULL, capture_output=True, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ClientError(f"{shlex.join(argv)} still running after {timeout}s:\n"
                          f"{(exc.stdout or b'')[-3000:]!r}\n{(exc.stderr or b'')[-3000:]!r}"
                          ) from None
    return ClientRun(argv, proc.returncode, proc.stdout, proc.stderr,
                     time.monotonic() - start)


def _quote(value: str) -> str:
    """A double-quoted string for mbsync, mutt and fetchmail configuration files."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- mbsync (isync) ------------------------------------------------------------------

def mbsync_config(server: IMAPEndpoint, maildir: Path, workdir: Path) -> Path:
    """Write an mbsyncrc: one channel, every folder, both directions, and return it."""
    ssl_type = {"plain": "None", "starttls": "STARTTLS", "implicit": "IMAPS"}[server.tls]
    lines = [
        "IMAPAccount kw",
        f"Host {server.host}",
        f"Port {server.port}",
        f"User {_quote(server.user)}",
        f"Pass {_quote(server.password)}",
        f"SSLType {ssl_type}",
        # mbsync refuses LOGIN in the clear unless told the connection is trusted.
        "AuthMechs LOGIN PLAIN",
    ]
    if server.ca_file is not None and server.tls != "plain":
        lines += ["SystemCertificates no", f"CertificateFile {server.ca_file}"]
    lines += [
        "",
        "IMAPStore kw-far",
        "Account kw",
        "",
        "MaildirStore kw-near",
        f"Path {maildir}/",
        f"Inbox {maildir}/INBOX",
        "SubFolders Verbatim",
        "",
        "Channel kw",
        "Far :kw-far:",
        "Near :kw-near:",
        "Patterns *",
        "Create Both",
        "Expunge Both",
        "SyncState *",
        "Sync All",
        "",
    ]
    path = workdir / "mbsyncrc"
    path.write_text("\n".join(lines))
    path.chmod(0o600)
    return path


def mbsync_sync(server: IMAPEndpoint, maildir: Path, workdir: Path, *,
                timeout: float = 60.0, debug: bool = False) -> ClientRun:
    """Run ``mbsync -a`` once: sync every folder of the server with ``maildir``.

    With ``debug`` mbsync prints its IMAP conversation (``-D``) on stdout.
    """
    maildir.mkdir(parents=True, exist_ok=True)
    config = mbsync_config(server, maildir, workdir)
    argv = ["mbsync", "-c", str(config)] + (["-D"] if debug else ["-q"]) + ["-a"]
    return _run(argv, workdir, timeout)


# --- offlineimap ---------------------------------------------------------------------

def offlineimap_config(server: IMAPEndpoint, maildir: Path, workdir: Path) -> Path:
    """Write an offlineimaprc: one account, IMAP remote, Maildir local."""
    tls = {
        "plain": "ssl = no\nstarttls = no\n",
        "starttls": "ssl = no\nstarttls = yes\n",
        "implicit": "ssl = yes\nstarttls = no\n",
    }[server.tls]
    if server.tls != "plain" and server.ca_file is not None:
        tls += f"sslcacertfile = {server.ca_file}\n"
    text = f"""\
[general]
accounts = kw
metadata = {workdir}/offlineimap-state
maxsyncaccounts = 1

[Account kw]
localrepository = kw-local
remoterepository = kw-remote

[Repository kw-local]
type = Maildir
localfolders = {maildir}
sep = /

[Repository kw-remote]
type = IMAP
remotehost = {server.host}
remoteport = {server.port}
remoteuser = {server.user}
remotepass = {server.password}
{tls}maxconnections = 1
holdconnectionopen = no
"""
    path = workdir / "offlineimaprc"
    path.write_text(text)
    path.chmod(0o600)
    return path


def offlineimap_sync(server: IMAPEndpoint, maildir: Path, workdir: Path, *,
                     timeout: float = 60.0, debug: bool = False) -> ClientRun:
    """Run ``offlineimap -o -u basic`` once (``-d imap`` with ``debug``)."""
    maildir.mkdir(parents=True, exist_ok=True)
    config = offlineimap_config(server, maildir, workdir)
    argv = ["offlineimap", "-c", str(config), "-o", "-u", "basic"]
    if debug:
        argv += ["-d", "imap"]
    return _run(argv, workdir, timeout)


# --- mutt, driven in tmux ------------------------------------------------------------

def mutt_config(server: IMAPEndpoint, workdir: Path) -> Path:
    """Write a muttrc for the server: IMAP folders, no prompts that batch runs cannot answer."""
    scheme = "imaps" if server.tls == "implicit" else "imap"
    lines = [
        f"set folder={_quote(f'{scheme}://{server.host}:{server.port}/')}",
        'set spoolfile="+INBOX"',
        f"set imap_user={_quote(server.user)}",
        f"set imap_pass={_quote(server.password)}",
        f"set ssl_starttls={'yes' if server.tls == 'starttls' else 'no'}",
        f"set ssl_force_tls={'no' if server.tls == 'plain' else 'yes'}",
        f"set certificate_file={_quote(str(workdir / 'mutt-certificates'))}",
        'set record=""',
        "set confirmappend=no",
        "set confirmcreate=no",
        "set delete=yes",
        "set move=no",
        "set quit=yes",
        "set wait_key=no",
        "set mark_old=no",
        "set beep=no",
        "set imap_passive=no",
        "set mail_check=3600",
        "set timeout=3600",
        "set sort=mailbox-order",
        'set header_cache=""',
        'set message_cachedir=""',
    ]
    if server.tls != "plain" and server.ca_file is not None:
        # Debian's mutt uses GnuTLS, which reads trusted CAs from this file.
        lines.append(f"set ssl_ca_certificates_file={_quote(str(server.ca_file))}")
    path = workdir / "muttrc"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class MuttRun:
    """What the user saw in mutt: the index, the message in the pager, the end state."""

    index_screen: str
    pager_screen: str
    debug_log: str
    seconds: float


class Tmux:
    """A private tmux server (its own socket in the work directory) running one program."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.socket = workdir / "tmux.sock"
        self.env = env
        self.workdir = workdir

    def _tmux(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run(["tmux", "-S", str(self.socket), "-f", "/dev/null", *args],
                              cwd=self.workdir, env=self.env, capture_output=True,
                              timeout=10, check=False)
        if check and proc.returncode != 0:
            raise ClientError(f"tmux {' '.join(args)}: {proc.stderr.decode(errors='replace')}")
        return proc.stdout.decode(errors="replace")

    def start(self, command: list[str]) -> None:
        self._tmux("new-session", "-d", "-s", "kw", "-x", "160", "-y", "50",
                   shlex.join(command))
        self._tmux("set-option", "-t", "kw", "remain-on-exit", "on")

    def send(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "kw", *keys)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "kw")

    def dead(self) -> bool:
        out = self._tmux("list-panes", "-t", "kw", "-F", "#{pane_dead}", check=False)
        return out.strip() in ("1", "")

    def wait_for(self, text: str, timeout: float) -> str:
        """Poll the screen until it shows ``text``; the screen then."""
        return self.wait_until(lambda screen: text in screen, repr(text), timeout)

    def wait_until(self, ready: Callable[[str], bool], what: str, timeout: float) -> str:
        """Poll the screen until ``ready(screen)``; the screen then."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if ready(screen):
                return screen
            if self.dead():
                break
            time.sleep(0.05)
        raise ClientError(f"mutt screen never showed {what}; last screen:\n{screen}")

    def wait_dead(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.dead():
                return
            time.sleep(0.05)
        raise ClientError(f"mutt did not quit; screen:\n{self.screen()}")

    def kill(self) -> None:
        self._tmux("kill-server", check=False)


def mutt_read_and_move(server: IMAPEndpoint, workdir: Path, *, subject: str,
                       body_text: str, target: str, timeout: float = 20.0) -> MuttRun:
    """In mutt: open INBOX, read its first message (``subject``), save it to ``target``.

    Keys are the default key map: Enter opens the message in the pager (the
    screen must show ``body_text``), ``q`` goes back to the index, ``s``
    saves to ``=target`` (mutt copies and marks the original \\Deleted),
    ``$`` syncs (expunges, as ``delete=yes``) and ``q`` quits.
    """
    if shutil.which("mutt") is None or shutil.which("tmux") is None:
        raise ClientError("mutt or tmux is not installed: run scripts/install-peers.sh")
    config = mutt_config(server, workdir)
    env = _env(workdir, TERM="xterm-256color")
    tmux = Tmux(workdir, env)
    start = time.monotonic()
    tmux.start(["mutt", "-n", "-F", str(config), "-d", "5"])
    try:
        index = tmux.wait_for(subject, timeout)
        tmux.send("Enter")
        pager = tmux.wait_for(body_text, timeout)
        tmux.send("q")
        tmux.wait_for(subject, timeout)
        tmux.send("s")
        tmux.wait_for("Save to mailbox", timeout)
        tmux.send("C-u", f"={target}", "Enter")
        # Saved: the index shows the message with status D (marked deleted).
        deleted = re.compile(r"(?m)^\s*\d+ .{0,3}D.*" + re.escape(subject))
        tmux.wait_until(lambda screen: deleted.search(screen) is not None,
                        f"{subject!r} marked deleted", timeout)
        tmux.send("$")  # sync: asks nothing (delete=yes); the message leaves the index
        tmux.wait_until(lambda screen: subject not in screen, f"{subject!r} expunged",
                        timeout)
        tmux.send("q")
        tmux.wait_dead(timeout)
    finally:
        tmux.kill()
    logs = sorted(workdir.glob(".muttdebug*"))
    debug = logs[0].read_text(errors="replace") if logs else ""
    return MuttRun(index, pager, debug, time.monotonic() - start)


# --- curl ----------------------------------------------------------------------------

def _curl_base(server: IMAPEndpoint) -> tuple[list[str], str]:
    scheme = "imaps" if server.tls == "implicit" else "imap"
    argv = ["curl", "--silent", "--show-error", "--max-time", "20",
            "--user", f"{server.user}:{server.password}"]
    if server.tls == "starttls":
        argv.append("--ssl-reqd")
    if server.tls != "plain" and server.ca_file is not None:
        argv += ["--cacert", str(server.ca_file)]
    return argv, f"{scheme}://{server.host}:{server.port}"


def curl_fetch(server: IMAPEndpoint, workdir: Path, mailbox: str, uid: int, *,
               timeout: float = 30.0, verbose: bool = False) -> ClientRun:
    """``curl imap://host:port/MAILBOX;UID=n``: stdout is the message (RFC 5092 §6)."""
    argv, base = _curl_base(server)
    argv += ["--verbose"] if verbose else []
    argv.append(f"{base}/{mailbox};UID={uid}")
    return _run(argv, workdir, timeout)


def curl_command(server: IMAPEndpoint, workdir: Path, mailbox: str, command: str, *,
                 timeout: float = 30.0, verbose: bool = False) -> ClientRun:
    """``curl imap://host:port/MAILBOX -X COMMAND``: stdout is the untagged responses."""
    argv, base = _curl_base(server)
    argv += ["--verbose"] if verbose else []
    argv += [f"{base}/{mailbox}", "-X", command]
    return _run(argv, workdir, timeout)


# --- fetchmail -----------------------------------------------------------------------

def fetchmail_fetch(server: IMAPEndpoint, maildir: Path, workdir: Path, *, keep: bool,
                    timeout: float = 60.0, verbose: bool = False) -> ClientRun:
    """Run fetchmail once: every message of INBOX (``fetchall``) into ``maildir/new``.

    The MDA is a two-line Maildir delivery (write in ``tmp/``, rename into
    ``new/``). ``--invisible`` and ``no rewrite`` keep fetchmail from adding a
    Received header or rewriting addresses, so the files hold the server's
    message (fetchmail hands the MDA bare LF line ends). Without ``keep``
    fetchmail marks each message \\Deleted and expunges.
    """
    for sub in ("tmp", "new", "cur"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    mda = workdir / "maildir-mda"
    mda.write_text("#!/bin/sh\nset -e\n"
                   f'f={shlex.quote(str(maildir))}/tmp/$(date +%s%N).$$\n'
                   'cat > "$f"\n'
                   f'mv "$f" {shlex.quote(str(maildir))}/new/\n')
    mda.chmod(0o755)
    # fetchmail tries STARTTLS whenever the server offers it (and then checks the
    # certificate); an empty sslproto is how a user turns that off.
    tls = " sslproto ''"
    if server.tls == "implicit":
        tls = " ssl"
    elif server.tls == "starttls":
        tls = " sslproto 'tls1.2+'"
    if server.tls != "plain":
        tls += " sslcertck"
        if server.ca_file is not None:
            tls += f" sslcertfile {_quote(str(server.ca_file))}"
    rc = workdir / "fetchmailrc"
    rc.write_text(
        "set no syslog\n"
        f"poll {server.host} protocol IMAP service {server.port} auth password\n"
        f"  user {_quote(server.user)} there with password {_quote(server.password)}\n"
        f"  folder INBOX fetchall {'keep' if keep else 'nokeep'} no rewrite{tls}\n")
    rc.chmod(0o600)
    argv = ["fetchmail", "--fetchmailrc", str(rc), "--idfile", str(workdir / "fetchids"),
            "--pidfile", str(workdir / "fetchmail.pid"), "--nodetach", "--invisible",
            "--mda", str(mda)]
    argv += ["-v", "-v"] if verbose else ["--silent"]
    return _run(argv, workdir, timeout)


# --- the local side ------------------------------------------------------------------

_HEADERS = email.parser.BytesHeaderParser(policy=email.policy.compat32)


def message_id(data: bytes) -> str:
    """The Message-ID of a message (its header only is parsed)."""
    value = _HEADERS.parsebytes(data).get("Message-ID")
    return str(value).strip() if value is not None else ""


def maildir_flags(name: str) -> frozenset[str]:
    """IMAP system flags of a Maildir file name (``...:2,FS`` -> \\Flagged \\Seen)."""
    _, sep, info = name.rpartition(":2,")
    if not sep:
        return frozenset()
    return frozenset(MAILDIR_FLAGS[c] for c in info if c in MAILDIR_FLAGS)


def maildir_folders(root: Path) -> list[Path]:
    """Every Maildir folder under ``root`` (a directory holding cur/, new/ and tmp/)."""
    return sorted(p for p in root.rglob("*")
                  if p.is_dir() and all((p / s).is_dir() for s in ("cur", "new", "tmp")))


def maildir_view(root: Path) -> dict[str, dict[str, frozenset[str]]]:
    """folder name -> Message-ID -> system flags, for a Maildir tree as mbsync/offlineimap keep it.

    Folder names are paths below ``root`` with ``/`` as separator; files
    marked T (trashed) are left out, as a sync with expunge removes them.
    """
    view: dict[str, dict[str, frozenset[str]]] = {}
    for folder in maildir_folders(root):
        name = folder.relative_to(root).as_posix()
        messages: dict[str, frozenset[str]] = {}
        for sub in ("new", "cur"):
            for f in (folder / sub).iterdir():
                flags = maildir_flags(f.name)
                if "\\Deleted" in flags:
                    continue
                messages[message_id(f.read_bytes())] = flags
        view[name] = messages
    return view


def maildir_add(folder: Path, data: bytes, flags: str = "") -> Path:
    """Deliver a message into a local Maildir folder as a user's mail program would."""
    name = f"{time.time_ns()}.P{os.getpid()}.kittiwake-test"
    tmp = folder / "tmp" / name
    tmp.write_bytes(data)
    dest = folder / ("cur" if flags else "new") / (f"{name}:2,{flags}" if flags else name)
    tmp.rename(dest)
    return dest


def maildir_set_flags(path: Path, flags: str) -> Path:
    """Change a local message's flags (rename to ``cur/NAME:2,FLAGS``), as a user's MUA does."""
    base = path.name.split(":2,")[0]
    dest = path.parent.parent / "cur" / f"{base}:2,{''.join(sorted(flags))}"
    path.rename(dest)
    return dest
