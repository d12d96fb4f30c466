"""A real Postfix relays mail to kittiwake's incoming SMTP listener (RFC 5321, RFC 3207).

Postfix (private instance, :mod:`.postfix`) has ``relayhost`` set to
kittiwake's port-25 service and ``smtp_tls_security_level = encrypt``, so it
must use STARTTLS (RFC 3207) and never sends in plain text; it trusts the
test CA (``smtp_tls_CAfile``), so its log says "Trusted TLS connection". The
message is injected with Postfix's own ``sendmail``. kittiwake (``kittiwake
serve`` as a subprocess) resolves through the DNS world (bind9 + validating
unbound), so SPF (RFC 7208), iprev (RFC 8601 §3) and DMARC (RFC 7489) get
real, DNSSEC-signed answers: ``signed.test`` has ``v=spf1 ip4:127.0.0.1 -all``
and ``p=reject``; 127.0.0.1 has the PTR ``mx.signed.test``. Postfix connects
from 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import random
import re
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from kittiwake.store import AccountStore

from .dnsworld import DNSWorld
from .loopback import free_port
from .postfix import Postfix

KITTIWAKE = [str(Path(sys.executable).parent / "kittiwake")]  # the console script
HOSTNAME = "mail.kw.test"
ACCOUNT, ADDRESS = "alice", "alice@kw.test"


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


def free_loopback() -> tuple[str, int]:
    """A random 127.0.0.N and a TCP port free on it (tests run in parallel)."""
    for _ in range(100):
        ip = f"127.0.{random.randint(1, 254)}.{random.randint(2, 254)}"
        with socket.socket() as sock:
            try:
                sock.bind((ip, 0))
            except OSError:
                continue
            return ip, int(sock.getsockname()[1])
    raise RuntimeError("no free loopback address")


def wait_port(ip: str, port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"kittiwake exited ({proc.returncode}):\n{log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection((ip, port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"kittiwake not listening on {ip}:{port}:\n{log.read_text()}")


@dataclass
class Kittiwake:
    """``kittiwake serve`` with an smtp listener (STARTTLS) on ip:port."""

    dir: Path
    ip: str
    port: int
    port_no_starttls: int
    port_require_starttls: int
    ca: trustme.CA
    proc: subprocess.Popen[bytes]
    log: Path

    def inbox(self) -> list[bytes]:
        return read_inbox(self.dir / "data" / "accounts" / ACCOUNT)


@pytest.fixture(scope="module")
def kittiwake(tmp_path_factory: pytest.TempPathFactory,
              dns_world: DNSWorld) -> Iterator[Kittiwake]:
    base = tmp_path_factory.mktemp("kw")
    conf = base / "config"
    (conf / "certs").mkdir(parents=True)
    ca = trustme.CA()
    (conf / "domains.conf").write_text("")
    # Enough for the set-up commands; the listeners are written below.
    (conf / "kittiwake.conf").write_text(f'hostname = "{HOSTNAME}"\ndata_dir = "../data"\n')
    env = dns_world.env
    for args in (["domain", "add", "kw.test"], ["account", "add", ACCOUNT, ADDRESS]):
        done = subprocess.run([*KITTIWAKE, "--config", str(conf), *args], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    # The ports are picked here and bound by the server later: should another process
    # take one meanwhile, the server cannot listen; start again with new ones.
    for attempt in range(5):
        ip, port = free_loopback()
        port2, port3 = free_port(ip), free_port(ip)
        cert = ca.issue_cert(HOSTNAME, ip)
        cert.private_key_and_cert_chain_pem.write_to_path(str(conf / "certs" / "mail.pem"))
        cert.private_key_pem.write_to_path(str(conf / "certs" / "mail.key"))
        (conf / "kittiwake.conf").write_text(f'''hostname = "{HOSTNAME}"
data_dir = "../data"
shutdown_grace_seconds = 1
postmaster_account = "{ACCOUNT}"

[dns]
dnssec_probe = "signed.test"

[listeners.public]
ips = ["{ip}"]

[listeners.public.tls]
certificates = [{{ cert_file = "certs/mail.pem", key_file = "certs/mail.key" }}]

[listeners.public.smtp]
enabled = true
port = {port}

# Two more listeners whose smtp options the server must honour.
[listeners.nostarttls]
ips = ["{ip}"]
tls = {{ certificates = [{{ cert_file = "certs/mail.pem", key_file = "certs/mail.key" }}] }}
smtp = {{ enabled = true, port = {port2}, no_starttls = true }}

[listeners.requirestarttls]
ips = ["{ip}"]
tls = {{ certificates = [{{ cert_file = "certs/mail.pem", key_file = "certs/mail.key" }}] }}
smtp = {{ enabled = true, port = {port3}, require_starttls = true }}
''')
        log = base / "kittiwake.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([*KITTIWAKE, "--config", str(conf), "serve"], env=env,
                                    stdout=out, stderr=subprocess.STDOUT)
        try:
            for p in (port, port2, port3):
                wait_port(ip, p, proc, log)
            break
        except RuntimeError:
            proc.kill()
            proc.wait()
            if attempt == 4 or "cannot listen" not in log.read_text():
                raise
    try:
        yield Kittiwake(base, ip, port, port2, port3, ca, proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def postfix(kittiwake: Kittiwake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postfix]:
    ca_file = tmp_path_factory.mktemp("pfca") / "ca.pem"
    kittiwake.ca.cert_pem.write_to_path(str(ca_file))
    main = {
        "relayhost": f"[{kittiwake.ip}]:{kittiwake.port}",
        "smtp_tls_security_level": "encrypt",  # STARTTLS or nothing (RFC 3207)
        "smtp_tls_CAfile": str(ca_file),
        "smtp_tls_loglevel": "1",
        "smtp_bind_address": "127.0.0.1",  # the IP signed.test's SPF record allows
        "myhostname": "mx.signed.test",  # HELO name
        "smtp_address_preference": "ipv4",
    }
    with Postfix(port=0, main=main, hostname="mx.signed.test") as pf:
        yield pf


def message(sender: str, subject: str) -> bytes:
    return (f"From: Sender <{sender}>\r\nTo: {ADDRESS}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject}@signed.test>\r\n"
            "Date: Tue, 24 Nov 2026 12:00:00 +0000\r\n\r\n"
            f"Hello from Postfix ({subject}).\r\n").encode()


def queue_id_for(pf: Postfix, subject: str) -> str:
    match = pf.wait_log(rf"cleanup\[\d+\]: ([0-9A-F]+): message-id=<{subject}@signed\.test>")
    return match.group(1)


def find(kw: Kittiwake, subject: str) -> email.message.EmailMessage:
    for raw in kw.inbox():
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        if msg["Subject"] == subject:
            assert isinstance(msg, email.message.EmailMessage)
            return msg
    raise AssertionError(f"no message {subject!r} in the inbox; log:\n{kw.log.read_text()}")


def test_postfix_relays_over_starttls_and_kittiwake_records_checks(
        kittiwake: Kittiwake, postfix: Postfix) -> None:
    subject = f"relay-{random.randrange(1 << 30)}"
    postfix.sendmail(message("sender@signed.test", subject), sender="sender@signed.test",
                     recipients=[ADDRESS])
    qid = queue_id_for(postfix, subject)
    sent = postfix.wait_log(rf"{qid}: to=<{re.escape(ADDRESS)}>.*status=(\w+) \((.*)\)")
    assert sent.group(1) == "sent", sent.group(0)
    assert "250 2.0.0" in sent.group(2)
    # Postfix verified our certificate against the test CA and says which TLS it used.
    tls = postfix.wait_log(rf"Trusted TLS connection established to "
                           rf"{re.escape(kittiwake.ip)}\[{re.escape(kittiwake.ip)}\]:"
                           rf"{kittiwake.port}: (TLSv[\d.]+) with cipher (\S+)")
    version, cipher = tls.group(1), tls.group(2)

    msg = find(kittiwake, subject)
    received = " ".join(str(msg.get_all("Received")[0]).split())
    # RFC 5321 §4.4 / RFC 3848: ESMTPS, with the TLS details Postfix reported.
    assert "from mx.signed.test" in received
    assert "[127.0.0.1]" in received
    assert f"by {HOSTNAME}" in received
    assert "with ESMTPS" in received
    assert f"{version}, cipher {cipher}" in received
    assert f"for <{ADDRESS}>" in received
    assert "spf dnssec" in received and "iprev dnssec" in received

    # RFC 8601: our authserv-id, SPF pass on a DNSSEC-signed record, DMARC pass (aligned SPF).
    authres = " ".join(str(msg["Authentication-Results"]).split())
    assert authres.startswith(f"{HOSTNAME};"), authres
    assert "spf=pass (dnssec) smtp.mailfrom=sender@signed.test" in authres
    assert "iprev=pass (mx.signed.test dnssec) policy.iprev=127.0.0.1" in authres
    assert "dkim=none" in authres
    # RFC 8601 §2.2: a reason comes between the result and the properties.
    assert re.search(r"dmarc=pass \(dnssec\)( reason=\"[^\"]*\")? header\.from=signed\.test",
                     authres), authres
    # RFC 7208 §9.1
    received_spf = " ".join(str(msg["Received-SPF"]).split())
    assert received_spf.startswith("pass ")
    assert "client-ip=127.0.0.1;" in received_spf
    assert 'envelope-from="sender@signed.test";' in received_spf  # @ needs quotes
    assert msg.get_content().strip() == f"Hello from Postfix ({subject})."


def test_dmarc_reject_reaches_postfix_as_550(kittiwake: Kittiwake, postfix: Postfix) -> None:
    """From: signed.test (p=reject) with an envelope whose SPF fails: Postfix gets 550 5.7.1."""
    subject = f"reject-{random.randrange(1 << 30)}"
    # nullmx.signed.test: "v=spf1 -all", so SPF fails and does not align anyway.
    postfix.sendmail(message("sender@signed.test", subject),
                     sender="sender@nullmx.signed.test", recipients=[ADDRESS])
    qid = queue_id_for(postfix, subject)
    done = postfix.wait_log(rf"{qid}: to=<{re.escape(ADDRESS)}>.*status=(\w+) \((.*)\)")
    assert done.group(1) == "bounced", done.group(0)
    assert "said: 550 5.7.1" in done.group(2)
    assert "DMARC" in done.group(2)
    assert "(in reply to end of DATA command)" in done.group(2)
    assert all(subject.encode() not in raw for raw in kittiwake.inbox())


def relay(kittiwake: Kittiwake, postfix: Postfix, domain: str,
          name: str) -> email.message.EmailMessage:
    """Send From/MAIL FROM sender@DOMAIN through Postfix; the message kittiwake stored."""
    subject = f"{name}-{random.randrange(1 << 30)}"
    postfix.sendmail(message(f"sender@{domain}", subject), sender=f"sender@{domain}",
                     recipients=[ADDRESS])
    qid = queue_id_for(postfix, subject)
    sent = postfix.wait_log(rf"{qid}: to=<{re.escape(ADDRESS)}>.*status=(\w+) \((.*)\)")
    assert sent.group(1) == "sent", sent.group(0)
    return find(kittiwake, subject)


def test_insecure_answers_carry_no_dnssec_note(kittiwake: Kittiwake, postfix: Postfix) -> None:
    """unsigned.test: same SPF record, but no DS in test., so nothing is marked dnssec."""
    msg = relay(kittiwake, postfix, "unsigned.test", "insecure")
    authres = " ".join(str(msg["Authentication-Results"]).split())
    assert "spf=pass smtp.mailfrom=sender@unsigned.test" in authres, authres
    assert re.search(r"dmarc=pass( reason=\"[^\"]*\")? header\.from=unsigned\.test", authres)
    assert "iprev=pass (mx.signed.test dnssec)" in authres  # the PTR zone is signed
    received = " ".join(str(msg["Received"]).split())
    assert "(iprev dnssec, spf insecure, dmarc insecure)" in received, received


def test_bogus_dnssec_gives_temperror_not_pass(kittiwake: Kittiwake, postfix: Postfix) -> None:
    """bogus.test: expired signatures, unbound answers SERVFAIL (RFC 4035 §5.5, RFC 8914).

    The record would allow 127.0.0.1, but a bogus answer must not be used:
    SPF and DMARC are temperror (RFC 7208 §2.6.6, RFC 7489 §6.6.2); the
    message is still delivered, with the reason in Authentication-Results.
    """
    msg = relay(kittiwake, postfix, "bogus.test", "bogus")
    authres = " ".join(str(msg["Authentication-Results"]).split())
    spf_part = re.search(r"spf=(\w+) reason=\"([^\"]*)\" smtp\.mailfrom=sender@bogus\.test",
                         authres)
    assert spf_part, authres
    assert spf_part.group(1) == "temperror"
    assert "SERVFAIL" in spf_part.group(2)
    # EDE 7 "Signature Expired" the first time, EDE 6 "DNSSEC Bogus" from unbound's cache.
    assert re.search(r"EDE [67]", spf_part.group(2)), spf_part.group(2)
    assert re.search(r"dmarc=temperror( reason=\"[^\"]*\")? header\.from=bogus\.test", authres)
    assert str(msg["Received-SPF"]).startswith("temperror ")


def test_body_survives_dot_stuffing_and_8bit(kittiwake: Kittiwake, postfix: Postfix) -> None:
    """RFC 5321 §4.5.2 transparency and 8BITMIME: the body arrives byte for byte."""
    subject = f"body-{random.randrange(1 << 30)}"
    lines = [".", "..", ". leading dot", "...", "Grüße aus Köln, 8-bit UTF-8 ✓", "",
             "x" * 998, "end"]
    body = ("\r\n".join(lines * 200) + "\r\n").encode()
    head = message("sender@signed.test", subject).split(b"\r\n\r\n", 1)[0]
    head += b"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8"
    head += b"\r\nContent-Transfer-Encoding: 8bit"
    postfix.sendmail(head + b"\r\n\r\n" + body, sender="sender@signed.test",
                     recipients=[ADDRESS])
    qid = queue_id_for(postfix, subject)
    sent = postfix.wait_log(rf"{qid}: to=<{re.escape(ADDRESS)}>.*status=(\w+) \((.*)\)")
    assert sent.group(1) == "sent", sent.group(0)
    raws = [raw for raw in kittiwake.inbox() if f"Subject: {subject}".encode() in raw]
    assert len(raws) == 1
    assert raws[0].split(b"\r\n\r\n", 1)[1] == body


def relay_to(postfix: Postfix, rcpts: list[str],
             name: str) -> tuple[str, dict[str, tuple[str, str]]]:
    """Send one message to several recipients; Postfix's status and reply per recipient."""
    subject = f"{name}-{random.randrange(1 << 30)}"
    postfix.sendmail(message("sender@signed.test", subject), sender="sender@signed.test",
                     recipients=rcpts)
    qid = queue_id_for(postfix, subject)
    results = {}
    for rcpt in rcpts:
        done = postfix.wait_log(rf"{qid}: to=<{re.escape(rcpt)}>.*status=(\w+) \((.*)\)")
        results[rcpt] = (done.group(1), done.group(2))
    return subject, results


