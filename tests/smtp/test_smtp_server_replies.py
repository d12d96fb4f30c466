"""ServerSession.replies: the (verb, code) of every reply to a command, for the driver's
kittiwake_smtpserver_commands_total (bounded labels are the driver's job)."""

from __future__ import annotations

from smtp_helpers import drive, new_session

from kittiwake import metrics
from kittiwake.smtp import MailFrom, Reply, ServerSession
from kittiwake.smtpserver import metrics as smtp_metrics


def test_each_command_reply_is_recorded_with_its_verb() -> None:
    s = new_session()
    assert s.replies == []  # the greeting answers no command
    drive(s, b"EHLO client.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n"
             b"DATA\r\nhello\r\n.\r\nbogus\r\nquit\r\n")
    assert s.replies == [("EHLO", 250), ("MAIL", 250), ("RCPT", 250), ("DATA", 354),
                         ("DATA", 250), ("BOGUS", 500), ("QUIT", 221)]


def test_rejections_and_driver_closes() -> None:
    s = new_session()

    def refuse_mail(session: ServerSession, event: object) -> None:
        if isinstance(event, MailFrom):
            session.reject(Reply(550, "5.7.1", ["no"]))
        else:
            session.accept()

    drive(s, b"HELO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n", refuse_mail)
    assert s.replies == [("HELO", 250), ("MAIL", 550), ("RCPT", 503)]
    s.close()  # a timeout or shutdown 421 answers no command
    assert s.replies[-1] == ("RCPT", 503)


def test_driver_labels_are_bounded() -> None:
    assert smtp_metrics.verb_label("rcpt") == "RCPT"
    assert smtp_metrics.verb_label("X" * 500) == "other"
    assert smtp_metrics.mechanism_label("scram-sha-256") == "SCRAM-SHA-256"
    assert smtp_metrics.mechanism_label("GSSAPI") == "other"
    replies = [("EHLO", 250), ("NONSENSE", 500), ("DATA", 354)]

    def count(verb: str, cls: str) -> float | None:
        return metrics.REGISTRY.get_sample_value("kittiwake_smtpserver_commands_total",
                                                 {"verb": verb, "class": cls})

    keys = (("EHLO", "2"), ("other", "5"), ("DATA", "3"))
    before = {key: count(*key) for key in keys}
    smtp_metrics.count_replies(replies)
    assert replies == []
    assert {key: count(*key) for key in keys} == {key: (v or 0) + 1 for key, v in before.items()}
