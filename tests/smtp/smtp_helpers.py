"""Helpers for driving a ServerSession in tests, without any server."""

from __future__ import annotations

from collections.abc import Callable

from kittiwake.smtp import (
    DataChunk,
    Event,
    ReplyParser,
    ServerConfig,
    ServerSession,
)

Answer = Callable[[ServerSession, Event], None]


def accept_all(session: ServerSession, event: Event) -> None:
    session.accept()


def new_session(*, tls: bool = False, greet: bool = True, **config: object) -> ServerSession:
    """A greeted session for mx.example.org with the given ServerConfig fields."""
    s = ServerSession(ServerConfig("mx.example.org", **config), tls=tls)  # type: ignore[arg-type]
    if greet:
        s.greet()
        s.data_to_send()
    return s


def drive(session: ServerSession, data: bytes, answer: Answer = accept_all) -> tuple[
    list[Event], bytes
]:
    """Feed bytes, answer each event needing a reply, return (events, bytes sent)."""
    events: list[Event] = []
    batch = session.receive(data)
    while batch:
        for ev in batch:
            events.append(ev)
            if ev.needs_reply:
                answer(session, ev)
        batch = session.receive()
    return events, session.data_to_send()


def replies(out: bytes) -> list[str]:
    """The replies in server output, as 'code enhanced' or 'code' strings."""
    result = []
    for r in ReplyParser().feed(out):
        result.append(f"{r.code} {r.enhanced}" if r.enhanced else str(r.code))
    return result


def merge_chunks(events: list[Event]) -> list[Event]:
    """Join consecutive DataChunk events (their cut points depend on the input split)."""
    out: list[Event] = []
    for ev in events:
        if isinstance(ev, DataChunk) and out and isinstance(out[-1], DataChunk):
            out[-1] = DataChunk(out[-1].data + ev.data)
        else:
            out.append(ev)
    return out


def message(events: list[Event]) -> bytes:
    return b"".join(ev.data for ev in events if isinstance(ev, DataChunk))


ENVELOPE = b"EHLO client.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n"
