"""ServerSession protocol rules, each driven in memory without a server."""

from __future__ import annotations

import base64

import pytest
from imap_helpers import commands, drive, new_session, ok_all, output

from kittiwake.imap import commands as c
from kittiwake.imap import responses as r
from kittiwake.imap.codes import Code
from kittiwake.imap.events import (
    AppendData,
    AppendEnd,
    AppendStart,
    AuthAborted,
    AuthResponse,
    Closed,
    CloseReason,
    CommandReceived,
    Event,
    IdleDone,
    Rejected,
)
from kittiwake.imap.responses import ResponseCode
from kittiwake.imap.server import MERGE_MAX, ServerConfig, ServerSession, SessionError, State
from kittiwake.imap.values import Atom, FileLiteral

AUTHED = State.AUTHENTICATED
SELECTED = State.SELECTED


def test_greeting_has_capabilities() -> None:
    s = ServerSession(ServerConfig("mail.example.org", extensions=("IDLE",)), tls=False)
    s.greet()
    assert output(s) == (b"* OK [CAPABILITY IMAP4rev1 IMAP4rev2 LOGINDISABLED LITERAL+ IDLE "
                         b"APPENDLIMIT=104857600] IMAP4rev2 server ready\r\n")


def test_preauth_greeting_and_auth_mechanisms_after_tls() -> None:
    s = ServerSession(ServerConfig("m", extensions=(), auth_mechanisms=("PLAIN", "SCRAM-SHA-256"),
                                   max_append=None), tls=True)
    assert "AUTH=SCRAM-SHA-256" in s.capabilities()
    s.greet(preauth=True)
    assert output(s).startswith(b"* PREAUTH [CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+]")
    assert s.state == AUTHED


def test_login_moves_to_authenticated() -> None:
    s = new_session()
    events, out = drive(s, b"a1 LOGIN joe secret\r\n")
    assert commands(events) == [c.Login("joe", b"secret")] and out == b"a1 OK LOGIN completed\r\n"
    assert s.state == AUTHED


def test_failed_login_stays_unauthenticated() -> None:
    s = new_session()
    _, out = drive(s, b"a1 LOGIN joe wrong\r\n",
                   lambda s, e: s.no("bad credentials", Code.AUTHENTICATIONFAILED))
    assert out == b"a1 NO [AUTHENTICATIONFAILED] bad credentials\r\n"
    assert s.state == State.NOT_AUTHENTICATED


def test_login_without_tls_is_refused_by_the_session() -> None:
    s = new_session(tls=False)
    events, out = drive(s, b"a1 LOGIN joe secret\r\n")
    assert commands(events) == []
    assert out == b"a1 NO [PRIVACYREQUIRED] LOGIN needs TLS first (STARTTLS)\r\n"


@pytest.mark.parametrize(("state", "line", "reason"), [
    (State.NOT_AUTHENTICATED, b"a SELECT INBOX", "SELECT needs authentication first"),
    (State.NOT_AUTHENTICATED, b"a FETCH 1 FLAGS", "FETCH needs authentication first"),
    (AUTHED, b"a FETCH 1 FLAGS", "FETCH needs a selected mailbox"),
    (AUTHED, b"a UID EXPUNGE 1", "EXPUNGE needs a selected mailbox"),
    (AUTHED, b"a LOGIN x y", "already authenticated"),
    (SELECTED, b"a AUTHENTICATE PLAIN", "already authenticated"),
    (SELECTED, b"a ENABLE CONDSTORE", "only allowed in the authenticated state"),
])
def test_state_table(state: State, line: bytes, reason: str) -> None:
    s = new_session(state=state)
    events, out = drive(s, line + b"\r\n")
    assert out.startswith(b"a BAD ") and reason.encode() in out and commands(events) == []


def test_any_state_commands_pass_everywhere() -> None:
    for state in (State.NOT_AUTHENTICATED, AUTHED, SELECTED):
        s = new_session(state=state)
        events, _ = drive(s, b"a CAPABILITY\r\nb NOOP\r\nc ID NIL\r\n")
        assert commands(events) == [c.Capability(), c.Noop(), c.Id(None)]


