"""Real SMTP clients against ``kittiwake localserve``: swaks, gsasl, msmtp, smtplib.

``kittiwake localserve --dir D --ip 127.x.y.z`` runs as a user starts it (a
random loopback address per test module, so parallel runs do not collide):
SMTP on 1025, submission (STARTTLS, RFC 3207 / RFC 6409) on 1587 and
submissions (implicit TLS, RFC 8314) on 1465, one account
``kittiwake@localhost`` with password ``kittiwake``.

Authentication (RFC 4954) with every mechanism: PLAIN (RFC 4616), LOGIN,
CRAM-MD5 (RFC 2195), SCRAM-SHA-1 (RFC 5802), SCRAM-SHA-256 (RFC 7677) and
their -PLUS variants with channel binding. About -PLUS and TLS versions:

- On TLS 1.3 the only channel binding is tls-exporter (RFC 9266); Python's
  ssl module cannot produce it (and tls-unique is undefined for TLS 1.3), so
  the server offers no -PLUS mechanism there. gsasl 2.2 (Debian 12), which
  runs the TLS itself and feeds its channel-binding data to SCRAM, stops on
  TLS 1.3 with "mechanism error" right after the server's empty 334
  challenge, before it sends any SCRAM message (a client-side failure: the
  server logs no failed login). ``--no-cb`` makes it do plain SCRAM without
  binding data (gs2 flag "n"), which is what RFC 5802 §6 expects when the
  server offers no -PLUS mechanism.
- On TLS 1.2 (gsasl ``--priority=NORMAL:-VERS-TLS1.3``) the server offers
  -PLUS with tls-unique (RFC 5929) and tls-server-end-point.

gsasl cannot do implicit TLS, so port 1465 is tested with swaks ``--tlsc``
and with Python's ``smtplib.SMTP_SSL`` plus scramp for SCRAM.
"""

from __future__ import annotations

import base64
import contextlib
import email
import email.policy
import json
import random
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import scramp

from kittiwake.store import AccountStore

KITTIWAKE = str(Path(sys.executable).parent / "kittiwake")  # the console script
USER, PASSWORD, ACCOUNT = "kittiwake@localhost", "kittiwake", "kittiwake"
SMTP, SUBMISSIONS, SUBMISSION = 1025, 1465, 1587
MECHANISMS_SWAKS = ("PLAIN", "LOGIN", "CRAM-MD5")
MECHANISMS_SCRAM = ("SCRAM-SHA-1", "SCRAM-SHA-256")
TLS12 = "NORMAL:-VERS-TLS1.3"


def need(program: str, package: str) -> str:
    """Path of a peer program; a missing peer is a failure, never a skip."""
    path = shutil.which(program)
    if path is None:
        pytest.fail(f"{program} not found: install the Debian package {package}")
    return path