def test_unknown_recipient_rejected_others_delivered(kittiwake: Kittiwake,
                                                     postfix: Postfix) -> None:
    """RCPT for an unknown user of our domain: 550 5.1.1 for that one (RFC 5321 §3.3).

    Postfix bounces only the unknown recipient and delivers to the other in
    the same transaction.
    """
    subject, results = relay_to(postfix, [ADDRESS, "nobody@kw.test"], "rcpts")
    assert results[ADDRESS][0] == "sent", results
    assert results["nobody@kw.test"][0] == "bounced", results
    assert "said: 550 5.1.1" in results["nobody@kw.test"][1]
    assert "(in reply to RCPT TO command)" in results["nobody@kw.test"][1]
    copies = [raw for raw in kittiwake.inbox() if f"Subject: {subject}".encode() in raw]
    assert len(copies) == 1, kittiwake.log.read_text()[-2000:]


def test_postmaster_of_our_domain_is_accepted(kittiwake: Kittiwake, postfix: Postfix) -> None:
    """RFC 5321 §4.5.1: postmaster@ each domain we accept mail for MUST work.

    kittiwake.conf has postmaster_account = "alice", documented as "Account
    that receives mail for postmaster@".
    """
    _subject, results = relay_to(postfix, ["postmaster@kw.test"], "postmaster")
    assert results["postmaster@kw.test"][0] == "sent", results


