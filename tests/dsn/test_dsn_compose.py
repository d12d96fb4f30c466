"""Composing DSNs: structure (RFC 6522), fields (RFC 3464), RET/NOTIFY (RFC 3461), RFC 6533."""

from __future__ import annotations

import email
import email.message
import email.policy
from datetime import UTC, datetime, timedelta

from kittiwake.dsn import DSN, Action, RecipientReport, compose
from kittiwake.message import parse, parse_header_section
from kittiwake.queue import DeliveryError
from kittiwake.smtp.params import Notify, ORcpt, Ret

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
ORIGINAL = (b"From: Alice <alice@example.org>\r\nTo: bob@remote.example\r\n"
            b"Subject: lunch on friday\r\nMessage-ID: <m1@example.org>\r\n\r\n"
            b"Shall we meet at noon?\r\n")
NO_SUCH_USER = DeliveryError(550, "5.1.1", "no such user", "mx.remote.example")


def failed(address: str = "bob@remote.example", **kw: object) -> RecipientReport:
    values: dict[str, object] = {"error": NO_SUCH_USER, "attempts": 1, "last_attempt": T0}
    values.update(kw)
    return RecipientReport(address, Action.FAILED, **values)  # type: ignore[arg-type]


def make(*recipients: RecipientReport, original: bytes = ORIGINAL, **kw: object) -> DSN:
    args: dict[str, object] = {"hostname": "mail.example.org", "mail_from": "alice@example.org",
                               "original": original, "now": T0 + timedelta(minutes=5),
                               "arrival": T0 - timedelta(minutes=1)}
    args.update(kw)
    dsn = compose(recipients=recipients or (failed(),), **args)  # type: ignore[arg-type]
    assert dsn is not None
    return dsn