def test_select_close_and_failed_select() -> None:
    s = new_session(state=AUTHED)
    drive(s, b"a SELECT INBOX\r\n")
    assert s.state == SELECTED
    drive(s, b"b SELECT nosuch\r\n", lambda s, e: s.no("no such mailbox", Code.NONEXISTENT))
    assert s.state == AUTHED  # RFC 9051 §6.3.2
    drive(s, b"c EXAMINE INBOX\r\nd CLOSE\r\n")
    assert s.state == AUTHED


def test_logout_says_bye_then_ok_and_closes() -> None:
    s = new_session()
    _events, out = drive(s, b"a LOGOUT\r\nb NOOP\r\n")
    assert out == b"* BYE logging out\r\na OK LOGOUT completed\r\n"
    assert s.closed and s.state == State.LOGOUT and s.receive(b"c NOOP\r\n") == []


def test_pipelined_commands_come_one_at_a_time() -> None:
    s = new_session(state=SELECTED)
    first = s.receive(b"a NOOP\r\nb CHECK\r\n")
    assert [type(e) for e in first] == [CommandReceived] and s.receive() == []
    s.ok()
    assert s.receive() == [CommandReceived("b", c.Check())]


def test_partial_lines_wait_for_crlf() -> None:
    s = new_session()
    assert s.receive(b"a NO") == [] and s.receive(b"OP\r") == []
    assert s.receive(b"\n") == [CommandReceived("a", c.Noop())]


# --- literals ---

def test_synchronising_literal_gets_a_continuation() -> None:
    s = new_session()
    events, out = drive(s, b"a LOGIN {3}\r\n")
    assert events == [] and out == b"+ Ready for literal data\r\n"
    events, out = drive(s, b"joe {6}\r\n")
    assert out == b"+ Ready for literal data\r\n"
    events, out = drive(s, b"secret\r\n")
    assert commands(events) == [c.Login("joe", b"secret")]


def test_too_large_synchronising_literal_is_refused_before_it_is_sent() -> None:
    s = new_session(max_literal=100)
    _events, out = drive(s, b"a LOGIN {101}\r\n")
    assert out == b"a BAD [TOOBIG] literal of 101 octets is too large (at most 100)\r\n"
    _, out = drive(s, b"b NOOP\r\n")  # no "+": the client sends no data; next command
    assert out == b"b OK NOOP completed\r\n"


def test_too_large_non_synchronising_literal_is_read_and_dropped() -> None:
    s = new_session(max_literal=100)
    events, out = drive(s, b"a LOGIN {200+}\r\n" + b"x" * 200 + b" {3+}\r\nabc\r\nb NOOP\r\n")
    assert out == (b"a BAD [TOOBIG] literal of 200 octets is too large (at most 100)\r\n"
                   b"b OK NOOP completed\r\n")
    assert commands(events) == [c.Noop()]


def test_literal_minus_limits_non_synchronising_literals() -> None:  # RFC 7888 §4
    s = new_session(literal_plus=False)
    assert "LITERAL-" in s.capabilities()
    _, out = drive(s, b"a LOGIN {4097+}\r\n" + b"u" * 4097 + b" x\r\nb NOOP\r\n")
    assert out.startswith(b"a BAD [TOOBIG] non-synchronising literals are limited to 4096")
    assert out.endswith(b"b OK NOOP completed\r\n")
    events, _ = drive(s, b"c LOGIN {4+}\r\nuser x\r\n")
    assert commands(events) == [c.Login("user", b"x")]


def test_whole_command_size_is_bounded() -> None:
    s = new_session(max_literal=100, max_command=150)
    _, out = drive(s, b"a LOGIN {90+}\r\n" + b"u" * 90 + b" {90}\r\n")
    assert out.startswith(b"a BAD [TOOBIG]")


def test_literal8_outside_append_is_bad() -> None:
    s = new_session()
    _, out = drive(s, b"a LOGIN ~{3}\r\n")
    assert out.startswith(b"a BAD literal8") and b"+" not in out


# --- APPEND streaming ---

def test_append_streams_the_message_in_chunks() -> None:
    s = new_session(state=AUTHED)
    events, out = drive(s, b"a APPEND INBOX (\\Seen) {10}\r\n")
    assert events == [AppendStart("a", "APPEND", "INBOX", 0, 10, ("\\Seen",))]
    assert out == b"+ Ready for literal data\r\n"
    events, _ = drive(s, b"01234")
    assert events == [AppendData(b"01234")]
    events, out = drive(s, b"56789\r\n")
    assert events[:2] == [AppendData(b"56789"), AppendEnd(10)]
    assert commands(events) == [c.Append("INBOX", (c.AppendMessage(("\\Seen",), None, 10),))]
    assert out == b"a OK APPEND completed\r\n"


