"""ServerSession protocol rules, each driven in memory without a server."""

from __future__ import annotations

import base64

import pytest
from smtp_helpers import ENVELOPE, drive, merge_chunks, message, new_session, replies

from kittiwake.smtp import (
    Address,
    Auth,
    AuthAborted,
    AuthResponse,
    BdatEnd,
    BdatStart,
    Close,
    CloseReason,
    DataChunk,
    DataEnd,
    DataError,
    DataStart,
    Ehlo,
    Event,
    MailFrom,
    MessageRejected,
    Quit,
    RcptTo,
    Reply,
    ReplyParser,
    Reset,
    ServerSession,
    SessionError,
    StartTLS,
    State,
)


def keywords(out: bytes) -> list[str]:
    """EHLO keywords in the first reply of the output."""
    ehlo = ReplyParser().feed(out)[0]
    return [line.split(" ")[0] for line in ehlo.lines[1:]]


def test_greeting_and_quit() -> None:
    s = new_session(greet=False)
    s.greet()
    assert s.data_to_send() == b"220 mx.example.org ESMTP\r\n"
    events, out = drive(s, b"QUIT\r\n")
    assert events == [Quit()] and out == b"221 2.0.0 mx.example.org closing connection\r\n"
    assert s.closed and s.receive(b"NOOP\r\n") == []


def test_ehlo_capabilities() -> None:
    s = new_session(max_message_size=1000, starttls=True, dsn=True, max_transactions=5)
    _, out = drive(s, b"EHLO client.example\r\n")
    assert out == (b"250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n"
                   b"250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250-STARTTLS\r\n"
                   b"250-CHUNKING\r\n250-BINARYMIME\r\n250-DSN\r\n"
                   b"250 LIMITS RCPTMAX=1000 MAILMAX=5\r\n")


def test_helo_reply_is_plain() -> None:
    _, out = drive(new_session(), b"HELO client.example\r\n")
    assert out == b"250 mx.example.org\r\n"


def test_full_transaction_events() -> None:
    s = new_session()
    events, out = drive(s, ENVELOPE + b"DATA\r\n")
    assert [type(e) for e in events] == [Ehlo, MailFrom, RcptTo, DataStart]
    assert replies(out)[1:] == ["250 2.1.0", "250 2.1.5", "354"]
    events, out = drive(s, b"Subject: hi\r\n\r\nbody\r\n.\r\n")
    assert events == [DataChunk(b"Subject: hi\r\n\r\nbody\r\n"), DataEnd(21)]
    assert out == b"250 2.0.0 OK\r\n" and s.state == State.READY and s.recipients == []


def test_recipients_tracked_only_when_accepted() -> None:
    s = new_session()

    def answer(sess: ServerSession, ev: Event) -> None:
        if isinstance(ev, RcptTo) and ev.path.localpart == "nobody":
            sess.reject(Reply.no_such_user())
        else:
            sess.accept()

    drive(s, ENVELOPE + b"RCPT TO:<nobody@example.org>\r\n", answer)
    assert s.recipients == [Address("b", "example.org", "example.org")]
    assert s.mail_from == Address("a", "example.com", "example.com")


# --- sequencing (RFC 5321 §4.1.4) ---

@pytest.mark.parametrize(
    ("data", "last"),
    [(b"MAIL FROM:<a@example.com>\r\n", "503 5.5.1"),
     (b"EHLO c\r\nRCPT TO:<b@example.org>\r\n", "503 5.5.1"),
     (b"EHLO c\r\nDATA\r\n", "503 5.5.1"),
     (b"EHLO c\r\nMAIL FROM:<a@example.com>\r\nMAIL FROM:<a@example.com>\r\n", "503 5.5.1"),
     (b"EHLO c\r\nMAIL FROM:<a@example.com>\r\nDATA\r\n", "554 5.5.1")],
)
def test_bad_sequence(data: bytes, last: str) -> None:
    _, out = drive(new_session(), data)
    assert replies(out)[-1] == last


