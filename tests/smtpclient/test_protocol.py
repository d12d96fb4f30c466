"""The sans-I/O parts: EHLO parsing, delivery planning, transactions fed replies by hand."""

from __future__ import annotations

from kittiwake.smtp import Notify, RcptParams, Reply, parse_reply
from kittiwake.smtpclient import (
    Capabilities,
    Outcome,
    Recipient,
    Stage,
    Transaction,
    plan_delivery,
)

EHLO = (b"250-mx.example.org Hello\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n"
        b"250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250-STARTTLS\r\n"
        b"250-AUTH SCRAM-SHA-256 plain\r\n250-AUTH=LOGIN\r\n250-CHUNKING\r\n250-BINARYMIME\r\n"
        b"250-DSN\r\n250-REQUIRETLS\r\n250 LIMITS RCPTMAX=2 MAILMAX=3 BOGUS=x\r\n")


def test_ehlo_capabilities() -> None:
    caps = Capabilities.from_ehlo(parse_reply(EHLO))
    assert caps.domain == "mx.example.org"
    assert caps.size == 1000 and caps.pipelining and caps.eightbitmime and caps.smtputf8
    assert caps.starttls and caps.chunking and caps.binarymime and caps.dsn
    assert caps.requiretls and caps.enhancedstatuscodes
    assert caps.auth == ("SCRAM-SHA-256", "PLAIN")  # the first AUTH line counts
    assert (caps.rcptmax, caps.mailmax) == (2, 3)
    bare = Capabilities.from_ehlo(parse_reply(b"250-x\r\n250-SIZE\r\n250 LIMITS RCPTMAX=0\r\n"))
    assert bare.size is None and bare.rcptmax is None and not bare.pipelining


def caps_of(*ext: str) -> Capabilities:
    lines = ["mx.test", *ext]
    text = "".join(f"250-{x}\r\n" for x in lines[:-1]) + f"250 {lines[-1]}\r\n"
    return Capabilities.from_ehlo(parse_reply(text.encode()))


def test_pipelined_group_and_reply_matching() -> None:
    caps = caps_of("PIPELINING", "DSN")
    plan = plan_delivery(caps, remote="mx.test", tls=False, mailfrom="a@example.com",
                         recipients=["b@example.org",
                                     Recipient("c@example.org",
                                               RcptParams(notify=frozenset({Notify.FAILURE})))],
                         data=b"Subject: x\r\n\r\n.hi\r\n", ret=None, envid="q1")
    [tx] = plan.transactions(b"Subject: x\r\n\r\n.hi\r\n", caps.pipelining)
    first = tx.to_send()
    assert first is not None and first.commands == (
        "MAIL FROM:<a@example.com> ENVID=q1", "RCPT TO:<b@example.org>",
        "RCPT TO:<c@example.org> NOTIFY=FAILURE", "DATA")
    assert tx.to_send() is None and tx.pending == 4
    tx.receive(Reply.ok())
    tx.receive(Reply(451, "4.7.1", ("greylisted",)))
    tx.receive(Reply.ok())
    tx.receive(Reply(354, None, ("go ahead",)))
    body = tx.to_send()
    assert body is not None and body.data == b"Subject: x\r\n\r\n..hi\r\n.\r\n"
    tx.receive(Reply(250, "2.0.0", ("queued",)))
    assert tx.done and tx.completed
    results = dict(tx.results())
    assert results[0].outcome is Outcome.TEMPORARY and results[0].stage is Stage.RCPT
    assert results[0].reply == Reply(451, "4.7.1", ("greylisted",))
    assert results[1].outcome is Outcome.DELIVERED and results[1].command == "."


def test_no_pipelining_stops_after_mail_failure() -> None:
    tx = Transaction("MAIL FROM:<>", [(0, "b@x.test", "RCPT TO:<b@x.test>")], b"x\r\n",
                     pipelining=False, bdat=False)
    send = tx.to_send()
    assert send is not None and send.commands == ("MAIL FROM:<>",)
    assert tx.to_send() is None  # waits for the MAIL reply
    tx.receive(Reply(550, "5.7.1", ("go away",)))
    assert tx.done and tx.to_send() is None
    [(_, r)] = tx.results()
    assert r.outcome is Outcome.PERMANENT and r.stage is Stage.MAIL and "go away" in r.reason


def test_rcptmax_splits_transactions() -> None:
    caps = caps_of("PIPELINING", "LIMITS RCPTMAX=2")
    rcpts = [f"u{i}@example.org" for i in range(5)]
    plan = plan_delivery(caps, remote="mx.test", tls=False, mailfrom="", recipients=rcpts,
                         data=b"x\r\n")
    assert [[label for _, label, _ in b] for b in plan.batches] == [rcpts[0:2], rcpts[2:4],
                                                                     rcpts[4:]]


def test_local_refusals() -> None:
    caps = caps_of("PIPELINING", "SIZE 10")
    plan = plan_delivery(caps, remote="mx.test", tls=False, mailfrom="a@b.test",
                         recipients=["c@d.test"], data=b"x" * 11)
    assert "larger than the maximum 10 of mx.test" in plan.refused[0].reason
    plan = plan_delivery(caps, remote="mx.test", tls=False, mailfrom="a@b.test",
                         recipients=["dörte@d.test", "not an address"], data=b"x")
    assert plan.refused[0].reason == "SMTPUTF8 required but not supported by mx.test"
    assert all(r.outcome is Outcome.PERMANENT for r in plan.refused.values())
    # U-label domains go out as A-labels without SMTPUTF8.
    plan = plan_delivery(caps, remote="mx.test", tls=False, mailfrom="a@b.test",
                         recipients=["x@bücher.example"], data=b"x")
    assert plan.batches[0][0][2] == "RCPT TO:<x@xn--bcher-kva.example>"
    assert plan.mail_command == "MAIL FROM:<a@b.test> SIZE=1"