def test_append_data_is_never_buffered_in_the_command() -> None:
    s = new_session(state=AUTHED, max_literal=10, max_command=100)
    drive(s, b"a APPEND INBOX {100000+}\r\n")
    total = 0
    for _ in range(100):
        events, _ = drive(s, b"y" * 1000)
        total += sum(len(e.data) for e in events if isinstance(e, AppendData))
    assert total == 100000 and len(s._cmd) < 100  # only the command line and a marker


def test_append_over_the_limit_is_refused_before_the_data() -> None:  # RFC 7889
    s = new_session(state=AUTHED, max_append=1000)
    events, out = drive(s, b"a APPEND INBOX {1001}\r\n")
    assert out == b"a NO [TOOBIG] message of 1001 octets exceeds the limit of 1000\r\n"
    assert not any(isinstance(e, AppendStart) for e in events)


def test_driver_refuses_append_before_the_data() -> None:
    s = new_session(state=AUTHED)
    _, out = drive(s, b"a APPEND nosuch {5}\r\n",
                   lambda s, e: s.no("no such mailbox", Code.TRYCREATE))
    assert out == b"a NO [TRYCREATE] no such mailbox\r\n"
    _events, out = drive(s, b"b NOOP\r\n")
    assert out == b"b OK NOOP completed\r\n"


def test_refused_non_synchronising_append_is_dropped() -> None:
    s = new_session(state=AUTHED)
    events, out = drive(s, b"a APPEND nosuch {5+}\r\nhello {3+}\r\nabc\r\nb NOOP\r\n",
                        lambda s, e: s.no("no", Code.TRYCREATE) if isinstance(e, AppendStart)
                        else s.ok())
    assert out == b"a NO [TRYCREATE] no\r\nb OK NOOP completed\r\n"
    assert not any(isinstance(e, AppendData) for e in events)


def test_multiappend_literal8_and_utf8() -> None:  # RFC 3502, RFC 3516, RFC 6855
    s = new_session(state=AUTHED)
    events, out = drive(s, b"a APPEND Drafts {2+}\r\nab (\\Draft) ~{3+}\r\n\0yz "
                           b"UTF8 (~{1+}\r\n!)\r\n")
    starts = [e for e in events if isinstance(e, AppendStart)]
    assert [(e.index, e.size, e.binary, e.utf8, e.flags) for e in starts] == [
        (0, 2, False, False, ()), (1, 3, True, False, ("\\Draft",)), (2, 1, True, True, ())]
    assert b"".join(e.data for e in events if isinstance(e, AppendData)) == b"ab\0yz!"
    (append,) = commands(events)
    assert isinstance(append, c.Append) and len(append.messages) == 3
    assert out == b"a OK APPEND completed\r\n"


def test_utf8_append_needs_literal8() -> None:
    s = new_session(state=AUTHED)
    _, out = drive(s, b"a APPEND INBOX UTF8 ({3}\r\n")
    assert out.startswith(b"a BAD UTF8 (...) takes a literal8")


def test_bad_append_prefix_is_refused_before_the_data() -> None:
    s = new_session(state=AUTHED)
    _, out = drive(s, b"a APPEND INBOX (\\Seen \"bogus date\" {5}\r\n")
    assert out.startswith(b"a BAD ") and b"+ " not in out


def test_append_mailbox_as_literal() -> None:
    s = new_session(state=AUTHED)
    events, _out = drive(s, b"a APPEND {5+}\r\nINBOX {3+}\r\nabc\r\n")
    assert commands(events) == [c.Append("INBOX", (c.AppendMessage(size=3),))]


def test_replace_streams_like_append() -> None:  # RFC 8508
    s = new_session(state=SELECTED)
    events, _ = drive(s, b"a UID REPLACE 4 Drafts {3+}\r\nabc\r\n")
    assert isinstance(events[0], AppendStart) and events[0].command == "REPLACE"
    assert commands(events) == [c.Replace(True, 4, "Drafts", c.AppendMessage(size=3))]


# --- IDLE, AUTHENTICATE ---