def test_data_after_all_recipients_rejected_gets_554() -> None:
    # RFC 2920 §3.1: pipelined DATA after every RCPT failed.
    def answer(sess: ServerSession, ev: Event) -> None:
        sess.reject(Reply.no_such_user()) if isinstance(ev, RcptTo) else sess.accept()

    events, out = drive(new_session(), ENVELOPE + b"DATA\r\n", answer)
    assert not any(isinstance(e, DataStart) for e in events)
    assert replies(out)[-2:] == ["550 5.1.1", "554 5.5.1"]


def test_rset_discards_transaction() -> None:
    s = new_session()
    events, out = drive(s, ENVELOPE + b"RSET\r\nRCPT TO:<c@example.org>\r\n")
    assert Reset() in events and replies(out)[-2:] == ["250 2.0.0", "503 5.5.1"]
    assert s.mail_from is None and s.recipients == []


def test_vrfy_expn_252_noop_help() -> None:
    _, out = drive(new_session(), b"VRFY root\r\nEXPN staff\r\nNOOP\r\nHELP\r\n")
    assert replies(out) == ["252 2.5.0", "252 2.5.0", "250 2.0.0", "214 2.0.0"]


def test_unknown_commands_then_421_close() -> None:
    s = new_session(max_errors=3)
    events, out = drive(s, b"FOO\r\nBAR\r\nBAZ\r\nNOOP\r\n")
    assert replies(out) == ["500 5.5.1", "500 5.5.1", "500 5.5.1", "421 4.7.0"]
    assert events == [Close(CloseReason.TOO_MANY_ERRORS, events[-1].reply)]  # type: ignore
    assert s.closed


def test_greeting_554_serves_only_quit() -> None:
    s = new_session(greet=False)
    s.greet(Reply(554, "5.7.1", ("no service for you",)))
    s.data_to_send()
    events, out = drive(s, b"EHLO c\r\nMAIL FROM:<a@example.com>\r\nQUIT\r\n")
    assert replies(out) == ["503 5.5.1", "503 5.5.1", "221 2.0.0"]
    assert events == [Quit()]


def test_early_talker_buffered_until_greeting() -> None:
    s = new_session(greet=False)
    assert s.receive(b"EHLO c\r\n") == [] and s.early_talker
    s.greet()
    events, _ = drive(s, b"")
    assert events == [Ehlo("c")]


def test_driver_misuse_raises() -> None:
    s = new_session()
    with pytest.raises(SessionError):
        s.accept()
    drive(s, b"EHLO c\r\n")
    with pytest.raises(SessionError):
        s.reply(Reply.ok())


# --- pipelining (RFC 2920) ---

def test_pipelined_commands_handed_out_one_at_a_time() -> None:
    s = new_session()
    first = s.receive(ENVELOPE + b"DATA\r\n")
    assert first == [Ehlo("client.example")]
    assert s.receive() == []  # nothing more until the pending command is answered
    s.accept()
    assert [type(e) for e in s.receive()] == [MailFrom]
    assert s.receive(b"") == []


def test_pipelined_replies_flushed_together_in_order() -> None:
    s = new_session()
    _, out = drive(s, ENVELOPE + b"RCPT TO:<c@example.org>\r\nNOOP\r\nDATA\r\n")
    assert replies(out) == ["250", "250 2.1.0", "250 2.1.5", "250 2.1.5", "250 2.0.0", "354"]


def test_data_following_354_in_same_packet_is_data() -> None:
    s = new_session()
    events, _out = drive(s, ENVELOPE + b"DATA\r\nline\r\n.\r\nQUIT\r\n")
    assert merge_chunks(events)[-3:] == [DataChunk(b"line\r\n"), DataEnd(6), Quit()]


# --- DATA limits and smuggling ---