def test_smtputf8_address_through_postfix(kittiwake: Kittiwake, postfix: Postfix) -> None:
    """RFC 6531 §3.7.3: Postfix uses SMTPUTF8 for a UTF-8 sender; Received says UTF8SMTPS.

    The delivery itself proves Postfix sent the SMTPUTF8 parameter: without it
    kittiwake answers 553 5.6.7 to a non-ASCII MAIL FROM.
    """
    subject = f"utf8-{random.randrange(1 << 30)}"
    sender = "grüße@signed.test"
    raw = message("sender@signed.test", subject).replace(b"sender@signed.test",
                                                         sender.encode(), 1)
    postfix.sendmail(raw, sender=sender, recipients=[ADDRESS])
    qid = queue_id_for(postfix, subject)
    sent = postfix.wait_log(rf"{qid}: to=<{re.escape(ADDRESS)}>.*status=(\w+) \((.*)\)")
    assert sent.group(1) == "sent", sent.group(0)
    msg = find(kittiwake, subject)
    received = " ".join(str(msg["Received"]).split())
    assert "with UTF8SMTPS" in received, received
    authres = " ".join(str(msg["Authentication-Results"]).split())
    assert "spf=pass (dnssec)" in authres, authres
    assert str(msg["From"]) == f"Sender <{sender}>"


# The listener options no_starttls and require_starttls reach the SMTP session.


def test_listener_no_starttls_is_honoured(kittiwake: Kittiwake) -> None:
    with smtplib.SMTP(kittiwake.ip, kittiwake.port_no_starttls, timeout=10) as smtp:
        smtp.ehlo("client.signed.test")
        assert not smtp.has_extn("starttls"), smtp.esmtp_features


def test_listener_require_starttls_is_honoured(kittiwake: Kittiwake) -> None:
    with smtplib.SMTP(kittiwake.ip, kittiwake.port_require_starttls, timeout=10) as smtp:
        smtp.ehlo("client.signed.test")
        assert smtp.has_extn("starttls")
        code, text = smtp.mail("sender@signed.test")
        # RFC 3207 §4: "530 5.7.0 Must issue a STARTTLS command first".
        assert code == 530, text