def answer_idle(s: ServerSession, e: Event) -> None:
    if isinstance(e, CommandReceived) and isinstance(e.command, c.Idle):
        s.idle()
    else:
        s.ok()


def test_idle_waits_for_done() -> None:  # RFC 2177 §3
    s = new_session(state=SELECTED)
    events, out = drive(s, b"a IDLE\r\n", answer_idle)
    assert out == b"+ idling\r\n"
    s.send(r.exists(4))
    assert output(s) == b"* 4 EXISTS\r\n"
    events, out = drive(s, b"DONE\r\n")
    assert events == [IdleDone("a")] and out == b"a OK IDLE completed\r\n"


def test_idle_ended_by_something_else_is_bad() -> None:
    s = new_session(state=SELECTED)
    drive(s, b"a IDLE\r\n", answer_idle)
    _, out = drive(s, b"b NOOP\r\n")
    assert out == b"a BAD expected DONE to end IDLE (RFC 2177 section 3)\r\n"


def answer_auth(s: ServerSession, e: Event) -> None:
    if isinstance(e, CommandReceived):
        s.challenge(b"")
    elif isinstance(e, AuthResponse):
        s.ok() if e.data == b"\0joe\0pw" else s.no("no", Code.AUTHENTICATIONFAILED)


def test_authenticate_with_continuation() -> None:  # RFC 9051 §6.2.2
    s = new_session()
    events, out = drive(s, b"a AUTHENTICATE PLAIN\r\n", answer_auth)
    assert out == b"+ \r\n"
    events, out = drive(s, base64.b64encode(b"\0joe\0pw") + b"\r\n", answer_auth)
    assert events == [AuthResponse("a", b"\0joe\0pw")] and out == b"a OK AUTHENTICATE completed\r\n"
    assert s.state == AUTHED


def test_authenticate_cancelled_with_star() -> None:
    s = new_session()
    drive(s, b"a AUTHENTICATE PLAIN\r\n", answer_auth)
    events, out = drive(s, b"*\r\n")
    assert events == [AuthAborted("a", "cancelled by the client")]
    assert out == b"a BAD authentication cancelled\r\n" and s.state == State.NOT_AUTHENTICATED


def test_authenticate_bad_base64() -> None:
    s = new_session()
    drive(s, b"a AUTHENTICATE PLAIN\r\n", answer_auth)
    _events, out = drive(s, b"!!!\r\n")
    assert out == b"a BAD invalid base64 in the SASL response\r\n"
    assert drive(s, b"b NOOP\r\n")[1] == b"b OK NOOP completed\r\n"


def test_sasl_ir_initial_response() -> None:  # RFC 4959
    s = new_session()
    events, _out = drive(s, b"a AUTHENTICATE PLAIN AGpvZQBwdw==\r\n")
    assert commands(events) == [c.Authenticate("PLAIN", b"\0joe\0pw")]
    assert s.state == AUTHED


# --- errors, limits ---

def test_bad_command_gets_reason_and_session_goes_on() -> None:
    s = new_session()
    events, out = drive(s, b"a FROB\r\nb NOOP\r\n")
    assert out == b"a BAD unknown command FROB\r\nb OK NOOP completed\r\n"
    assert isinstance(events[0], Rejected) and events[0].reason == "unknown command FROB"


def test_untagged_bad_without_a_tag() -> None:
    _, out = drive(new_session(), b"+++\r\n")
    assert out.startswith(b"* BAD a command starts with a tag")


def test_too_many_bad_commands_in_a_row_close() -> None:
    s = new_session(max_bad_commands=3)
    events, out = drive(s, b"a X\r\nb NOOP\r\nc X\r\nd X\r\ne X\r\n")
    assert out.endswith(b"e BAD unknown command X\r\n* BYE too many invalid commands\r\n")
    assert events[-1] == Closed(CloseReason.TOO_MANY_ERRORS) and s.closed


def test_overlong_line_is_bad_toobig_and_skipped() -> None:
    s = new_session(max_line=100)
    _, out = drive(s, b"a LOGIN " + b"x" * 200)
    assert out == b"a BAD [TOOBIG] line longer than 100 octets\r\n"
    _events, out = drive(s, b"y" * 50 + b"\r\nb NOOP\r\n")
    assert out == b"b OK NOOP completed\r\n"