@dataclass
class LocalServe:
    dir: Path
    ip: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def cert(self) -> Path:
        return self.dir / "config" / "certs" / "localserve.crt"

    def messages(self) -> list[email.message.EmailMessage]:
        raws = read_inbox(self.dir / "data" / "accounts" / ACCOUNT)
        return [email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[misc]
                for raw in raws]

    def find(self, subject: str, timeout: float = 20) -> email.message.EmailMessage:
        """The one message with this subject; waits for it (submissions go via the queue)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.messages() if m["Subject"] == subject]
            if found or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert len(found) == 1, f"{len(found)} messages {subject!r}; log:\n{self.log.read_text()}"
        return found[0]

    def has(self, subject: str) -> bool:
        return any(m["Subject"] == subject for m in self.messages())


def read_inbox(account_root: Path) -> list[bytes]:
    """The Inbox messages of an account, as kittiwake stored them.

    Opened beside the running server; that is safe (see
    test_account_list_during_delivery_does_not_break_it in test_smtp_clients.py).
    """
    store = AccountStore(ACCOUNT, account_root)
    try:
        return [store.read(m.id) for m in store.messages("Inbox")]
    finally:
        store.close()


def _pick_ip() -> str:
    for _ in range(100):
        ip = f"127.{random.randint(1, 254)}.{random.randint(0, 254)}.{random.randint(2, 254)}"
        try:
            for port in (SMTP, SUBMISSIONS, SUBMISSION, 1081):
                with socket.socket() as sock:
                    sock.bind((ip, port))
        except OSError:
            continue
        return ip
    raise RuntimeError("no loopback address with the localserve ports free")


@contextlib.contextmanager
def start_localserve(base: Path) -> Iterator[LocalServe]:
    """``kittiwake localserve --dir BASE/ls --ip <random 127.x>``, stopped on exit."""
    ip = _pick_ip()
    log = base / "localserve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([KITTIWAKE, "localserve", "--dir", str(base / "ls"), "--ip", ip],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        waiting = [SMTP, SUBMISSIONS, SUBMISSION]
        while waiting:
            if proc.poll() is not None:
                pytest.fail(f"localserve exited ({proc.returncode}):\n{log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"localserve not listening on {ip}:{waiting}:\n{log.read_text()}")
            with contextlib.suppress(OSError), socket.create_connection((ip, waiting[0]), 0.5):
                waiting.pop(0)
                continue
            time.sleep(0.05)
        yield LocalServe(base / "ls", ip, proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def localserve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServe]:
    with start_localserve(tmp_path_factory.mktemp("localserve")) as ls:
        yield ls


def subject_for(name: str) -> str:
    return f"{name}-{random.randrange(1 << 40):x}"


def run(args: list[str], *, stdin: bytes = b"", timeout: float = 30) -> tuple[int, str]:
    done = subprocess.run(args, input=stdin, capture_output=True, timeout=timeout)
    return done.returncode, (done.stdout + done.stderr).decode("utf-8", "replace")


def swaks(ls: LocalServe, port: int, *args: str) -> tuple[int, str]:
    return run([need("swaks", "swaks"), "--server", f"{ls.ip}:{port}", "--timeout", "20",
                *args])


def submission_received(msg: email.message.EmailMessage) -> str:
    """The Received header of the authenticated submission (RFC 3848 ESMTPSA).

    localserve hands submitted mail to its queue, which delivers it back to
    its own port 1025; that hop adds another Received header on top.
    """
    found = [" ".join(str(h).split()) for h in msg.get_all("Received", [])
             if "with ESMTPSA" in str(h)]
    assert len(found) == 1, msg.get_all("Received")
    return found[0]


def tls_args(ls: LocalServe, port: int) -> list[str]:
    mode = "--tlsc" if port == SUBMISSIONS else "--tls"  # implicit TLS / STARTTLS
    # --tls-verify: the self-signed localserve certificate is the trust anchor.
    return [mode, "--tls-verify", "--tls-ca-path", str(ls.cert)]


# --- the "done when": a message sent with swaks shows up in the account ---


def test_swaks_message_arrives_and_account_list_shows_it(localserve: LocalServe) -> None:
    before = len(localserve.messages())
    subject = subject_for("hello")
    # As the README says: swaks --server 127.0.0.1:1025 --to ... --from ...
    code, out = swaks(localserve, SMTP, "--to", "someone@example.com",
                      "--from", "app@example.net", "--header", f"Subject: {subject}",
                      "--body", "Sent by swaks.")
    assert code == 0, out
    assert re.search(r"<-  250 2\.0\.0 message accepted", out), out
    msg = localserve.find(subject)
    assert msg.get_content().strip() == "Sent by swaks."
    assert msg["To"] == "someone@example.com"
    received = " ".join(str(msg["Received"]).split())
    assert "by localhost" in received and "with ESMTP " in received, received
    assert "for <someone@example.com>" in received
    done = subprocess.run([KITTIWAKE, "--config", str(localserve.dir / "config"), "account",
                           "list", "--json"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    (account,) = json.loads(done.stdout)
    assert account["name"] == ACCOUNT
    assert account["messages"] == before + 1


# --- swaks: PLAIN, LOGIN, CRAM-MD5 over STARTTLS and implicit TLS ---


@pytest.mark.parametrize("port", [SUBMISSION, SUBMISSIONS], ids=["587-starttls", "465-tls"])
@pytest.mark.parametrize("mechanism", MECHANISMS_SWAKS)
def test_swaks_authenticates(localserve: LocalServe, port: int, mechanism: str) -> None:
    subject = subject_for(f"swaks-{mechanism}-{port}")
    code, out = swaks(localserve, port, *tls_args(localserve, port), "--auth", mechanism,
                      "--auth-user", USER, "--auth-password", PASSWORD,
                      "--from", USER, "--to", "friend@localhost",
                      "--header", f"Subject: {subject}")
    assert code == 0, out
    assert "=== TLS started with cipher" in out, out
    assert re.search(r"<~  235 2\.7\.0", out), out
    received = submission_received(localserve.find(subject))
    # kittiwake adds the TLS version and cipher.
    assert re.search(r"\(TLSv1\.[23], cipher \S+\)", received), received


# Failed logins in this module: 8, all from 127.0.0.1. localserve applies no login limits
# (kittiwake.limits.login); a normal server would slow 127.0.0.1 down after 3 of them.


@pytest.mark.parametrize("port", [SUBMISSION, SUBMISSIONS], ids=["587-starttls", "465-tls"])
def test_swaks_wrong_password_gets_535(localserve: LocalServe, port: int) -> None:
    code, out = swaks(localserve, port, *tls_args(localserve, port), "--auth", "PLAIN",
                      "--auth-user", USER, "--auth-password", "not-the-password",
                      "--from", USER, "--to", "friend@localhost")
    assert code == 28, out  # swaks: authentication failed
    assert re.search(r"<~\* 535 5\.7\.8", out), out


# --- localserve's failure triggers, as a sending application sees them ---


@pytest.mark.parametrize(("sender", "rcpt", "code", "stage", "exit_code"), [
    ("app@example.net", "rcptto550@example.com", 550, "RCPT", 24),
    ("app@example.net", "x451@example.com", 451, "DATA", 26),
    ("mailfromtemperror@example.net", "someone@example.com", 451, "MAIL", 23),
], ids=["rcptto550", "x451-after-data", "mailfromtemperror"])
def test_swaks_sees_failure_triggers(localserve: LocalServe, sender: str, rcpt: str, code: int,
                                     stage: str, exit_code: int) -> None:
    subject = subject_for("trigger")
    status, out = swaks(localserve, SMTP, "--from", sender, "--to", rcpt,
                        "--header", f"Subject: {subject}")
    assert status == exit_code, out
    lines = out.splitlines()
    failed = next(i for i, line in enumerate(lines) if line.startswith("<** "))
    assert lines[failed].startswith(f"<** {code} "), out
    # The command it answered: the last one sent before the failure.
    sent = [line for line in lines[:failed] if line.startswith(" -> ")]
    command = sent[-1][4:]
    if stage == "DATA":
        assert command == ".", out  # after the message data
        assert any(line == " -> DATA" for line in sent), out
    else:
        assert command.startswith(f"{stage} "), out
    assert not localserve.has(subject)


# --- gsasl: every mechanism, including SCRAM and SCRAM-PLUS ---


def gsasl(ls: LocalServe, mechanism: str, *extra: str,
          password: str = PASSWORD) -> tuple[int, str]:
    return run([need("gsasl", "gsasl"), "--smtp", f"--connect={ls.ip}:{SUBMISSION}",
                "--starttls", f"--x509-ca-file={ls.cert}", "-m", mechanism,
                "-a", USER, "-p", password, "--verbose", *extra])


def gsasl_extra(mechanism: str) -> list[str]:
    if mechanism.endswith("-PLUS"):
        return [f"--priority={TLS12}"]  # -PLUS needs TLS 1.2 here (module docstring)
    if mechanism.startswith("SCRAM"):
        return ["--no-cb"]  # plain SCRAM on TLS 1.3 (module docstring)
    return []


@pytest.mark.parametrize("mechanism", [*MECHANISMS_SWAKS, *MECHANISMS_SCRAM,
                                       "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"])
def test_gsasl_authenticates(localserve: LocalServe, mechanism: str) -> None:
    code, out = gsasl(localserve, mechanism, *gsasl_extra(mechanism))
    assert code == 0, out
    assert "235 2.7.0" in out, out
    assert "Client authentication finished (server trusted)" in out, out
    # The server's log names the mechanism that was used.
    assert re.search(rf"msg=authenticated .*mechanism={re.escape(mechanism)}\b",
                     localserve.log.read_text()), localserve.log.read_text()


@pytest.mark.parametrize("mechanism", ["CRAM-MD5", "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"])
def test_gsasl_wrong_password_gets_535(localserve: LocalServe, mechanism: str) -> None:
    code, out = gsasl(localserve, mechanism, *gsasl_extra(mechanism), password="wrong")
    assert code != 0, out
    assert "535 5.7.8" in out, out


def ehlo_after_starttls(out: str) -> str:
    after = out.split("220 2.0.0", 1)[1]
    return next(line for line in after.splitlines() if line.startswith("250 AUTH "))


def test_plus_offered_on_tls12_only(localserve: LocalServe) -> None:
    code, out = gsasl(localserve, "SCRAM-SHA-256-PLUS", f"--priority={TLS12}")
    assert code == 0, out
    assert "SCRAM-SHA-256-PLUS" in ehlo_after_starttls(out).split()
    # TLS 1.3: no -PLUS in EHLO, and asking for it anyway is refused (504, RFC 4954 §4).
    code, out = gsasl(localserve, "SCRAM-SHA-256-PLUS")
    assert code != 0, out
    offered = ehlo_after_starttls(out).split()
    assert "SCRAM-SHA-256" in offered and "SCRAM-SHA-1" in offered
    assert not [m for m in offered if m.endswith("-PLUS")], offered
    assert "504 5.5.4" in out, out


# --- implicit TLS with SCRAM: smtplib + scramp (gsasl cannot do implicit TLS) ---


def scram_auth(smtp: smtplib.SMTP, mechanism: str, password: str,
               binding: tuple[str, bytes] | None = None) -> tuple[int, bytes]:
    """RFC 4954 AUTH exchange driven by scramp's client; the final SMTP reply."""
    client = scramp.ScramClient([mechanism], USER, password, channel_binding=binding)
    code, text = smtp.docmd("AUTH", f"{mechanism} " +
                            base64.b64encode(client.get_client_first().encode()).decode())
    if code != 334:
        return code, text
    client.set_server_first(base64.b64decode(text).decode())
    code, text = smtp.docmd(base64.b64encode(client.get_client_final().encode()).decode())
    if code != 334:
        return code, text
    client.set_server_final(base64.b64decode(text).decode())  # verifies the server
    return smtp.docmd("")


