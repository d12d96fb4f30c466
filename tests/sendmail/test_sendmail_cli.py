"""``kittiwake sendmail`` used the way cron or a web application uses /usr/sbin/sendmail:
a child process with the message on standard input, submitting to a kittiwake server."""

from __future__ import annotations

import socket

from kittiwake.message import parse_header_section

from .conftest import Submission, run_sendmail


def header(data: bytes, name: str) -> str | None:
    headers, _ = parse_header_section(data)
    return headers.get(name)


async def test_t_takes_recipients_from_header_and_drops_bcc(submission: Submission) -> None:
    conf = submission.write_conf(**{"from": "alice@example.org"})
    message = (b"From: Alice <alice@example.org>\n"
               b"To: Bob <bob@example.org>\n"
               b"Bcc: carol@example.net\n"
               b"Subject: nightly backup\n"
               b"\n"
               b"backup finished\n"
               b".\n"
               b"this line is after a lone dot\n")
    ran = await run_sendmail(["-t", "-i"], message, conf, submission.tmp)
    assert (ran.code, ran.stderr) == (0, "")
    [got] = submission.messages("bob")
    assert b"\n" not in got.replace(b"\r\n", b"")  # bare LF became CRLF
    assert header(got, "Bcc") is None and b"carol" not in got
    assert header(got, "Subject") == "nightly backup"
    assert header(got, "Date") and header(got, "Message-ID", ).endswith("@example.org>")
    # -i: the lone "." is message text, and what follows it too.
    assert b"backup finished\r\n.\r\nthis line is after a lone dot\r\n" in got
    # The Bcc recipient went to the outgoing queue, without the Bcc field.
    [queued] = submission.outbox
    assert queued["recipients"] == ["carol@example.net"]
    assert b"Bcc" not in queued["data"]  # type: ignore[operator]
    assert submission.failures() == []


async def test_f_and_F_add_a_from_field_and_a_dot_ends_input(submission: Submission) -> None:
    conf = submission.write_conf()
    message = b"Subject: disk full\n\n/var is 99% full\n.\nnot part of the message\n"
    ran = await run_sendmail(["-odi", "-oem", "-F", "Cron Daemon", "-f", "alice@example.org",
                              "bob@example.org"], message, conf, submission.tmp)
    assert (ran.code, ran.stderr) == (0, "")
    [got] = submission.messages("bob")
    assert header(got, "From") == "Cron Daemon <alice@example.org>"
    assert got.endswith(b"/var is 99% full\r\n")
    assert b"not part" not in got


async def test_server_down_keeps_the_message_and_exits_75(submission: Submission) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    conf = submission.write_conf(port=closed_port)
    message = b"From: alice@example.org\nTo: bob@example.org\nSubject: report\n\nbody text\n"
    ran = await run_sendmail(["-t", "-oi"], message, conf, submission.tmp)
    assert ran.code == 75
    [kept] = submission.failures()
    assert ran.stderr.count("\n") == 1 and str(kept) in ran.stderr
    assert "connecting to [127.0.0.1]" in ran.stderr
    saved = kept.read_bytes()
    assert header(saved, "X-Kittiwake-Sendmail-Recipients") == "bob@example.org"
    assert "connecting to" in (header(saved, "X-Kittiwake-Sendmail-Reason") or "")
    assert header(saved, "X-Kittiwake-Sendmail-Failed")
    assert saved.endswith(b"Subject: report\r\n\r\nbody text\r\n")
    assert kept.stat().st_mode & 0o077 == 0


async def test_wrong_password_is_permanent_and_kept(submission: Submission) -> None:
    conf = submission.write_conf(password="not the password")
    message = b"From: alice@example.org\nTo: bob@example.org\n\nhello\n"
    ran = await run_sendmail(["-t"], message, conf, submission.tmp)
    assert ran.code == 69, ran.stderr
    assert "AUTH SCRAM-SHA-256" in ran.stderr and "535" in ran.stderr
    assert len(submission.failures()) == 1
    assert submission.messages("bob") == []


async def test_unknown_recipient_exits_67(submission: Submission) -> None:
    conf = submission.write_conf()
    message = b"From: alice@example.org\nTo: nobody@example.org\n\nhello\n"
    ran = await run_sendmail(["-t"], message, conf, submission.tmp)
    assert ran.code == 67, ran.stderr
    assert "nobody@example.org: 550" in ran.stderr
    [kept] = submission.failures()
    assert header(kept.read_bytes(), "X-Kittiwake-Sendmail-Recipients") == "nobody@example.org"


async def test_unknown_option_is_refused_before_reading(submission: Submission) -> None:
    conf = submission.write_conf()
    ran = await run_sendmail(["-Z", "bob@example.org"], b"Subject: x\n\ny\n", conf,
                             submission.tmp)
    assert ran.code == 64
    assert ran.stderr.startswith("kittiwake sendmail: unknown option -Z")
    assert ran.stderr.count("\n") == 1
    assert submission.failures() == [] and submission.messages("bob") == []


async def test_bad_config_keeps_message_in_default_dir(submission: Submission) -> None:
    conf = submission.write_conf(host="mail.example.org", tls="none")
    ran = await run_sendmail(["bob@example.org"], b"Subject: x\n\ny\n", conf, submission.tmp)
    assert ran.code == 78
    assert '"none" is only allowed' in ran.stderr
    [kept] = (submission.tmp / ".kittiwake-sendmail-failures").iterdir()
    assert kept.read_bytes().endswith(b"Subject: x\r\n\r\ny\r\n")


async def test_partly_refused_keeps_it_for_the_refused_only(submission: Submission) -> None:
    conf = submission.write_conf()
    message = b"From: alice@example.org\nTo: bob@example.org, nobody@example.org\n\nhello\n"
    ran = await run_sendmail(["-t"], message, conf, submission.tmp)
    assert ran.code == 67, ran.stderr
    assert len(submission.messages("bob")) == 1
    [kept] = submission.failures()
    assert header(kept.read_bytes(), "X-Kittiwake-Sendmail-Recipients") == "nobody@example.org"