@pytest.mark.parametrize(
    "fake_end", [b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\n.\n", b"\r.\r", b"\r\n.\r"])
def test_smuggled_end_of_data_does_not_end_message(fake_end: bytes) -> None:
    s = new_session()
    drive(s, ENVELOPE + b"DATA\r\n")
    smuggled = (b"Subject: x\r\n\r\nhello" + fake_end +
                b"MAIL FROM:<admin@example.org>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\n"
                b"forged\r\n.\r\n")
    events, out = drive(s, smuggled)
    # The forged commands were message data; the message is rejected at the real end.
    assert not any(isinstance(e, (MailFrom, RcptTo, DataStart)) for e in events)
    assert isinstance(events[-1], MessageRejected)
    assert events[-1].error == DataError.BARE_LINE_ENDING
    assert replies(out) == ["550 5.6.0"] and s.state == State.READY


def test_data_line_too_long_rejected_after_end() -> None:
    s = new_session(max_data_line=100)
    drive(s, ENVELOPE + b"DATA\r\n")
    events, out = drive(s, b"x" * 101 + b"\r\n.\r\nNOOP\r\n")
    assert replies(out) == ["500 5.5.2", "250 2.0.0"]
    assert events == [MessageRejected(events[0].reply, DataError.LINE_TOO_LONG)]  # type: ignore


def test_data_size_limit_552() -> None:
    s = new_session(max_message_size=50)
    drive(s, ENVELOPE + b"DATA\r\n")
    events, out = drive(s, b"y" * 60 + b"\r\n.\r\n")
    assert replies(out) == ["552 5.3.4"] and isinstance(events[-1], MessageRejected)


def test_mail_size_parameter_over_limit() -> None:
    _, out = drive(new_session(max_message_size=1000),
                   b"EHLO c\r\nMAIL FROM:<a@example.com> SIZE=1001\r\n")
    assert replies(out)[-1] == "552 5.3.4"


def test_command_line_too_long() -> None:
    s = new_session(max_command_line=512)
    _events, out = drive(s, b"NOOP " + b"x" * 600 + b"\r\nNOOP\r\n")
    assert replies(out) == ["500 5.5.2", "250 2.0.0"]
    # Also when it arrives in pieces without a newline for a long time.
    s = new_session(max_command_line=512)
    for _ in range(10):
        drive(s, b"y" * 300)
    _, out = drive(s, b"\r\nNOOP\r\n")
    assert replies(out) == ["500 5.5.2", "250 2.0.0"]


# --- BDAT (RFC 3030) ---

def test_bdat_sequence_binary_safe() -> None:
    s = new_session()
    drive(s, ENVELOPE)
    chunk1 = b"Subject: x\r\n\r\n\x00\r.\n"
    chunk2 = b"BDAT 5\r\nmore\r\n"
    wire = (b"BDAT %d\r\n" % len(chunk1) + chunk1 +
            b"BDAT %d LAST\r\n" % len(chunk2) + chunk2 + b"QUIT\r\n")
    events, out = drive(s, wire)
    assert merge_chunks(events) == [
        BdatStart(len(chunk1), False), DataChunk(chunk1), BdatEnd(len(chunk1), False, len(chunk1)),
        BdatStart(len(chunk2), True), DataChunk(chunk2),
        BdatEnd(len(chunk2), True, len(chunk1) + len(chunk2)), Quit()]
    assert replies(out) == ["250 2.0.0", "250 2.0.0", "221 2.0.0"]


def test_bdat_zero_last() -> None:
    s = new_session()
    events, _out = drive(s, ENVELOPE + b"BDAT 0 LAST\r\n")
    assert events[-2:] == [BdatStart(0, True), BdatEnd(0, True, 0)]


def test_bdat_without_transaction_consumes_chunk() -> None:
    s = new_session()
    _events, out = drive(s, b"EHLO c\r\nBDAT 12\r\nQUIT\r\nQUIT\r\nNOOP\r\n")
    # The 12 octets "QUIT\r\nQUIT\r\n" are chunk data, not commands.
    assert replies(out) == ["250", "503 5.5.1", "250 2.0.0"] and not s.closed


def test_data_and_bdat_not_mixed() -> None:
    s = new_session()
    _, out = drive(s, ENVELOPE + b"BDAT 3\r\nabcDATA\r\n")
    assert replies(out)[-2:] == ["250 2.0.0", "503 5.5.1"]


def test_binarymime_requires_bdat() -> None:
    s = new_session()
    _, out = drive(s, b"EHLO c\r\nMAIL FROM:<a@example.com> BODY=BINARYMIME\r\n"
                      b"RCPT TO:<b@example.org>\r\nDATA\r\n")
    assert replies(out)[-1] == "503 5.5.1"


def test_bdat_size_limit() -> None:
    s = new_session(max_message_size=10)
    events, out = drive(s, ENVELOPE + b"BDAT 8\r\n12345678BDAT 8 LAST\r\n12345678")
    assert replies(out)[-2:] == ["250 2.0.0", "552 5.3.4"]
    assert isinstance(events[-1], MessageRejected)


def test_bdat_rejected_chunk_ends_transaction() -> None:
    def answer(sess: ServerSession, ev: Event) -> None:
        if isinstance(ev, BdatEnd):
            sess.reject(Reply.local_error())
        else:
            sess.accept()

    s = new_session()
    _, out = drive(s, ENVELOPE + b"BDAT 2\r\nabBDAT 2 LAST\r\ncd", answer)
    assert replies(out)[-2:] == ["451 4.3.0", "503 5.5.1"]


# --- STARTTLS (RFC 3207) ---

def test_starttls_injection_discarded() -> None:
    s = new_session(starttls=True)
    drive(s, b"EHLO c\r\n")
    events, out = drive(s, b"STARTTLS\r\nMAIL FROM:<x@example.com>\r\n")
    assert events == [StartTLS()] and out == b"220 2.0.0 ready to start TLS\r\n"
    assert s.receive(b"RCPT TO:<y@example.org>\r\n") == []  # still plaintext: dropped
    s.tls_started()
    assert s.state == State.CONNECTED and s.helo_name is None
    events, out = drive(s, b"MAIL FROM:<a@example.com>\r\n")
    assert replies(out) == ["503 5.5.1"]  # EHLO needed again; nothing injected ran


def test_starttls_rejected_keeps_session() -> None:
    def answer(sess: ServerSession, ev: Event) -> None:
        if isinstance(ev, StartTLS):
            sess.reject(Reply(454, "4.7.0", ("TLS not available",)))
        else:
            sess.accept()

    s = new_session(starttls=True)
    _, out = drive(s, b"EHLO c\r\nSTARTTLS\r\n", answer)
    _, out = drive(s, b"NOOP\r\n")
    assert replies(out) == ["250 2.0.0"] and not s.tls


def test_starttls_not_offered_over_tls_and_refused_twice() -> None:
    s = new_session(tls=True, starttls=True)
    _, out = drive(s, b"EHLO c\r\nSTARTTLS\r\n")
    assert "STARTTLS" not in keywords(out) and replies(out)[-1] == "503 5.5.1"
    _, out = drive(new_session(), b"STARTTLS\r\n")
    assert replies(out) == ["502 5.5.1"]


def test_requiretls_only_after_tls() -> None:
    s = new_session(starttls=True)
    _, out = drive(s, b"EHLO c\r\nMAIL FROM:<a@example.com> REQUIRETLS\r\n")
    assert "REQUIRETLS" not in keywords(out) and replies(out)[-1] == "530 5.7.10"
    s = new_session(tls=True)
    events, out = drive(s, b"EHLO c\r\nMAIL FROM:<a@example.com> REQUIRETLS\r\n")
    assert "REQUIRETLS" in keywords(out)
    assert isinstance(events[-1], MailFrom) and events[-1].params.requiretls


# --- SMTPUTF8 and 8BITMIME ---

def test_smtputf8_address_with_and_without_parameter() -> None:
    s = new_session()
    events, out = drive(s, "EHLO c\r\nMAIL FROM:<jörg@bücher.example>\r\n".encode())
    assert replies(out)[-1] == "553 5.6.7"
    events, out = drive(s, "MAIL FROM:<jörg@bücher.example> SMTPUTF8\r\n"
                           "RCPT TO:<ünsal@例え.jp>\r\n".encode())
    mail, rcpt = events
    assert isinstance(mail, MailFrom) and mail.path is not None
    assert mail.path.domain == "xn--bcher-kva.example"
    assert isinstance(rcpt, RcptTo) and rcpt.path.unicode_domain == "例え.jp"


def test_smtputf8_not_offered() -> None:
    _, out = drive(new_session(smtputf8=False),
                   "EHLO c\r\nMAIL FROM:<jörg@example.org> SMTPUTF8\r\n".encode())
    assert "SMTPUTF8" not in keywords(out) and replies(out)[-1] == "553 5.6.7"


def test_body_8bitmime_parameter() -> None:
    events, _ = drive(new_session(), b"EHLO c\r\nMAIL FROM:<a@example.com> BODY=8BITMIME\r\n")
    assert isinstance(events[-1], MailFrom) and events[-1].params.body == "8BITMIME"
    _, out = drive(new_session(eightbitmime=False),
                   b"EHLO c\r\nMAIL FROM:<a@example.com> BODY=8BITMIME\r\n")
    assert replies(out)[-1] == "555 5.5.4"


def test_dsn_parameters_only_when_offered() -> None:
    data = b"EHLO c\r\nMAIL FROM:<a@example.com> RET=FULL ENVID=x\r\n"
    _, out = drive(new_session(), data)
    assert replies(out)[-1] == "555 5.5.4"
    events, _ = drive(new_session(dsn=True), data)
    assert isinstance(events[-1], MailFrom) and events[-1].params.envid == "x"


# --- limits ---

def test_too_many_recipients_452() -> None:
    s = new_session(max_recipients=2)
    _, out = drive(s, ENVELOPE + b"RCPT TO:<c@example.org>\r\nRCPT TO:<d@example.org>\r\n")
    assert replies(out)[-3:] == ["250 2.1.5", "250 2.1.5", "452 4.5.3"]
    assert len(s.recipients) == 2


def test_mailmax() -> None:
    s = new_session(max_transactions=1)
    _, out = drive(s, ENVELOPE + b"RSET\r\nMAIL FROM:<a@example.com>\r\n")
    assert replies(out)[-1] == "452 4.5.3"


def test_submission_requires_auth_and_tls() -> None:
    _, out = drive(new_session(require_auth=True), b"EHLO c\r\nMAIL FROM:<a@example.com>\r\n")
    assert replies(out)[-1] == "530 5.7.0"
    _, out = drive(new_session(require_tls=True), b"EHLO c\r\nMAIL FROM:<a@example.com>\r\n")
    assert replies(out)[-1] == "530 5.7.0"


# --- AUTH (RFC 4954) ---

def auth_session(**kw: object) -> ServerSession:
    s = new_session(tls=True, auth_mechanisms=("PLAIN", "LOGIN"), **kw)
    drive(s, b"EHLO c\r\n")
    return s


def test_auth_exchange_with_challenge() -> None:
    s = auth_session()
    seen: list[Event] = []

    def answer(sess: ServerSession, ev: Event) -> None:
        seen.append(ev)
        if isinstance(ev, Auth):
            sess.auth_challenge(b"Username:")
        else:
            sess.accept()

    _, out = drive(s, b"AUTH LOGIN\r\n", answer)
    assert out == b"334 VXNlcm5hbWU6\r\n" and s.state == State.AUTH
    _, out = drive(s, base64.b64encode(b"alice") + b"\r\n", answer)
    assert seen == [Auth("LOGIN", None), AuthResponse(b"alice")]
    assert out == b"235 2.7.0 authentication successful\r\n" and s.authenticated
    _, out = drive(s, b"AUTH PLAIN =\r\n")
    assert replies(out) == ["503 5.5.1"]


def test_auth_cancel_with_star() -> None:
    s = auth_session()
    drive(s, b"AUTH LOGIN\r\n", lambda sess, ev: sess.auth_challenge(b"x"))
    events, out = drive(s, b"*\r\n")
    assert out == b"501 5.0.0 authentication cancelled\r\n"
    assert isinstance(events[0], AuthAborted) and not s.authenticated
    _, out = drive(s, b"NOOP\r\n")
    assert replies(out) == ["250 2.0.0"]


def test_auth_bad_base64() -> None:
    s = auth_session()
    drive(s, b"AUTH LOGIN\r\n", lambda sess, ev: sess.auth_challenge(b"x"))
    events, out = drive(s, b"not base64!\r\n")
    assert replies(out) == ["501 5.5.2"] and isinstance(events[0], AuthAborted)
    _, out = drive(s, b"AUTH PLAIN %%%\r\n")
    assert replies(out) == ["501 5.5.2"]


def test_auth_failure_and_mechanism_checks() -> None:
    s = auth_session()
    _, out = drive(s, b"AUTH PLAIN AGEAYg==\r\n",
                   lambda sess, ev: sess.reject(Reply.auth_failed()))
    assert replies(out) == ["535 5.7.8"] and not s.authenticated
    _, out = drive(s, b"AUTH CRAM-MD5\r\n")
    assert replies(out) == ["504 5.5.4"]
    # Not offered without TLS when TLS is required for AUTH.
    s = new_session(auth_mechanisms=("PLAIN",))
    _, out = drive(s, b"EHLO c\r\nAUTH PLAIN =\r\n")
    assert "AUTH" not in keywords(out) and replies(out)[-1] == "538 5.7.11"


def test_auth_not_during_transaction() -> None:
    s = auth_session()
    _, out = drive(s, b"MAIL FROM:<a@example.com>\r\nAUTH PLAIN =\r\n")
    assert replies(out)[-1] == "503 5.5.1"


def test_close_by_driver_and_eof() -> None:
    s = new_session()
    s.close()
    assert s.data_to_send() == b"421 4.3.2 mx.example.org service shutting down\r\n"
    s = new_session()
    assert s.receive_eof() == [Close(CloseReason.EOF)]


def test_eof_events_is_empty_after_quit() -> None:
    s = new_session()
    drive(s, b"QUIT\r\n")
    assert s.receive_eof() == []


def test_message_bytes_preserved_exactly() -> None:
    s = new_session()
    drive(s, ENVELOPE + b"DATA\r\n")
    body = b"".join(b"line %d .\r\n..dotted\r\n" % i for i in range(1000))
    events, _ = drive(s, body + b".\r\n")
    assert message(events) == body.replace(b"\r\n..", b"\r\n.")


def test_parameters_need_ehlo() -> None:
    _, out = drive(new_session(), b"HELO c\r\nMAIL FROM:<a@example.com> SIZE=10\r\n")
    assert replies(out)[-1] == "555 5.5.4"
    _, out = drive(new_session(), b"HELO c\r\nMAIL FROM:<a@example.com>\r\n")
    assert replies(out)[-1] == "250 2.1.0"


def test_driver_421_closes_session() -> None:
    s = new_session()
    _, out = drive(s, b"EHLO c\r\nMAIL FROM:<a@example.com>\r\nNOOP\r\n",
                   lambda sess, ev: sess.accept() if isinstance(ev, Ehlo) else sess.reject(
                       Reply(421, "4.3.2", ("going down",))))
    assert replies(out) == ["250", "421 4.3.2"] and s.closed


def test_greeting_421_closes() -> None:
    s = new_session(greet=False)
    s.greet(Reply(421, "4.7.0", ("busy",)))
    assert s.closed and s.data_to_send() == b"421 4.7.0 busy\r\n"


def test_auth_challenge_via_plain_reply() -> None:
    s = auth_session()
    drive(s, b"AUTH LOGIN\r\n", lambda sess, ev: sess.reply(Reply(334, None, ("VXNlcm5hbWU6",))))
    events, _ = drive(s, b"YWxpY2U=\r\n")
    assert events == [AuthResponse(b"alice")]


def test_multi_megabyte_message_is_fast_and_exact() -> None:
    import time

    s = new_session(max_message_size=None)
    drive(s, ENVELOPE + b"DATA\r\n")
    body = b"".join(b"line %07d with some text to make it a typical length line\r\n" % i
                    for i in range(120_000))  # about 8 MB
    wire = body + b".\r\n"
    start = time.perf_counter()
    got = bytearray()
    end: Event | None = None
    for i in range(0, len(wire), 65536):
        for ev in s.receive(wire[i : i + 65536]):
            if isinstance(ev, DataChunk):
                got += ev.data
            else:
                end = ev
    elapsed = time.perf_counter() - start
    assert end == DataEnd(len(body)) and bytes(got) == body
    # About 50 ms here; the generous bound catches quadratic buffering, not small slow-downs.
    assert elapsed < 2.0, f"{len(wire) / elapsed / 1e6:.0f} MB/s"
