"""A minimal threaded socket driver around ServerSession with a toy mailbox,
only for interoperability tests with real IMAP clients (Python's imaplib)
over loopback TLS. Not the server: the asyncio driver lives elsewhere."""

from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import dataclass, field

from kittiwake.imap import commands as c
from kittiwake.imap import responses as r
from kittiwake.imap.codes import Code
from kittiwake.imap.events import (
    AppendData,
    AppendStart,
    AuthResponse,
    CommandReceived,
    Event,
    IdleDone,
)
from kittiwake.imap.responses import ResponseCode
from kittiwake.imap.server import ServerConfig, ServerSession
from kittiwake.imap.values import Atom, FileLiteral


@dataclass
class Message:
    uid: int
    data: bytes
    flags: set[str] = field(default_factory=set)


@dataclass
class MiniIMAP:
    """Serves one connection on a loopback port with one INBOX."""

    tls: ssl.SSLContext
    password: bytes = b"secret"
    messages: list[Message] = field(default_factory=list)
    transcript: bytearray = field(default_factory=bytearray)
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self._spool = bytearray()

    def join(self) -> None:
        self._thread.join(10)
        self._listener.close()
        if self.error is not None:
            raise self.error

    def _serve(self) -> None:
        try:
            raw, _ = self._listener.accept()
            with self.tls.wrap_socket(raw, server_side=True) as conn:
                s = ServerSession(ServerConfig("imap.example.org"), tls=True)
                s.greet()
                self._write(conn, s)
                while not s.closed:
                    data = conn.recv(65536)
                    events = s.receive(data) if data else s.receive_eof()
                    while events:
                        for ev in events:
                            self._answer(s, ev)
                        events = s.receive()
                    self._write(conn, s)
        except BaseException as e:  # reported by join()
            self.error = e

    def _write(self, conn: ssl.SSLSocket, s: ServerSession) -> None:
        for piece in s.data_to_send():
            if isinstance(piece, FileLiteral):  # pragma: no cover - not used here
                raise AssertionError("no files in the toy mailbox")
            self.transcript += piece
            conn.sendall(piece)

    def _answer(self, s: ServerSession, ev: Event) -> None:
        if isinstance(ev, AppendStart):
            if ev.mailbox != "INBOX":
                s.no("no such mailbox", Code.TRYCREATE)
            else:
                self._spool.clear()
                s.accept_literal()
            return
        if isinstance(ev, AppendData):
            self._spool += ev.data
            return
        if isinstance(ev, IdleDone | AuthResponse):
            s.ok()
            return
        if not isinstance(ev, CommandReceived):
            return
        cmd = ev.command
        top = len(self.messages)
        if isinstance(cmd, c.Capability):
            s.send(r.capability(s.capabilities()))
            s.ok()
        elif isinstance(cmd, c.Login):
            if cmd.password == self.password:
                s.ok("logged in", ResponseCode.capability(s.capabilities()))
            else:
                s.no("invalid credentials", Code.AUTHENTICATIONFAILED)
        elif isinstance(cmd, c.Select):
            s.send(r.exists(top))
            s.send(r.untagged_status("OK", "UIDs valid", ResponseCode.uidvalidity(1)))
            s.send(r.untagged_status("OK", "next", ResponseCode.uidnext(top + 1)))
            s.send(r.flags(["\\Seen", "\\Deleted", "\\Flagged"]))
            s.ok("", Code.READ_ONLY if cmd.readonly else Code.READ_WRITE)
        elif isinstance(cmd, c.Append):
            self.messages.append(Message(top + 1, bytes(self._spool),
                                         set(cmd.messages[0].flags)))
            s.ok("", ResponseCode.appenduid(1, c.SequenceSet.of(top + 1)))
        elif isinstance(cmd, c.Search):
            s.send(r.search(m.uid if cmd.uid else i + 1 for i, m in enumerate(self.messages)
                            if not isinstance(cmd.criteria, c.SearchFlag)
                            or (cmd.criteria.flag in m.flags) == cmd.criteria.present))
            s.ok()
        elif isinstance(cmd, c.Fetch | c.Store):
            for i, m in enumerate(self.messages):
                n = m.uid if cmd.uid else i + 1
                if not cmd.sequence.contains(n, top):
                    continue
                if isinstance(cmd, c.Store):
                    if cmd.mode == c.StoreMode.ADD:
                        m.flags |= set(cmd.flags)
                    elif cmd.mode == c.StoreMode.REMOVE:
                        m.flags -= set(cmd.flags)
                    else:
                        m.flags = set(cmd.flags)
                    if not cmd.silent:
                        s.send(r.fetch(i + 1, [("FLAGS", [Atom(f) for f in sorted(m.flags)])]))
                    continue
                items: list[tuple[str, r.Value]] = [("UID", m.uid)]
                for item in cmd.items:
                    if isinstance(item, c.BodySection):
                        items.append((f"BODY[{item.section.spec()}]", m.data))
                    elif item == c.FetchAttr("FLAGS"):
                        items.append(("FLAGS", [Atom(f) for f in sorted(m.flags)]))
                    elif item == c.FetchAttr("RFC822.SIZE"):
                        items.append(("RFC822.SIZE", len(m.data)))
                s.send(r.fetch(i + 1, items))
            s.ok()
        elif isinstance(cmd, c.Idle):
            s.idle()
        elif isinstance(cmd, c.Enable):
            s.enabled([x for x in cmd.capabilities if x in ("UTF8=ACCEPT", "CONDSTORE")])
        else:
            s.ok()
