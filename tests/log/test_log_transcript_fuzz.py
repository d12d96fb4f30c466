"""Property tests: transcripts never raise, and a LOGIN password never shows at trace."""

from __future__ import annotations

import io
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from kittiwake import log

ATOM = string.ascii_letters + string.digits + "!#$&'+,-./:;<=>?@^_`|~"


def transcript_output(level: str, drive) -> str:
    stream = io.StringIO()
    log.setup(level, stream=stream)
    try:
        drive(log.get_logger("imapserver"))
    finally:
        log.reset()
    return stream.getvalue()


@settings(max_examples=150, deadline=None)
@given(user=st.text(string.ascii_lowercase + string.digits + "._-", min_size=1, max_size=12),
       password=st.text(ATOM + " \"\\", min_size=1, max_size=20),
       style=st.sampled_from(["atom", "quoted", "literal", "literal+", "user-literal"]))
def test_login_password_hidden_at_trace(user: str, password: str, style: str) -> None:
    secret = "PW" + password + "ZZ"
    raw = secret.encode()
    quoted = '"' + secret.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if style == "atom" and not set(password) - set(ATOM):
        lines = [f"a1 LOGIN {user} {secret}".encode()]
    elif style in ("quoted", "atom"):
        lines = [f"a1 LOGIN {user} {quoted}".encode()]
    elif style == "literal":
        lines = [f"a1 LOGIN {user} {{{len(raw)}}}".encode(), raw]
    elif style == "literal+":
        lines = [f"a1 LOGIN {user} {{{len(raw)}+}}".encode(), raw + b""]
    else:
        lines = [f"a1 LOGIN {{{len(user)}}}".encode(), f"{user} {quoted}".encode()]

    def drive(logger: log.Logger) -> None:
        t = log.IMAPTranscript(logger)
        for line in lines:
            t.client(line)
        t.server(b"a1 OK done")

    out = transcript_output("trace", drive)
    assert "PW" not in out and "a1 OK done" in out
    shown = transcript_output("traceauth", drive)
    assert "PW" in shown


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("CS"), st.binary(max_size=60)), max_size=20))
def test_random_traffic_never_raises(traffic) -> None:
    def drive(logger: log.Logger) -> None:
        imap = log.IMAPTranscript(logger)
        smtp = log.SMTPTranscript(logger)
        for direction, data in traffic:
            (imap.client if direction == "C" else imap.server)(data)
            (smtp.client if direction == "C" else smtp.server)(data)
            imap.feed(direction, data)
            smtp.data(direction, data)

    out = transcript_output("tracedata", drive)
    assert all(line.startswith("t=") for line in out.splitlines())
