"""The ``imap_server`` fixture: an IMAP server under test for the real-client tests.

Parametrised over servers (:data:`IMAP_SERVERS`). Today the only one is a
private Dovecot (:mod:`tests.integration.dovecot`) with a trustme CA and
certificate for ``localhost``: STARTTLS and plaintext on one port, implicit
TLS (RFC 8314) on another. The fixture yields an :class:`IMAPServer`:

- ``endpoint(tls)``: an :class:`~.imapclients.IMAPEndpoint` for a client, one
  of ``tls_modes``; ``host``, ``ca_file``, ``user``, ``password``;
- the server side, seen through :mod:`imaplib` (never through the server's
  internals, so the same assertions hold for every server): ``folders()``,
  ``count(folder)``, ``flags(folder)`` (UID -> flags), ``snapshot()``
  (folder -> Message-ID -> system flags, comparable with
  :func:`~.imapclients.maildir_view`), ``message(folder, uid)``,
  ``append(...)``, ``create(folder)``, ``store(...)``, ``expunge_uid(...)``.

It is imported into ``tests/integration/conftest.py``, so every integration
test can ask for it.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import ssl
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme

from .dovecot import PASSWORD, Dovecot
from .imapclients import SYSTEM_FLAGS, IMAPEndpoint, TLSMode, message_id

# The servers every test using ``imap_server`` runs against.
# kittiwake is the server under test; Dovecot runs the same tests as the reference.
IMAP_SERVERS = ["kittiwake", "dovecot"]

TLS_HOST = "localhost"  # the name in the server certificate; resolves to 127.0.0.1


@dataclass
class IMAPServer:
    """An IMAP server under test: how clients reach it, and its side seen over IMAP."""

    name: str
    host: str
    port: int
    implicit_port: int
    ca_file: Path
    user: str
    password: str
    tls_modes: tuple[TLSMode, ...] = ("plain", "starttls", "implicit")
    _log: Callable[[], str] = field(default=lambda: "", repr=False)
    _separator: str | None = field(default=None, repr=False)

    def _mailbox(self, folder: str) -> str:
        """The quoted server name of ``folder`` ("/" replaced by the server's separator)."""
        assert self._separator is not None
        return _quote(folder.replace("/", self._separator))

    def endpoint(self, tls: TLSMode) -> IMAPEndpoint:
        """Connection parameters for a client using ``tls``."""
        if tls not in self.tls_modes:
            raise ValueError(f"{self.name} offers {self.tls_modes}, not {tls}")
        port = self.implicit_port if tls == "implicit" else self.port
        return IMAPEndpoint(self.host, port, tls, self.ca_file, self.user, self.password)

    def log(self) -> str:
        """The server's log, for assertion messages."""
        return self._log()

    @contextlib.contextmanager
    def imap(self) -> Iterator[imaplib.IMAP4]:
        """A logged-in imaplib connection (implicit TLS, the CA checked)."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        conn = imaplib.IMAP4_SSL(self.host, self.implicit_port, ssl_context=context,
                                 timeout=30)
        try:
            conn.login(self.user, self.password)
            if self._separator is None:
                typ, data = conn.list('""', '""')
                _ok(typ, data, 'LIST "" ""')
                m = _LIST.match(data[0]) if isinstance(data[0], bytes) else None
                self._separator = (m.group("sep") or b"/").decode() if m else "/"
            yield conn
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                conn.logout()

    # --- reading the server side ---

    def folders(self) -> list[str]:
        """Every mailbox LIST shows (names with "/" as hierarchy separator)."""
        with self.imap() as conn:
            return _list(conn)

    def count(self, folder: str = "INBOX") -> int:
        """Messages in ``folder`` (EXAMINE's EXISTS)."""
        with self.imap() as conn:
            typ, data = conn.select(self._mailbox(folder), readonly=True)
            _ok(typ, data, f"EXAMINE {folder}")
            return int(data[0] or 0)

    def flags(self, folder: str = "INBOX") -> dict[int, frozenset[str]]:
        """UID -> flags (system flags and keywords, without \\Recent) of ``folder``."""
        with self.imap() as conn:
            return {uid: flags for uid, flags, _ in _fetch_all(conn, self._mailbox(folder))}

    def snapshot(self) -> dict[str, dict[str, frozenset[str]]]:
        """folder -> Message-ID -> system flags: what a synced Maildir should mirror."""
        with self.imap() as conn:
            return {folder: {mid: flags & SYSTEM_FLAGS
                             for _, flags, mid in _fetch_all(conn, self._mailbox(folder))}
                    for folder in _list(conn)}

    def keywords(self, folder: str = "INBOX") -> dict[str, frozenset[str]]:
        """Message-ID -> keywords (flags without a backslash) of ``folder``."""
        with self.imap() as conn:
            return {mid: frozenset(f for f in flags if not f.startswith("\\"))
                    for _, flags, mid in _fetch_all(conn, self._mailbox(folder))}

    def uids(self, folder: str = "INBOX") -> dict[str, int]:
        """Message-ID -> UID in ``folder``."""
        with self.imap() as conn:
            return {mid: uid for uid, _, mid in _fetch_all(conn, self._mailbox(folder))}

    def message(self, folder: str, uid: int) -> bytes:
        """The exact octets of one message (UID FETCH BODY.PEEK[])."""
        with self.imap() as conn:
            _ok(*conn.select(self._mailbox(folder), readonly=True), f"EXAMINE {folder}")
            typ, data = conn.uid("FETCH", str(uid), "(BODY.PEEK[])")
            _ok(typ, data, f"UID FETCH {uid}")
            for item in data:
                if isinstance(item, tuple):
                    return item[1]
            raise AssertionError(f"no message with UID {uid} in {folder}: {data!r}")

    # --- changing the server side, as another client of the user would ---

    def create(self, folder: str) -> None:
        with self.imap() as conn:
            _ok(*conn.create(self._mailbox(folder)), f"CREATE {folder}")

    def append(self, folder: str, messages: Iterable[tuple[bytes, Sequence[str]]]) -> None:
        """APPEND each (message, flags) to ``folder``, in order, over one connection.

        A server with MULTIAPPEND (RFC 3502) and LITERAL+ (RFC 7888) gets them in
        batches of :data:`APPEND_BATCH` per command (one commit each instead of
        one per message, which makes seeding 1,000 messages take a fraction of a
        second); otherwise one APPEND per message.
        """
        batch: list[tuple[bytes, Sequence[str]]] = []
        with self.imap() as conn:
            caps = set(conn.capabilities)
            multi = {"MULTIAPPEND", "LITERAL+"} <= caps
            for data, flags in messages:
                if not multi:
                    flag_list = "(" + " ".join(flags) + ")" if flags else None
                    _ok(*conn.append(self._mailbox(folder), flag_list, None, data), "APPEND")
                    continue
                batch.append((data, flags))
                if len(batch) == APPEND_BATCH:
                    _multiappend(conn, self._mailbox(folder), batch)
                    batch = []
            if batch:
                _multiappend(conn, self._mailbox(folder), batch)

    def store(self, folder: str, uid: int, change: str) -> None:
        """UID STORE ``uid`` ``change`` (e.g. ``+FLAGS (\\Flagged)``)."""
        with self.imap() as conn:
            _ok(*conn.select(self._mailbox(folder)), f"SELECT {folder}")
            item, flags = change.split(" ", 1)
            _ok(*conn.uid("STORE", str(uid), item, flags), "UID STORE")

    def delete_message(self, folder: str, uid: int) -> None:
        """Mark one message \\Deleted and expunge it (plain EXPUNGE: nothing else is marked)."""
        with self.imap() as conn:
            _ok(*conn.select(self._mailbox(folder)), f"SELECT {folder}")
            _ok(*conn.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted)"), "UID STORE")
            _ok(*conn.expunge(), "EXPUNGE")


APPEND_BATCH = 250


def _multiappend(conn: imaplib.IMAP4, mailbox: str,
                 messages: Sequence[tuple[bytes, Sequence[str]]]) -> None:
    """One APPEND command carrying every message as a non-synchronizing literal."""
    tag = b"kwseed%d" % len(messages)
    parts = [tag, b" APPEND ", mailbox.encode()]
    for data, flags in messages:
        parts += [b" (", " ".join(flags).encode(), b") {%d+}\r\n" % len(data), data]
    conn.send(b"".join(parts) + b"\r\n")
    while True:
        line = conn.readline()
        if not line:
            raise AssertionError("connection closed during MULTIAPPEND")
        if line.startswith(tag + b" "):
            if not line.startswith(tag + b" OK"):
                raise AssertionError(f"MULTIAPPEND: {line!r}")
            return


def _ok(typ: str, data: list, what: str) -> None:  # type: ignore[type-arg]
    if typ != "OK":
        raise AssertionError(f"{what}: {typ} {data!r}")


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


_LIST = re.compile(rb'\((?P<attrs>[^)]*)\) (?:"(?P<sep>[^"]*)"|NIL) (?P<name>.*)')
_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")
_UID = re.compile(rb"UID (\d+)")


def _list(conn: imaplib.IMAP4) -> list[str]:
    typ, data = conn.list()
    _ok(typ, data, "LIST")
    names: list[str] = []
    for line in data:
        if not isinstance(line, bytes):
            raise AssertionError(f"LIST response with a literal, not handled here: {line!r}")
        m = _LIST.match(line)
        if m is None:
            raise AssertionError(f"unparsable LIST response {line!r}")
        if b"\\Noselect" in m.group("attrs") or b"\\NonExistent" in m.group("attrs"):
            continue
        name = m.group("name").decode()
        if name.startswith('"'):
            name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        sep = (m.group("sep") or b"/").decode()
        names.append(name.replace(sep, "/") if sep != "/" else name)
    return sorted(names)


def _fetch_all(conn: imaplib.IMAP4, mailbox: str) -> list[tuple[int, frozenset[str], str]]:
    """(UID, flags without \\Recent, Message-ID) of every message in ``mailbox`` (quoted)."""
    typ, data = conn.select(mailbox, readonly=True)
    _ok(typ, data, f"EXAMINE {mailbox}")
    if int(data[0] or 0) == 0:
        return []
    typ, data = conn.uid("FETCH", "1:*",
                         "(UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    _ok(typ, data, f"UID FETCH {mailbox}")
    out = []
    for i, item in enumerate(data):
        if not isinstance(item, tuple):
            continue
        # imaplib splits a response at its literal: UID and FLAGS are in the part
        # before it or in the bytes item after it, depending on the server's order.
        tail = data[i + 1] if i + 1 < len(data) and isinstance(data[i + 1], bytes) else b""
        head = item[0] + b" " + tail
        flags_m, uid_m = _FLAGS.search(head), _UID.search(head)
        if flags_m is None or uid_m is None:
            raise AssertionError(f"FETCH response without UID or FLAGS: {head!r}")
        flags = frozenset(f for f in flags_m.group(1).decode().split() if f != "\\Recent")
        out.append((int(uid_m.group(1)), flags, message_id(item[1])))
    return out


def _dovecot_server(tmp: Path) -> Iterator[IMAPServer]:
    ca = trustme.CA()
    cert = ca.issue_cert(TLS_HOST, "127.0.0.1", common_name=TLS_HOST)
    ca_file, chain, key = tmp / "ca.pem", tmp / "cert.pem", tmp / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key))
    for path in (ca_file, chain, key):
        path.chmod(0o644)  # Dovecot's master reads them as root, the tests as anyone
    dovecot = Dovecot(ip="127.0.0.1", tls=(chain, key))
    with dovecot:
        yield IMAPServer("dovecot", TLS_HOST, dovecot.port, dovecot.imaps_port, ca_file,
                         dovecot.user, PASSWORD, _log=dovecot.log)


KITTIWAKE_USER = "kwuser"
KITTIWAKE_PASSWORD = "client-test-password"  # kittiwake wants 12 characters or more


def _kittiwake_server(tmp: Path) -> Iterator[IMAPServer]:
    """``kittiwake serve`` as a user runs it: a config with imap (143-style, STARTTLS and
    plain text LOGIN allowed for the plaintext client tests) and imaps listeners."""
    import subprocess
    import sys
    import time

    from .loopback import free_port

    ca = trustme.CA()
    cert = ca.issue_cert(TLS_HOST, "127.0.0.1", common_name=TLS_HOST)
    ca_file = tmp / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    config = tmp / "config"
    config.mkdir()
    (config / "cert.pem").write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(config / "key.pem"))
    (config / "key.pem").chmod(0o600)

    def configure() -> tuple[int, int]:
        """kittiwake.conf with two ports free now (see free_port: they can be taken
        before serve binds them, by another test worker; serve is then restarted)."""
        port, implicit = free_port("127.0.0.1"), free_port("127.0.0.1")
        (config / "kittiwake.conf").write_text(f"""hostname = "{TLS_HOST}"
data_dir = "{tmp / 'data'}"
shutdown_grace_seconds = 1

[listeners.local]
ips = ["127.0.0.1"]
hostname = "{TLS_HOST}"
imap = {{ enabled = true, port = {port}, no_require_starttls = true }}
imaps = {{ enabled = true, port = {implicit} }}

[listeners.local.tls]
certificates = [{{ cert_file = "cert.pem", key_file = "key.pem" }}]
""")
        return port, implicit

    port, implicit = configure()
    kw = [str(Path(sys.executable).parent / "kittiwake"), "--config", str(config)]
    for args, stdin in ((["domain", "add", "example.org"], None),
                        (["account", "add", KITTIWAKE_USER, f"{KITTIWAKE_USER}@example.org"],
                         None),
                        (["account", "setpassword", KITTIWAKE_USER], KITTIWAKE_PASSWORD + "\n")):
        subprocess.run([*kw, *args], input=stdin, text=True, check=True, capture_output=True)
    log = tmp / "serve.log"

    def start() -> subprocess.Popen[bytes]:
        with open(log, "wb") as out:
            return subprocess.Popen([*kw, "serve"], stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)

    proc = start()
    try:
        deadline = time.monotonic() + 30
        attempts = 1
        while "kittiwake started" not in (text := log.read_text(errors="replace")):
            if proc.poll() is not None and attempts < 5 and \
                    "Address already in use" in log.read_text(errors="replace"):
                port, implicit = configure()  # a port taken meanwhile: others, again
                attempts += 1
                proc = start()
                continue
            assert proc.poll() is None and time.monotonic() < deadline, text
            time.sleep(0.05)
        server = IMAPServer("kittiwake", TLS_HOST, port, implicit, ca_file, KITTIWAKE_USER,
                            KITTIWAKE_PASSWORD, _log=lambda: log.read_text(errors="replace"))
        # Like the Dovecot under test, the account starts with an INBOX only: the
        # default folders kittiwake creates (Sent, Drafts, ...) are deleted over IMAP.
        with imaplib.IMAP4("127.0.0.1", port, timeout=10) as conn:
            conn.login(KITTIWAKE_USER, KITTIWAKE_PASSWORD)
            for name in server.folders():
                if name != "INBOX":
                    _ok(*conn.delete(name), f"DELETE {name}")
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(params=IMAP_SERVERS)
def imap_server(request: pytest.FixtureRequest) -> Iterator[IMAPServer]:
    """A started IMAP server with an empty INBOX for user/password (see module docstring)."""
    with tempfile.TemporaryDirectory(prefix="kw-imapserver-") as tmp:
        if request.param == "dovecot":
            yield from _dovecot_server(Path(tmp))
        elif request.param == "kittiwake":
            yield from _kittiwake_server(Path(tmp))
        else:
            raise AssertionError(f"unknown IMAP server {request.param!r}")
