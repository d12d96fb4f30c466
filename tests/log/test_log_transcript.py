"""Acceptance test for transcript redaction: secrets only at traceauth, data only at tracedata.

Each scenario drives a transcript with the lines of a real exchange, with
logging set up at each level and written to a stream; the assertions look at
what was written, both raw and with the logfmt values decoded.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from kittiwake import log

LEVELS = ("info", "debug", "trace", "traceauth", "tracedata")
SHOWS_AUTH = {"traceauth", "tracedata"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class Scenario:
    name: str
    drive: Callable[[log.Logger], None]
    secrets: tuple[str, ...]  # as they appear on the wire; hidden below traceauth
    plain: tuple[str, ...]  # shown from trace on: the transcript is not just blanked
    data: tuple[str, ...] = ()  # message data: shown at tracedata only


def imap(lines: list[tuple[str, bytes]]) -> Callable[[log.Logger], None]:
    def drive(logger: log.Logger) -> None:
        t = log.IMAPTranscript(logger)
        for direction, text in lines:
            (t.client if direction == "C" else t.server)(text)
    return drive


def smtp(lines: list[tuple[str, bytes]]) -> Callable[[log.Logger], None]:
    def drive(logger: log.Logger) -> None:
        t = log.SMTPTranscript(logger)
        for direction, text in lines:
            (t.client if direction == "C" else t.server)(text)
    return drive


PLAIN_IR = b64(b"\0user\0secret")  # AHVzZXIAc2VjcmV0
SECRET_B64 = b64(b"secret")  # c2VjcmV0, also inside PLAIN_IR

SCENARIOS = [
    Scenario("imap-login-atom", imap([
        ("S", b"* OK [CAPABILITY IMAP4rev2 AUTH=PLAIN] ready"),
        ("C", b"a1 LOGIN alice secret"),
        ("S", b"a1 OK LOGIN completed"),
        ("C", b"a2 SELECT INBOX"),
    ]), secrets=("secret",), plain=("a1 LOGIN alice", "a1 OK LOGIN completed", "a2 SELECT INBOX")),
    Scenario("imap-login-quoted", imap([
        ("C", b'a1 LOGIN "alice" "se cret"'),
        ("S", b"a1 OK done"),
        ("C", b"a2 NOOP"),
    ]), secrets=("se cret",), plain=('a1 LOGIN "alice"', "a2 NOOP")),
    Scenario("imap-login-quoted-escapes", imap([
        ("C", rb'a1 LOGIN alice "se\"cr et\\"'),
        ("C", b"a2 NOOP"),
    ]), secrets=('se\\"cr et', "cr et"), plain=("a1 LOGIN alice", "a2 NOOP")),
    Scenario("imap-login-literal", imap([
        ("C", b"a1 LOGIN alice {6}"),
        ("S", b"+ Ready for literal data"),
        ("C", b"secret"),
        ("S", b"a1 OK done"),
        ("C", b"a2 NOOP"),
    ]), secrets=("secret",), plain=("a1 LOGIN alice {6}", "+ Ready", "a2 NOOP")),
    Scenario("imap-login-two-literals-one-line", imap([
        ("C", b"a1 LOGIN {5}"),
        ("S", b"+ go"),
        ("C", b"alice {6+}"),  # literal plus the rest of its line, then a LITERAL+
        ("C", b"secret"),
        ("C", b""),
        ("S", b"a1 OK done"),
        ("C", b"a2 NOOP"),
    ]), secrets=("secret",), plain=("a1 LOGIN {5}", "alice {6+}", "a2 NOOP")),
    Scenario("imap-login-empty-literal", imap([
        ("C", b"a1 LOGIN {0}"),
        ("S", b"+ go"),
        ("C", b" secret"),  # the zero-length literal, then the rest of the line
        ("S", b"a1 NO bad"),
        ("C", b"a2 NOOP"),
    ]), secrets=("secret",), plain=("a1 LOGIN {0}", "a2 NOOP")),
    Scenario("imap-authenticate-sasl-ir", imap([
        ("C", f"a2 AUTHENTICATE PLAIN {PLAIN_IR}".encode()),
        ("S", b"a2 OK authenticated"),
        ("C", b"a3 LIST \"\" *"),
    ]), secrets=(PLAIN_IR, SECRET_B64),
        plain=("a2 AUTHENTICATE PLAIN", "a2 OK authenticated", 'a3 LIST "" *')),
    Scenario("imap-authenticate-continuation", imap([
        ("C", b"a2 AUTHENTICATE PLAIN"),
        ("S", b"+ "),
        ("C", PLAIN_IR.encode()),
        ("S", b"a2 OK authenticated"),
        ("C", b"a3 LOGOUT"),
    ]), secrets=(PLAIN_IR, SECRET_B64), plain=("a2 AUTHENTICATE PLAIN", "a3 LOGOUT")),
    Scenario("imap-authenticate-login-mech", imap([
        ("C", b"a2 AUTHENTICATE LOGIN"),
        ("S", b"+ VXNlcm5hbWU6"),
        ("C", b64(b"alice").encode()),
        ("S", b"+ UGFzc3dvcmQ6"),
        ("C", SECRET_B64.encode()),
        ("S", b"a2 NO failed"),
        ("C", b"a3 LOGOUT"),
    ]), secrets=(SECRET_B64, b64(b"alice")),
        plain=("a2 AUTHENTICATE LOGIN", "+ UGFzc3dvcmQ6", "a3 LOGOUT")),
    Scenario("smtp-auth-plain", smtp([
        ("S", b"220 mx.example ESMTP"),
        ("C", b"EHLO client.example"),
        ("S", b"250-mx.example"),
        ("S", b"250 AUTH PLAIN LOGIN"),
        ("C", f"AUTH PLAIN {PLAIN_IR}".encode()),
        ("S", b"235 2.7.0 Authentication successful"),
        ("C", b"MAIL FROM:<alice@example.org>"),
    ]), secrets=(PLAIN_IR, SECRET_B64),
        plain=("AUTH PLAIN", "235 2.7.0", "MAIL FROM:<alice@example.org>")),
    Scenario("smtp-auth-login", smtp([
        ("C", b"AUTH LOGIN"),
        ("S", b"334 VXNlcm5hbWU6"),
        ("C", b64(b"alice").encode()),
        ("S", b"334 UGFzc3dvcmQ6"),
        ("C", SECRET_B64.encode()),
        ("S", b"235 2.7.0 Authentication successful"),
        ("C", b"MAIL FROM:<alice@example.org>"),
    ]), secrets=(SECRET_B64, b64(b"alice")),
        plain=("AUTH LOGIN", "334 UGFzc3dvcmQ6", "MAIL FROM:<alice@example.org>")),
    Scenario("smtp-auth-login-initial-response", smtp([
        ("C", f"AUTH LOGIN {b64(b'alice')}".encode()),
        ("S", b"334 UGFzc3dvcmQ6"),
        ("C", SECRET_B64.encode()),
        ("S", b"535 5.7.8 bad credentials"),
        ("C", b"QUIT"),
    ]), secrets=(SECRET_B64, b64(b"alice")), plain=("AUTH LOGIN", "535 5.7.8", "QUIT")),
    Scenario("smtp-data-lines", smtp([
        ("C", b"DATA"),
        ("S", b"354 go ahead"),
        ("C", b"Subject: topsecretsubject"),
        ("C", b""),
        ("C", b"bodymarker line"),
        ("C", b"."),
        ("S", b"250 2.0.0 queued"),
        ("C", b"QUIT"),
    ]), secrets=(), plain=("DATA", "354 go ahead", "250 2.0.0 queued", "QUIT"),
        data=("topsecretsubject", "bodymarker line")),
]


def drive_bulk_data(logger: log.Logger) -> None:
    t = log.SMTPTranscript(logger)
    t.client(b"BDAT 40 LAST")
    t.data(log.Direction.CLIENT, b"Subject: topsecretsubject\r\n\r\nbodymarker\r\n")
    t.server(b"250 2.0.0 queued")


def drive_imap_data(logger: log.Logger) -> None:
    t = log.IMAPTranscript(logger)
    msg = b"Subject: topsecretsubject\r\n\r\nbodymarker\r\n"
    t.client(b"a4 APPEND INBOX (\\Seen) {%d}" % len(msg))
    t.server(b"+ Ready")
    t.client(msg)
    t.client(b"")
    t.server(b"a4 OK APPEND completed")
    t.client(b"a5 FETCH 1 (UID BODY[])")
    t.feed("S", b"* 1 FETCH (UID 7 BODY[] {%d}\r\n%s)\r\na5 OK done\r\n" % (len(msg), msg))
    t.client(b"a6 LOGOUT")


SCENARIOS += [
    Scenario("smtp-bdat-bulk", drive_bulk_data, secrets=(),
             plain=("BDAT 40 LAST", "250 2.0.0 queued"), data=("topsecretsubject", "bodymarker")),
    Scenario("imap-append-fetch", drive_imap_data, secrets=(),
             plain=("a4 APPEND INBOX", "a4 OK APPEND completed", "* 1 FETCH (UID 7 BODY[]",
                    "a5 OK done", "a6 LOGOUT"),
             data=("topsecretsubject", "bodymarker")),
]


@pytest.mark.parametrize("fmt", ["logfmt", "json"])
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_redaction_by_level(logs, scenario: Scenario, level: str, fmt: str) -> None:
    logs.setup(level, format=fmt)
    logger = log.get_logger("imapserver")
    with log.bind(cid=log.new_connection_id()):
        scenario.drive(logger)
    raw = logs.text
    msgs = "\n".join(r["msg"] for r in logs.records())

    if level in ("info", "debug"):
        assert raw == "", "transcripts are written from trace on only"
        return
    # The transcript is there (and not blanked wholesale).
    for text in scenario.plain:
        assert text in msgs, f"{text!r} missing at {level}"
    # Credentials: never below traceauth, shown from traceauth on.
    for secret in scenario.secrets:
        if level in SHOWS_AUTH:
            assert secret in msgs
        else:
            assert secret not in msgs
            assert secret not in raw
    if scenario.secrets and level not in SHOWS_AUTH:
        assert log.AUTH_PLACEHOLDER in msgs
    # Message data: only at tracedata; below, a placeholder with the size.
    for text in scenario.data:
        if level == "tracedata":
            assert text in msgs
        else:
            assert text not in raw and text not in msgs
    if scenario.data and level != "tracedata":
        assert "...(" in msgs and " bytes)" in msgs
    # The decoded password never appears when only its base64 was on the wire.
    if PLAIN_IR in scenario.secrets or SECRET_B64 in scenario.secrets:
        assert "secret" not in msgs


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_line_levels(logs, scenario: Scenario) -> None:
    """A line that shows a credential is logged at traceauth, one with data at tracedata."""
    logs.setup("tracedata")
    scenario.drive(log.get_logger("smtpserver"))
    levels = set()
    for rec in logs.records():
        levels.add(rec["level"])
        if any(s in rec["msg"] for s in scenario.secrets):
            assert rec["level"] in ("traceauth", "tracedata"), rec
        if any(d in rec["msg"] for d in scenario.data):
            assert rec["level"] == "tracedata", rec
        if rec["level"] == "trace":
            assert not any(s in rec["msg"] for s in scenario.secrets + scenario.data), rec
    assert ("traceauth" in levels) == bool(scenario.secrets)
    assert ("tracedata" in levels) == bool(scenario.data)


def test_data_placeholder_counts_bytes(logs) -> None:
    logs.setup("trace")
    t = log.SMTPTranscript(log.get_logger("smtpserver"))
    t.client(b"DATA")
    t.server(b"354 go ahead")
    for line in (b"Subject: x", b"", b"body"):  # 12 + 2 + 6 bytes with CRLFs
        t.client(line)
    t.client(b".")
    t.server(b"250 ok")
    msgs = [r["msg"] for r in logs.records()]
    assert msgs == ["C: DATA", "S: 354 go ahead", "C: ...(20 bytes)", "C: .", "S: 250 ok"]


def test_refused_literal_is_forgotten(logs) -> None:
    """A synchronizing literal the server refuses never comes: the next line is a command."""
    logs.setup("trace")
    t = log.IMAPTranscript(log.get_logger("imapserver"))
    t.client(b"a1 APPEND INBOX {99999999}")
    t.server(b"a1 NO [TOOBIG] too big")
    t.client(b"a2 SELECT INBOX")
    assert [r["msg"] for r in logs.records()][-1] == "C: a2 SELECT INBOX"


def test_level_changed_mid_auth(logs) -> None:
    """Raising the level in the middle of AUTH must not reveal (or lose track of) the state."""
    logs.setup("info")
    t = log.SMTPTranscript(log.get_logger("smtpserver"))
    t.client(b"AUTH LOGIN")
    t.server(b"334 VXNlcm5hbWU6")
    log.set_levels({"": "trace"})
    t.client(b64(b"alice").encode())
    t.server(b"334 UGFzc3dvcmQ6")
    t.client(SECRET_B64.encode())
    t.server(b"235 ok")
    t.client(b"NOOP")
    msgs = [r["msg"] for r in logs.records()]
    assert msgs == ["C: ***", "S: 334 UGFzc3dvcmQ6", "C: ***", "S: 235 ok", "C: NOOP"]


def test_transcript_bad_input_never_raises(logs) -> None:
    logs.setup("tracedata")
    s = log.SMTPTranscript(log.get_logger("smtpserver"))
    i = log.IMAPTranscript(log.get_logger("imapserver"))
    junk = [b"", b"\xff\xfe\x00", b"{", b"a {12", b'a LOGIN "unterminated',
            b"a LOGIN {999999999999999999999999}", b")))((( {3}",
            b"* BYE", b"+", b"AUTH", "unicodé ü".encode(), b"x" * 10000]
    for line in junk:
        for fn in (s.client, s.server, i.client, i.server):
            fn(line)
    i.feed("C", b"\r\n".join(junk) + b"\r\n")
    assert logs.text.count("\n") == len(logs.records()) > 0


@pytest.mark.parametrize("line", [
    b"a1 LOGIN alice\tsecret",
    b"a1 LOGIN  alice   secret  ",
    b'a1 LOGIN "alice secret',
    b"a1 login alice secret",
    b"a1 LOGIN alice secret extra",
    b"a1 AUTHENTICATE PLAIN secret",
    b"a1 AUTHENTICATE PLAIN\tsecret",
])
def test_sloppy_login_lines_keep_the_secret(logs, line: bytes) -> None:
    logs.setup("trace")
    t = log.IMAPTranscript(log.get_logger("imapserver"))
    t.client(line)
    t.server(b"a1 BAD what")
    t.client(b"a2 NOOP")
    msgs = [r["msg"] for r in logs.records()]
    assert "secret" not in logs.text and "***" in msgs[0], msgs
    assert msgs[-1] == "C: a2 NOOP"


def test_http_header_kind() -> None:
    assert log.http_header_kind("Authorization") is log.Kind.AUTH
    assert log.http_header_kind("cookie") is log.Kind.AUTH
    assert log.http_header_kind("Content-Type") is log.Kind.PLAIN