def tls_context(ls: LocalServe, maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ls.cert))
    if maximum is not None:
        context.maximum_version = maximum
    return context


@pytest.mark.parametrize("mechanism", MECHANISMS_SCRAM)
def test_smtplib_scram_over_implicit_tls(localserve: LocalServe, mechanism: str) -> None:
    with smtplib.SMTP_SSL(localserve.ip, SUBMISSIONS, context=tls_context(localserve),
                          timeout=20) as smtp:
        smtp.ehlo("client.example")
        assert smtp.sock is not None
        assert isinstance(smtp.sock, ssl.SSLSocket)
        assert smtp.sock.version() == "TLSv1.3"
        assert mechanism in smtp.esmtp_features["auth"].split()
        assert "SCRAM-SHA-256-PLUS" not in smtp.esmtp_features["auth"].split()
        code, text = scram_auth(smtp, mechanism, PASSWORD)
        assert (code, text[:5]) == (235, b"2.7.0"), text
        subject = subject_for(f"smtplib-{mechanism}")
        smtp.sendmail(USER, ["friend@localhost"],
                      f"From: {USER}\r\nTo: friend@localhost\r\nSubject: {subject}\r\n\r\nx\r\n")
    assert "(TLSv1.3, cipher" in submission_received(localserve.find(subject))


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"])
def test_smtplib_scram_plus_over_implicit_tls12(localserve: LocalServe, mechanism: str) -> None:
    context = tls_context(localserve, ssl.TLSVersion.TLSv1_2)
    with smtplib.SMTP_SSL(localserve.ip, SUBMISSIONS, context=context, timeout=20) as smtp:
        smtp.ehlo("client.example")
        assert isinstance(smtp.sock, ssl.SSLSocket)
        assert smtp.sock.version() == "TLSv1.2"
        assert mechanism in smtp.esmtp_features["auth"].split()
        unique = smtp.sock.get_channel_binding("tls-unique")
        assert unique
        code, text = scram_auth(smtp, mechanism, PASSWORD, ("tls-unique", unique))
        assert (code, text[:5]) == (235, b"2.7.0"), text