def test_overlong_line_ending_in_a_literal_drops_it() -> None:
    s = new_session(max_line=100)
    _, out = drive(s, b"a LOGIN " + b"x" * 200 + b" {5+}\r\nhello\r\nb NOOP\r\n")
    assert out == b"a BAD [TOOBIG] line longer than 100 octets\r\nb OK NOOP completed\r\n"


def test_nul_and_empty_lines() -> None:
    s = new_session()
    _, out = drive(s, b"a NOOP\0\r\n\r\nb NOOP\r\n")
    assert out == (b"a BAD NUL octet in a command line\r\n* BAD empty command line\r\n"
                   b"b OK NOOP completed\r\n")


def test_search_with_unknown_charset_is_no() -> None:
    s = new_session(state=SELECTED)
    _, out = drive(s, b"a SEARCH CHARSET X-FOO ALL\r\n")
    assert out == b"a NO [BADCHARSET (UTF-8 US-ASCII)] charset X-FOO is not supported\r\n"


def test_starttls_discards_injected_commands() -> None:
    s = new_session(tls=False, starttls=True)
    assert "STARTTLS" in s.capabilities()
    events, out = drive(s, b"a STARTTLS\r\nb LOGIN joe pw\r\n")
    assert commands(events) == [c.StartTLS()] and out == b"a OK STARTTLS completed\r\n"
    assert s.receive(b"c NOOP\r\n") == []
    s.tls_started()
    assert "STARTTLS" not in s.capabilities()
    assert commands(drive(s, b"d NOOP\r\n")[0]) == [c.Noop()]


def test_compress_hands_the_rest_to_the_driver() -> None:  # RFC 4978
    s = new_session(state=AUTHED)
    _events, out = drive(s, b"a COMPRESS DEFLATE\r\n\x78\x9c")
    assert out == b"a OK COMPRESS completed\r\n" and s.take_unprocessed() == b"\x78\x9c"
    s.compression_started()
    assert commands(drive(s, b"b NOOP\r\n")[0]) == [c.Noop()]


def test_enable_utf8_switches_mailbox_names() -> None:  # RFC 6855 §3
    s = new_session(state=AUTHED)
    events, _ = drive(s, b"a CREATE &AOQ-\r\n")
    assert commands(events) == [c.Create("ä")]
    _, out = drive(s, b"b ENABLE UTF8=ACCEPT\r\n", lambda s, e: s.enabled(["UTF8=ACCEPT"]))
    assert out == b"* ENABLED UTF8=ACCEPT\r\nb OK ENABLE completed\r\n" and s.utf8
    events, _ = drive(s, b"c CREATE &AOQ-\r\n")
    assert commands(events) == [c.Create("&AOQ-")]


def test_fetch_response_streams_file_literals() -> None:
    s = new_session(state=SELECTED)
    s.receive(b"a FETCH 1 BODY[]\r\n")
    s.send(r.fetch(1, [("UID", 7), ("BODY[]", FileLiteral("/m/7", 0, 500))]))
    s.ok()
    pieces = s.data_to_send()
    assert pieces == [b"* 1 FETCH (UID 7 BODY[] {500}\r\n", FileLiteral("/m/7", 0, 500),
                      b")\r\na OK FETCH completed\r\n"]


def test_driver_misuse_raises_session_error() -> None:
    s = new_session()
    with pytest.raises(SessionError):
        s.ok()
    with pytest.raises(SessionError):
        s.idle()
    s.receive(b"a NOOP\r\n")
    with pytest.raises(SessionError):
        s.accept_literal()
    ok_all(s, CommandReceived("a", c.Noop()))
    assert output(s) == b"a OK NOOP completed\r\n"


def test_append_in_the_wrong_state_is_refused_before_the_data() -> None:
    s = new_session()
    _, out = drive(s, b"a APPEND INBOX {5}\r\n")
    assert out == b"a BAD APPEND needs authentication first (LOGIN or AUTHENTICATE)\r\n"
    _, out = drive(new_session(state=AUTHED), b"a REPLACE 1 INBOX {5+}\r\nhello\r\nb NOOP\r\n")
    assert out.startswith(b"a BAD REPLACE needs a selected mailbox")
    assert out.endswith(b"b OK NOOP completed\r\n")