def stdlib(dsn: DSN) -> email.message.EmailMessage:
    msg = email.message_from_bytes(dsn.data, policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    assert not msg.defects
    return msg


def status_groups(msg: email.message.EmailMessage) -> list[email.message.Message]:
    """The field groups of the delivery-status part, as the stdlib parses them."""
    part = msg.get_payload()[1]  # type: ignore[index]
    groups = part.get_payload()
    assert isinstance(groups, list)
    return groups


def test_failure_dsn_structure_with_stdlib_parser() -> None:
    dsn = make(failed(orcpt=ORcpt("rfc822", "Bob@Remote.Example")), envid="QQ314159")
    msg = stdlib(dsn)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    assert msg["From"].addresses[0].addr_spec == "MAILER-DAEMON@mail.example.org"
    assert msg["From"].addresses[0].display_name == "Mail Delivery Subsystem"
    assert msg["To"].addresses[0].addr_spec == "alice@example.org"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["MIME-Version"] == "1.0"
    assert msg["Message-ID"] == f"<{dsn.message_id}>"
    assert msg["Date"].datetime == T0 + timedelta(minutes=5)
    parts = msg.get_payload()
    assert [p.get_content_type() for p in parts] == [  # type: ignore[union-attr]
        "text/plain", "message/delivery-status", "message/rfc822"]

    text = parts[0].get_content()  # type: ignore[index]
    assert "bob@remote.example" in text
    assert "mx.remote.example" in text
    assert "550 5.1.1 no such user" in text
    assert "gave up" in text

    per_message, rcpt = status_groups(msg)
    assert per_message["Reporting-MTA"] == "dns; mail.example.org"
    assert per_message["Original-Envelope-Id"] == "QQ314159"
    assert email.utils.parsedate_to_datetime(per_message["Arrival-Date"]) == \
        T0 - timedelta(minutes=1)
    assert rcpt["Original-Recipient"] == "rfc822; Bob@Remote.Example"
    assert rcpt["Final-Recipient"] == "rfc822; bob@remote.example"
    assert rcpt["Action"] == "failed"
    assert rcpt["Status"] == "5.1.1"
    assert rcpt["Remote-MTA"] == "dns; mx.remote.example"
    assert rcpt["Diagnostic-Code"] == "smtp; 550 5.1.1 no such user"
    assert email.utils.parsedate_to_datetime(rcpt["Last-Attempt-Date"]) == T0
    assert rcpt["Will-Retry-Until"] is None

    inner = parts[2].get_payload()[0]  # type: ignore[index]
    assert inner["Subject"] == "lunch on friday"
    assert inner.get_content().strip() == "Shall we meet at noon?"
    assert not dsn.smtputf8 and not dsn.eightbit and dsn.data.isascii()


def test_structure_with_kittiwake_parser() -> None:
    dsn = make()
    root = parse(dsn.data)
    assert not root.defects
    assert root.media_type == "multipart/report"
    assert root.params["report-type"] == "delivery-status"
    assert [p.media_type for p in root.parts] == [
        "text/plain", "message/delivery-status", "message/rfc822"]
    assert root.envelope is not None
    assert root.envelope.subject == "Undelivered Mail Returned to Sender"
    inner = root.parts[2].message
    assert inner is not None and inner.envelope is not None
    assert inner.envelope.subject == "lunch on friday"
    assert inner.body_bytes(dsn.data) == b"Shall we meet at noon?"
    status = root.parts[1]
    groups = status.body_bytes(dsn.data).split(b"\r\n\r\n")
    assert len(groups) == 2
    fields, _ = parse_header_section(groups[1] + b"\r\n")
    assert fields.get("Action") == "failed"
    assert fields.get("Final-Recipient") == "rfc822; bob@remote.example"


def test_several_recipients_each_get_a_group_and_notify_never_is_left_out() -> None:
    delayed = RecipientReport("carol@slow.example", Action.DELAYED,
                              DeliveryError(451, "4.7.1", "greylisted, try later",
                                            "mx.slow.example"),
                              attempts=5, last_attempt=T0,
                              will_retry_until=T0 + timedelta(hours=28))
    quiet = failed("dave@remote.example", notify=frozenset({Notify.NEVER}))
    msg = stdlib(make(failed(), delayed, quiet))
    groups = status_groups(msg)
    assert [g["Final-Recipient"] for g in groups[1:]] == [
        "rfc822; bob@remote.example", "rfc822; carol@slow.example"]
    assert groups[2]["Action"] == "delayed"
    assert groups[2]["Status"] == "4.7.1"
    assert email.utils.parsedate_to_datetime(groups[2]["Will-Retry-Until"]) == \
        T0 + timedelta(hours=28)
    text = msg.get_payload()[0].get_content()  # type: ignore[index]
    assert "dave@remote.example" not in text
    assert "greylisted, try later" in text
    # A failure in the same notice decides the subject.
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"


def test_delay_dsn_says_until_when_it_retries() -> None:
    until = T0 + timedelta(hours=28)
    dsn = make(RecipientReport("bob@remote.example", Action.DELAYED,
                               DeliveryError(0, "", "connection refused", "mx.remote.example"),
                               attempts=5, last_attempt=T0, will_retry_until=until))
    msg = stdlib(dsn)
    assert msg["Subject"] == "Delayed Mail (still being retried)"
    text = msg.get_payload()[0].get_content()  # type: ignore[index]
    assert "will retry until" in text and email.utils.format_datetime(until) in text
    assert "connection refused" in text
    rcpt = status_groups(msg)[1]
    assert rcpt["Action"] == "delayed" and rcpt["Status"] == "4.0.0"
    assert rcpt["Diagnostic-Code"] == "X-Kittiwake; connection refused"
    # Not a failure: only the header comes back, unless the sender asked for RET=FULL.
    assert msg.get_payload()[2].get_content_type() == "text/rfc822-headers"  # type: ignore[index]
    assert "still on its way" in text
    full = stdlib(make(*dsn.reports, ret=Ret.FULL))
    assert full.get_payload()[2].get_content_type() == "message/rfc822"  # type: ignore[index]


def test_ret_hdrs_returns_only_the_header() -> None:
    dsn = make(ret=Ret.HDRS)
    msg = stdlib(dsn)
    part = msg.get_payload()[2]  # type: ignore[index]
    assert part.get_content_type() == "text/rfc822-headers"
    content = part.get_payload(decode=True)
    assert b"Subject: lunch on friday" in content
    assert b"Shall we meet" not in dsn.data
    assert dsn.headers_only
    assert "RET=HDRS" in msg.get_payload()[0].get_content()  # type: ignore[index]


def test_large_message_returns_only_the_header() -> None:
    big = ORIGINAL + b"x" * 76 + b"\r\n" * 2000
    dsn = make(original=big, max_original_body=1024)
    msg = stdlib(dsn)
    assert msg.get_payload()[2].get_content_type() == "text/rfc822-headers"  # type: ignore[index]
    assert len(dsn.data) < 5000
    full = make(original=big, max_original_body=len(big))
    assert stdlib(full).get_payload()[2].get_content_type() == "message/rfc822"  # type: ignore[index]


def test_notify_rules() -> None:
    kw = {"hostname": "mail.example.org", "mail_from": "alice@example.org",
          "original": ORIGINAL, "now": T0}
    never = failed(notify=frozenset({Notify.NEVER}))
    assert compose(recipients=[never], **kw) is None  # type: ignore[arg-type]
    only_success = failed(notify=frozenset({Notify.SUCCESS}))
    assert compose(recipients=[only_success], **kw) is None  # type: ignore[arg-type]
    delay_only = RecipientReport("bob@remote.example", Action.DELAYED,
                                 notify=frozenset({Notify.DELAY}))
    assert compose(recipients=[delay_only], **kw) is not None  # type: ignore[arg-type]
    no_delay = RecipientReport("bob@remote.example", Action.DELAYED,
                               notify=frozenset({Notify.FAILURE}))
    assert compose(recipients=[no_delay], **kw) is None  # type: ignore[arg-type]
    # Success notices only when asked for (RFC 3461 §4.1).
    relayed = RecipientReport("bob@remote.example", Action.RELAYED)
    assert compose(recipients=[relayed], **kw) is None  # type: ignore[arg-type]
    asked = RecipientReport("bob@remote.example", Action.RELAYED,
                            notify=frozenset({Notify.SUCCESS, Notify.FAILURE}))
    dsn = compose(recipients=[asked], **kw)  # type: ignore[arg-type]
    assert dsn is not None
    msg = stdlib(dsn)
    assert msg["Subject"] == "Successful Mail Delivery Report"
    rcpt = status_groups(msg)[1]
    assert rcpt["Action"] == "relayed" and rcpt["Status"] == "2.0.0"


def test_null_sender_never_gets_a_dsn() -> None:
    for mail_from in ("", "  "):
        assert compose(hostname="mail.example.org", mail_from=mail_from,
                       recipients=[failed()], original=ORIGINAL, now=T0) is None


def test_smtputf8_uses_rfc6533_types() -> None:
    original = ("From: Jörg <jörg@bücher.example>\r\nTo: bjørn@remote.example\r\n"
                "Subject: Grüße\r\n\r\nHallo Bjørn\r\n").encode()
    dsn = make(failed("bjørn@remote.example"), original=original,
               mail_from="jörg@bücher.example", smtputf8=True)
    assert dsn.smtputf8 and dsn.eightbit
    root = parse(dsn.data)
    assert root.params["report-type"] == "global-delivery-status"
    assert [p.media_type for p in root.parts] == [
        "text/plain", "message/global-delivery-status", "message/global"]
    assert root.envelope is not None
    assert root.envelope.to[0].addr == "jörg@bücher.example"  # type: ignore[union-attr]
    inner = root.parts[2].message
    assert inner is not None and inner.envelope is not None
    assert inner.envelope.subject == "Grüße"
    groups = root.parts[1].body_bytes(dsn.data).decode().split("\r\n\r\n")
    fields, _ = parse_header_section((groups[1] + "\r\n").encode())
    assert fields.get("Final-Recipient") == "utf-8; bjørn@remote.example"
    assert root.parts[1].encoding == "8bit"
    # Headers only: message/global-headers (RFC 6533 §6.3).
    hdrs = make(failed("bjørn@remote.example"), original=original,
                mail_from="jörg@bücher.example", smtputf8=True, ret=Ret.HDRS)
    assert parse(hdrs.data).parts[2].media_type == "message/global-headers"


def test_without_smtputf8_the_dsn_stays_ascii() -> None:
    error = DeliveryError(550, "5.7.1", "Nachricht abgelehnt: Größe", "mx.remote.example")
    dsn = make(failed("bob@remote.example", error=error,
                      orcpt=ORcpt("utf-8", "bjørn@remote.example")))
    assert dsn.data.isascii() and not dsn.smtputf8
    msg = stdlib(dsn)
    text_part = msg.get_payload()[0]  # type: ignore[index]
    assert text_part["Content-Transfer-Encoding"] == "quoted-printable"
    assert "Nachricht abgelehnt: Größe" in text_part.get_content()
    rcpt = status_groups(msg)[1]
    # RFC 6533 §3: utf-8-addr-xtext in a plain delivery-status.
    assert rcpt["Original-Recipient"] == "utf-8; bj\\x{F8}rn@remote.example"
    assert rcpt["Diagnostic-Code"].startswith("smtp; 550 5.7.1 Nachricht abgelehnt")


def test_long_reply_is_folded_and_cannot_inject_fields() -> None:
    words = " ".join(f"word{i}" for i in range(80))
    error = DeliveryError(550, "5.7.1", words + "\r\nX-Injected: yes", "mx.remote.example")
    dsn = make(failed(error=error))
    status_part = parse(dsn.data).parts[1]
    body = status_part.body_bytes(dsn.data)
    assert all(len(line) <= 78 for line in body.split(b"\r\n"))
    rcpt = status_groups(stdlib(dsn))[1]
    assert rcpt["X-Injected"] is None
    assert rcpt["Diagnostic-Code"] == f"smtp; 550 5.7.1 {words} X-Injected: yes"
    # The human-readable part shows the reply's lines as they were.
    text = stdlib(dsn).get_payload()[0].get_content()  # type: ignore[index]
    assert f"      550 5.7.1 {words}\r\n      X-Injected: yes\r\n" in text


def test_status_follows_the_action() -> None:
    gave_up = failed(error=DeliveryError(0, "", "connection timed out", "mx.remote.example"),
                     attempts=9)
    assert gave_up.status_code() == "4.4.7"
    temp_then_failed = failed(error=DeliveryError(451, "", "try later", ""), attempts=9)
    assert temp_then_failed.status_code() == "4.0.0"
    no_enhanced = failed(error=DeliveryError(554, "", "rejected", ""))
    assert no_enhanced.status_code() == "5.0.0"
    explicit = failed(status="5.3.0")
    assert explicit.status_code() == "5.3.0"
