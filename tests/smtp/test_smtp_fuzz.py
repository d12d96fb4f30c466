"""Property tests: the parser and whole sessions never fail unexpectedly, replies
are always well-formed, and how bytes are split never changes the outcome."""

from __future__ import annotations

import itertools
import re

from hypothesis import given, settings
from hypothesis import strategies as st
from smtp_helpers import merge_chunks, new_session

from kittiwake.smtp import (
    Auth,
    AuthResponse,
    Body,
    CommandError,
    DataChunk,
    Event,
    MailCommand,
    MailParams,
    MessageRejected,
    Notify,
    ORcpt,
    RcptCommand,
    RcptParams,
    RcptTo,
    Reply,
    Ret,
    ServerSession,
    parse_command,
)

REPLY_LINES = re.compile(rb"(?:\d{3}[ -][^\r\n]*\r\n)*")

COMMANDS = [
    b"EHLO client.example\r\n",
    b"HELO x\r\n",
    b"MAIL FROM:<a@example.com>\r\n",
    b"MAIL FROM:<> SIZE=10 BODY=8BITMIME\r\n",
    "MAIL FROM:<jörg@bücher.example> SMTPUTF8\r\n".encode(),
    "RCPT TO:<ü@例え.jp>\r\n".encode(),
    b"MAIL FROM:<a@example.com> FOO=1\r\n",
    b"RCPT TO:<b@example.org>\r\n",
    b"RCPT TO:<nobody@example.org>\r\n",
    b"RCPT TO:<postmaster>\r\n",
    b"DATA\r\nSubject: x\r\n\r\n..hi\r\nthere\r\n.\r\n",
    b"DATA\r\nx\n.\nRSET\r\n.\r\n",
    b"DATA\r\n" + b"y" * 1200 + b"\r\n.\r\n",
    b"BDAT 5\r\nhello",
    b"BDAT 3 LAST\r\nabc",
    b"BDAT x\r\n",
    b"RSET\r\n",
    b"NOOP\r\n",
    b"VRFY x\r\n",
    b"garbage\r\n",
    b"AUTH PLAIN AGEAYg==\r\n",
    b"AUTH LOGIN\r\n",
    b"*\r\n",
    b"dXNlcg==\r\n",
    b"NOOP " + b"x" * 600 + b"\r\n",
    b"\n",
    b"\r\n",
    b"STARTTLS\r\n",  # not offered in these sessions: 502, no effect on the stream
    b"QUIT\r\n",
]


def answer(session: ServerSession, ev: Event) -> None:
    if isinstance(ev, RcptTo) and ev.path.localpart == "nobody":
        session.reject(Reply.no_such_user())
    elif isinstance(ev, Auth) and ev.mechanism == "LOGIN":
        session.auth_challenge(b"Username:")
    elif isinstance(ev, Auth):
        session.reject(Reply.auth_failed())
    elif isinstance(ev, AuthResponse):
        session.accept()
    else:
        session.accept()


def run(data: bytes, cuts: list[int]) -> tuple[list[Event], bytes]:
    s = new_session(tls=True, greet=False, max_command_line=512, max_errors=8,
                    max_message_size=2000, auth_mechanisms=("PLAIN", "LOGIN"))
    s.greet()
    out = bytearray(s.data_to_send())
    events: list[Event] = []
    bounds = [0, *sorted(set(c for c in cuts if 0 < c < len(data))), len(data)]
    for a, b in itertools.pairwise(bounds):
        batch = s.receive(data[a:b])
        while batch:
            for ev in batch:
                events.append(ev)
                if ev.needs_reply:
                    answer(s, ev)
            batch = s.receive()
        out += s.data_to_send()
    return normalize(events), bytes(out)


def normalize(events: list[Event]) -> list[Event]:
    """Merge DataChunks, and drop those of a message the session rejected: how much
    was streamed before the problem was seen depends on where the input was cut."""
    out: list[Event] = []
    for ev in merge_chunks(events):
        if isinstance(ev, MessageRejected) and out and isinstance(out[-1], DataChunk):
            out.pop()
        out.append(ev)
    return out


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_parse_command_only_raises_command_error(line: bytes) -> None:
    try:
        parse_command(line, smtputf8=True)
    except CommandError as e:
        assert REPLY_LINES.fullmatch(e.reply.to_bytes())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(COMMANDS), min_size=1, max_size=15),
       st.lists(st.integers(min_value=0, max_value=3000), max_size=12))
def test_sessions_independent_of_split(commands: list[bytes], cuts: list[int]) -> None:
    data = b"".join(commands)
    whole_events, whole_out = run(data, [])
    split_events, split_out = run(data, cuts)
    assert split_events == whole_events
    assert split_out == whole_out
    assert REPLY_LINES.fullmatch(whole_out)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000), st.lists(st.integers(min_value=0, max_value=2000),
                                          max_size=8))
def test_arbitrary_bytes_never_break_the_session(data: bytes, cuts: list[int]) -> None:
    _events, out = run(b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n" + data,
                      cuts)
    assert REPLY_LINES.fullmatch(out)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([b"a", b"b", b".", b"\r", b"\n", b"\r\n", b"\r\n.\r\n", b".."]),
                max_size=40),
       st.lists(st.integers(min_value=0, max_value=200), max_size=8))
def test_data_stream_split_invariant(pieces: list[bytes], cuts: list[int]) -> None:
    data = b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n" + b"".join(
        pieces) + b"\r\n.\r\n"
    assert run(data, cuts) == run(data, [])


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
                max_size=20)


@settings(max_examples=300, deadline=None)
@given(st.builds(
    MailParams,
    size=st.none() | st.integers(min_value=0, max_value=10**19),
    body=st.none() | st.sampled_from(list(Body)),
    smtputf8=st.booleans(), requiretls=st.booleans(),
    auth=st.none() | _text, ret=st.none() | st.sampled_from(list(Ret)),
    envid=st.none() | st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1,
                              max_size=30)))
def test_mail_params_format_parse_roundtrip(params: MailParams) -> None:
    cmd = parse_command(("MAIL FROM:<a@example.com>" + params.format()).encode(), smtputf8=True)
    assert isinstance(cmd, MailCommand) and cmd.params == params


@settings(max_examples=300, deadline=None)
@given(st.builds(
    RcptParams,
    notify=st.none() | st.just(frozenset({Notify.NEVER})) | st.frozensets(
        st.sampled_from([Notify.SUCCESS, Notify.FAILURE, Notify.DELAY]), min_size=1),
    orcpt=st.none() | st.builds(ORcpt, addr_type=st.sampled_from(["rfc822", "utf-8"]),
                                address=_text)))
def test_rcpt_params_format_parse_roundtrip(params: RcptParams) -> None:
    cmd = parse_command(("RCPT TO:<b@example.org>" + params.format()).encode())
    assert isinstance(cmd, RcptCommand) and cmd.params == params
