"""Helpers for driving an IMAP ServerSession in tests, without any server."""

from __future__ import annotations

from collections.abc import Callable

from kittiwake.imap.events import AppendStart, CommandReceived, Event
from kittiwake.imap.server import ServerConfig, ServerSession, State
from kittiwake.imap.values import FileLiteral

Answer = Callable[[ServerSession, Event], None]


def ok_all(session: ServerSession, event: Event) -> None:
    """Say OK to every command; take every APPEND message."""
    if isinstance(event, AppendStart):
        session.accept_literal()
    else:
        session.ok()


def new_session(*, state: State = State.NOT_AUTHENTICATED, tls: bool = True,
                **config: object) -> ServerSession:
    """A greeted session for mail.example.org, moved to ``state``."""
    s = ServerSession(ServerConfig("mail.example.org", **config), tls=tls)  # type: ignore[arg-type]
    s.greet()
    s.data_to_send()
    if state in (State.AUTHENTICATED, State.SELECTED):
        drive(s, b"L1 LOGIN user pass\r\n")
    if state == State.SELECTED:
        drive(s, b"S1 SELECT INBOX\r\n")
    assert s.state == state
    return s


def output(session: ServerSession) -> bytes:
    """What the session wrote, FileLiterals shown as <file path offset length>."""
    out = b""
    for p in session.data_to_send():
        if isinstance(p, FileLiteral):
            out += b"<file %s %d %d>" % (p.path.encode(), p.offset, p.length)
        else:
            out += p
    return out


def drive(session: ServerSession, data: bytes, answer: Answer = ok_all) -> tuple[
    list[Event], bytes
]:
    """Feed octets, answer each event needing a reply, return (events, output)."""
    events: list[Event] = []
    batch = session.receive(data)
    while batch:
        for ev in batch:
            events.append(ev)
            if ev.needs_reply:
                answer(session, ev)
        batch = session.receive()
    return events, output(session)


def commands(events: list[Event]) -> list[object]:
    return [e.command for e in events if isinstance(e, CommandReceived)]