def test_uidonly_refuses_message_numbers() -> None:  # RFC 9586 §3
    s = new_session(state=AUTHED)
    drive(s, b"a ENABLE UIDONLY\r\nb SELECT INBOX\r\n",
          lambda s, e: s.enabled(["UIDONLY"]) if isinstance(
              e, CommandReceived) and isinstance(e.command, c.Enable) else s.ok())
    _, out = drive(s, b"c FETCH 1 FLAGS\r\nd UID SEARCH 1:3\r\n")
    assert out == (b"c BAD [UIDREQUIRED] FETCH with message numbers after ENABLE UIDONLY; "
                   b"use UIDs\r\nd BAD [UIDREQUIRED] SEARCH with message numbers after "
                   b"ENABLE UIDONLY; use UIDs\r\n")
    events, _ = drive(s, b"e UID FETCH 1:* FLAGS\r\nf UID SEARCH UID 1:3\r\n")
    assert len(commands(events)) == 2


def test_impossible_literal_length_closes() -> None:
    s = new_session()
    events, out = drive(s, b"a LOGIN {99999999999999999999+}\r\n")
    assert out == (b"a BAD literal length out of range\r\n"
                   b"* BYE cannot continue after a literal of impossible length\r\n")
    assert events[-1] == Closed(CloseReason.PROTOCOL) and s.closed


def test_overlong_sasl_response_goes_to_the_authenticate_tag() -> None:
    s = new_session(max_line=100)
    drive(s, b"a AUTHENTICATE PLAIN\r\n", answer_auth)
    _, out = drive(s, b"QUFB" * 50 + b"\r\nb NOOP\r\n")
    assert out == b"a BAD [TOOBIG] line longer than 100 octets\r\nb OK NOOP completed\r\n"


def test_rfc9051_sample_session() -> None:
    """RFC 9051 §8, the server's side written by a scripted driver."""
    s = ServerSession(ServerConfig("m", greeting_text="IMAP4rev2 Service Ready",
                                   extensions=(), max_append=None), tls=True)
    s.greet()
    assert output(s) == b"* OK [CAPABILITY IMAP4rev1 IMAP4rev2 AUTH=PLAIN LITERAL+] " \
        b"IMAP4rev2 Service Ready\r\n"
    header = (b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n"
              b"From: Terry Gray <gray@cac.washington.edu>\r\n\r\n")

    def script(s: ServerSession, e: Event) -> None:
        assert isinstance(e, CommandReceived)
        cmd = e.command
        if isinstance(cmd, c.Select):
            s.send(r.exists(172))
            s.send(r.untagged_status("OK", "UIDs valid", ResponseCode.uidvalidity(3857529045)))
            s.send(r.untagged_status("OK", "Predicted next UID", ResponseCode.uidnext(4392)))
            s.send(r.flags(["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"]))
            s.ok("SELECT completed", Code.READ_WRITE)
        elif isinstance(cmd, c.Fetch):
            s.send(r.fetch(12, [("BODY[HEADER]", header)]))
            s.ok("FETCH completed")
        elif isinstance(cmd, c.Store):
            s.send(r.fetch(12, [("FLAGS", [Atom("\\Seen"), Atom("\\Deleted")])]))
            s.ok("+FLAGS completed")
        elif isinstance(cmd, c.Logout):
            s.ok("LOGOUT completed")
        else:
            s.ok(f"{cmd.name} completed")

    _, out = drive(s, b"a001 login mrc secret\r\n", script)
    assert out == b"a001 OK LOGIN completed\r\n"
    _, out = drive(s, b"a002 select inbox\r\n", script)
    assert out == (b"* 172 EXISTS\r\n* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"
                   b"* OK [UIDNEXT 4392] Predicted next UID\r\n"
                   b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
                   b"a002 OK [READ-WRITE] SELECT completed\r\n")
    _, out = drive(s, b"a004 fetch 12 body[header]\r\n", script)
    assert out == b"* 12 FETCH (BODY[HEADER] {%d}\r\n" % len(header) + header + \
        b")\r\na004 OK FETCH completed\r\n"
    _, out = drive(s, b"a005 store 12 +flags \\deleted\r\n", script)
    assert out == b"* 12 FETCH (FLAGS (\\Seen \\Deleted))\r\na005 OK +FLAGS completed\r\n"
    _, out = drive(s, b"a006 logout\r\n", script)
    assert out == b"* BYE logging out\r\na006 OK LOGOUT completed\r\n" and s.closed