def test_scram_plus_with_another_connections_binding_fails(localserve: LocalServe) -> None:
    """RFC 5802 §6: binding data of another TLS connection must be refused (MITM)."""
    context = tls_context(localserve, ssl.TLSVersion.TLSv1_2)
    with smtplib.SMTP_SSL(localserve.ip, SUBMISSIONS, context=context, timeout=20) as smtp:
        assert isinstance(smtp.sock, ssl.SSLSocket)
        other = smtp.sock.get_channel_binding("tls-unique")
    assert other
    with smtplib.SMTP_SSL(localserve.ip, SUBMISSIONS, context=context, timeout=20) as smtp:
        smtp.ehlo("client.example")
        assert isinstance(smtp.sock, ssl.SSLSocket)
        assert smtp.sock.get_channel_binding("tls-unique") != other
        code, text = scram_auth(smtp, "SCRAM-SHA-256-PLUS", PASSWORD, ("tls-unique", other))
        assert code == 535, text


def test_smtplib_scram_wrong_password(localserve: LocalServe) -> None:
    with smtplib.SMTP_SSL(localserve.ip, SUBMISSIONS, context=tls_context(localserve),
                          timeout=20) as smtp:
        smtp.ehlo("client.example")
        code, text = scram_auth(smtp, "SCRAM-SHA-256", "wrong")
        assert code == 535, text