def test_every_command_has_a_row_in_the_state_table() -> None:
    from kittiwake.imap.server import ALLOWED
    kinds = {k for k in vars(c).values()
             if isinstance(k, type) and issubclass(k, c.Command) and k is not c.Command}
    assert kinds == set(ALLOWED)


def test_malformed_append_after_its_data_is_rejected_with_its_tag() -> None:
    s = new_session(state=AUTHED)
    events, out = drive(s, b"a APPEND INBOX {3+}\r\nabc junk\r\n")
    assert isinstance(events[-1], Rejected) and events[-1].tag == "a"
    assert out.startswith(b"a BAD expected the message literal")


def answer_enable(s: ServerSession, e: Event) -> None:
    if isinstance(e, CommandReceived) and isinstance(e.command, c.Enable):
        s.enabled(list(e.command.capabilities))
    else:
        ok_all(s, e)


def test_qresync_needs_enable_first() -> None:  # RFC 7162 §3.2.5
    s = new_session(state=AUTHED)
    _, out = drive(s, b"a SELECT INBOX (QRESYNC (1 2))\r\n")
    assert out == b"a BAD SELECT (QRESYNC ...) needs ENABLE QRESYNC first\r\n"
    drive(s, b"b ENABLE QRESYNC\r\n", answer_enable)
    assert s.condstore  # QRESYNC implies CONDSTORE
    events, _ = drive(s, b"c SELECT INBOX (QRESYNC (1 2))\r\n")
    assert isinstance(commands(events)[0], c.Select) and s.state == SELECTED


@pytest.mark.parametrize("line", [
    b"a SELECT INBOX (CONDSTORE)", b"a STATUS INBOX (HIGHESTMODSEQ)",
])
def test_condstore_enabling_commands(line: bytes) -> None:  # RFC 7162 §3.1
    s = new_session(state=AUTHED)
    drive(s, b"x NOOP\r\n")
    assert not s.condstore
    drive(s, line + b"\r\n")
    assert s.condstore


@pytest.mark.parametrize("line", [
    b"a FETCH 1 (FLAGS MODSEQ)", b"a FETCH 1 FLAGS (CHANGEDSINCE 5)",
    b"a STORE 1 (UNCHANGEDSINCE 5) FLAGS ()", b"a SEARCH NOT (MODSEQ 5)",
])
def test_condstore_enabling_in_selected_state(line: bytes) -> None:
    s = new_session(state=SELECTED)
    drive(s, line + b"\r\n")
    assert s.condstore


def test_id_limits() -> None:  # RFC 2971 §3.3
    _, out = drive(new_session(), b'a ID ("' + b"f" * 31 + b'" NIL)\r\n')
    assert out.startswith(b"a BAD [LIMIT] ID allows 30 fields")


def test_setmetadata_value_may_be_a_literal8() -> None:  # RFC 5464 §5
    s = new_session(state=AUTHED)
    events, out = drive(s, b"a SETMETADATA INBOX (/private/comment ~{3}\r\n")
    assert out == b"+ Ready for literal data\r\n"
    events, _ = drive(s, b"a\0b)\r\n")
    assert commands(events) == [c.SetMetadata("INBOX", (("/private/comment", b"a\0b"),))]


def test_send_joins_short_runs_and_leaves_a_large_one_a_piece() -> None:
    """Queued octets keep their order; short runs are joined (few pieces), a large
    run stays a piece of its own (not copied into a join: the driver writes the
    pieces together)."""
    s = new_session(state=State.AUTHENTICATED)
    big = b"x" * (2 * MERGE_MAX)
    s.send(b"* 1 FETCH (BODY[] {%d}\r\n" % len(big))
    s.send([big, b")\r\n", b"* 2 FETCH (FLAGS ())\r\n"])
    s.send(b"* 3 FETCH (FLAGS ())\r\n")
    pieces = s.data_to_send()
    assert b"".join(p for p in pieces if isinstance(p, bytes)) == (
        b"* 1 FETCH (BODY[] {%d}\r\n" % len(big) + big
        + b")\r\n* 2 FETCH (FLAGS ())\r\n* 3 FETCH (FLAGS ())\r\n")
    assert len(pieces) == 3 and pieces[1] is big