# --- msmtp: a client application submitting through 587 with AUTH ---


@pytest.mark.parametrize("auth", ["scram-sha-256", "plain"])
def test_msmtp_submits_through_587(localserve: LocalServe, tmp_path: Path, auth: str) -> None:
    subject = subject_for(f"msmtp-{auth}")
    message = (f"From: {USER}\r\nTo: bob@example.org\r\nSubject: {subject}\r\n\r\n"
               "Sent by msmtp.\r\n").encode()
    code, out = run([need("msmtp", "msmtp"), f"--host={localserve.ip}", f"--port={SUBMISSION}",
                     "--tls=on", "--tls-starttls=on", f"--tls-trust-file={localserve.cert}",
                     f"--auth={auth}", f"--user={USER}", f"--passwordeval=echo {PASSWORD}",
                     f"--from={USER}", "--debug", "bob@example.org"], stdin=message)
    assert code == 0, out
    assert "<-- 235 2.7.0" in out, out
    msg = localserve.find(subject)
    assert msg.get_content().strip() == "Sent by msmtp."
    assert "by localhost" in submission_received(msg)


def test_no_plus_mechanisms_without_tls(localserve: LocalServe) -> None:
    """RFC 5802 §6: -PLUS means channel binding, which needs a TLS channel."""
    with smtplib.SMTP(localserve.ip, SUBMISSION, timeout=20) as smtp:
        smtp.ehlo("client.example")
        offered = smtp.esmtp_features["auth"].split()
        assert "SCRAM-SHA-256" in offered  # localserve allows AUTH without TLS
        plus = [m for m in offered if m.endswith("-PLUS")]
        assert not plus, f"offered without TLS: {plus}"



def test_account_list_during_delivery_does_not_break_it(tmp_path: Path) -> None:
    """The README's way to see the count must not disturb mail arriving meanwhile.

    Regression test: opening an account's store used to run crash clean-up
    that deleted the temporary files of the server's deliveries in flight
    (451 for the sender). smtp-source stops at the first error.
    """
    with start_localserve(tmp_path) as ls:
        source = subprocess.Popen([need("smtp-source", "postfix"), "-s", "5", "-m", "400",
                                   "-l", "2000", "-t", "someone@localhost", f"{ls.ip}:{SMTP}"],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        lists = 0
        while source.poll() is None:
            done = subprocess.run([KITTIWAKE, "--config", str(ls.dir / "config"), "account",
                                   "list"], capture_output=True, text=True, timeout=30)
            assert done.returncode == 0, done.stderr
            lists += 1
        out = source.communicate()[0].decode()
        assert lists >= 1
        assert source.returncode == 0, f"smtp-source: {out}\n{ls.log.read_text()[-2000:]}"
        assert len(ls.messages()) == 400


def test_submission_without_auth_gets_530(localserve: LocalServe) -> None:
    """RFC 6409 §4.3 / RFC 4954 §6: submission requires AUTH before MAIL."""
    code, out = swaks(localserve, SUBMISSION, *tls_args(localserve, SUBMISSION),
                      "--from", USER, "--to", "friend@localhost")
    assert code == 23, out  # swaks: error after MAIL FROM
    assert re.search(r"<~\* 530 5\.7\.0", out), out
