"""A running `kittiwake serve` under a scripted workload: /metrics shows exactly what
happened, passes `promtool check metrics`, starts every known label set at 0, and
`kittiwake status` reports the same state.

The workload: one message in over SMTP (MX), one submission with two remote
recipients, one of which goes to a "fail" transport (a failed delivery and a
DSN back to the sender's Inbox) and one to an unreachable domain (a
temporary failure: DNS points at a closed port).
"""

from __future__ import annotations

import json
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme
from prometheus_client.parser import text_string_to_metric_families
from tests.integration.loopback import free_port

from kittiwake import listener as listener_metrics
from kittiwake.dns import metrics as dns_metrics
from kittiwake.http import listener_metrics as http_listener_metrics
from kittiwake.http import metrics as http_metrics
from kittiwake.imapserver import metrics as imap_metrics
from kittiwake.queue import metrics as queue_metrics
from kittiwake.smtpserver import metrics as smtp_metrics
from kittiwake.store import metrics as store_metrics

KITTIWAKE = [sys.executable, "-m", "kittiwake.cli.main"]
PASSWORD = "long enough secret"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum over every series of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


class Running:
    def __init__(self, base: list[str], metrics_port: int, smtp_port: int,
                 submission_port: int, ca: trustme.CA) -> None:
        self.base = base
        self.metrics_port = metrics_port
        self.smtp_port = smtp_port
        self.submission_port = submission_port
        self.ca = ca

    def scrape_text(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.read().decode()

    def scrape(self) -> Samples:
        return parse(self.scrape_text())

    def wait_for(self, condition: Callable[[Samples], bool], what: str,
                 timeout: float = 30) -> Samples:
        deadline = time.monotonic() + timeout
        while True:
            samples = self.scrape()
            if condition(samples):
                return samples
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.1)

    def status(self) -> dict:  # type: ignore[type-arg]
        out = subprocess.run([*self.base, "status", "--json"], capture_output=True, text=True,
                             check=True, timeout=30).stdout
        return json.loads(out)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    conf = tmp_path / "config"
    conf.mkdir()
    ca = trustme.CA()
    cert = ca.issue_cert("mail.example.org")
    cert.private_key_and_cert_chain_pem.write_to_path(str(conf / "cert.pem"))
    cert.private_key_pem.write_to_path(str(conf / "key.pem"))
    metrics_port, smtp_port, submission_port = free_port(), free_port(), free_port()
    (conf / "kittiwake.conf").write_text(f"""
hostname = "mail.example.org"
data_dir = "../data"
shutdown_grace_seconds = 2
[dns]
resolvers = ["127.0.0.1:{free_port()}"]
timeout_seconds = 0.2
[transports.off.fail]
code = 554
message = "no mail to fail.example"
[listeners.public]
ips = ["127.0.0.1"]
smtp = {{ enabled = true, port = {smtp_port} }}
submission = {{ enabled = true, port = {submission_port} }}
metrics = {{ enabled = true, port = {metrics_port} }}
[listeners.public.tls]
certificates = [{{ cert_file = "cert.pem", key_file = "key.pem" }}]
""")
    (conf / "domains.conf").write_text('[[routes]]\nto_domains = ["fail.example"]\n'
                                       'transport = "off"\n')
    base = [*KITTIWAKE, "--config", str(conf)]
    for args, stdin in ((["domain", "add", "example.org"], None),
                        (["account", "add", "alice", "alice@example.org"], None),
                        (["account", "setpassword", "alice"], f"{PASSWORD}\n".encode())):
        subprocess.run([*base, *args], input=stdin, check=True, capture_output=True)
    log = tmp_path / "serve.log"
    with open(log, "wb") as log_file:
        proc = subprocess.Popen([*base, "serve"], stderr=log_file, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while "kittiwake started" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield Running(base, metrics_port, smtp_port, submission_port, ca)
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_fresh_server_has_every_known_label_set_at_zero(running: Running) -> None:
    text = running.scrape_text()
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: install the Debian package prometheus"
    check = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                           capture_output=True)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    s = parse(text)
    expected: dict[str, list[dict[str, str]]] = {
        "kittiwake_smtpserver_commands_total": [
            {"verb": v, "class": c} for v in smtp_metrics.VERBS
            for c in smtp_metrics.REPLY_CLASSES],
        "kittiwake_smtpserver_connections_total": [
            {"service": sv, "result": r} for sv in smtp_metrics.SERVICES
            for r in ("accepted", "refused")],
        "kittiwake_smtpserver_auth_total": [
            {"mechanism": m, "result": r} for m in smtp_metrics.MECHANISMS
            for r in ("ok", "badcreds", "malformed", "unsupported", "refused")],
        "kittiwake_smtpserver_spf_results_total": [
            {"result": r, "dnssec": d} for r in ("pass", "fail", "softfail", "neutral", "none",
                                                  "temperror", "permerror")
            for d in ("yes", "no")],
        "kittiwake_smtpserver_ratelimit_refusals_total": [
            {"kind": k} for k in ("connection-rate", "message-rate", "per-ip-connections",
                                 "total-connections", "login")],
        "kittiwake_queue_delivery_attempts_total": [
            {"transport": t, "attempt": a, "result": r} for t in queue_metrics.TRANSPORTS
            for a in queue_metrics.ATTEMPT_BUCKETS for r in ("ok", "temporary", "permanent")],
        "kittiwake_queue_tls_connections_total": [
            {"policy": p, "result": r} for p in queue_metrics.TLS_POLICIES
            for r in ("success", "failure")],
        "kittiwake_queue_dsns_sent_total": [
            {"kind": k} for k in ("failed", "delayed", "delivered", "relayed", "expanded")],
        "kittiwake_mtasts_policy_fetches_total": [
            {"result": r} for r in ("ok", "sts-policy-fetch-error", "sts-policy-invalid",
                                    "sts-webpki-invalid")],
        "kittiwake_store_operations_total": [
            {"op": op, "result": r} for op in store_metrics.OPERATIONS for r in ("ok", "error")],
        "kittiwake_dns_queries_total": [
            {"type": t, "result": r} for t in ("A", "AAAA", "MX", "TXT", "PTR", "TLSA")
            for r in dns_metrics.RESULTS],
        # The parts added since: TLS on our listeners, HTTP, junk, TLS reports, DNS cache,
        # queue connections and pacing, IMAP (NOTIFY too).
        "kittiwake_tls_handshake_failures_total": [
            {"service": sv, "reason": r} for sv in listener_metrics.TLS_SERVICES
            for r in listener_metrics.HANDSHAKE_FAILURE_REASONS],
        "kittiwake_http_requests_total": [
            {"route": r, "status": st} for r in http_metrics.ROUTES
            for st in http_metrics.STATUSES],
        "kittiwake_http_listener_requests_total": [
            {"service": sv, "kind": k} for sv in http_listener_metrics.SERVICES
            for k in http_listener_metrics.REQUEST_KINDS],
        "kittiwake_http_listener_tls_handshakes_total": [
            {"result": r} for r in http_listener_metrics.HANDSHAKE_RESULTS],
        "kittiwake_http_listener_connections_refused_total": [
            {"service": sv, "limit": lim} for sv in http_listener_metrics.SERVICES
            for lim in ("per-ip", "total")],
        "kittiwake_http_listener_slow_requests_closed_total": [
            {"service": sv} for sv in http_listener_metrics.SERVICES],
        "kittiwake_http_profile_requests_refused_total": [{}],
        "kittiwake_junk_verdicts_total": [
            {"action": a, "reason": r} for a in ("accept", "junk", "reject")
            for r in ("sent-to-address", "dmarc-domain-reputation", "address-reputation",
                      "verified-domain-reputation", "ip-reputation", "network-reputation",
                      "dnsbl", "content", "content-untrained", "disabled")],
        "kittiwake_junk_training_events_total": [
            {"class": c, "direction": d} for c in ("ham", "junk") for d in ("add", "remove")],
        "kittiwake_junk_rejects_expunged_total": [{}],
        "kittiwake_tlsrpt_reports_received_total": [
            {"outcome": o} for o in ("stored", "duplicate", "no-report", "malformed",
                                     "bad-json", "bad-field", "too-large", "bad-gzip")],
        "kittiwake_tlsrpt_reports_sent_total": [
            {"method": m, "result": r} for m in ("mailto", "https") for r in ("ok", "error")],
        "kittiwake_tlsrpt_received_sessions_total": [
            {"policy_type": t, "result": r} for t in ("sts", "tlsa", "no-policy-found")
            for r in ("successful", "failed")],
        "kittiwake_dns_cache_lookups_total": [
            {"result": r} for r in ("hit", "shared", "miss")],
        "kittiwake_queue_connections_total": [
            {"use": u} for u in ("new", "reused", "retired")],
        "kittiwake_queue_destination_pauses_total": [{}],
        "kittiwake_queue_paced_deferrals_total": [{}],
        "kittiwake_imapserver_connections_total": [
            {"service": sv, "result": r} for sv in imap_metrics.SERVICES
            for r in ("accepted", "refused")],
        "kittiwake_imapserver_commands_total": [
            {"command": c, "status": st} for c in imap_metrics.COMMAND_NAMES
            for st in imap_metrics.STATUSES],
        "kittiwake_imapserver_logins_total": [
            {"mechanism": m, "result": r} for m in imap_metrics.MECHANISMS
            for r in ("ok", "badcreds", "malformed", "refused")],
        "kittiwake_imapserver_notifications_total": [
            {"event": e} for e in ("MessageNew", "MessageExpunge", "FlagChange",
                                   "MailboxName", "SubscriptionChange", "MailboxMetadataChange",
                                   "ServerMetadataChange")],
        "kittiwake_imapserver_notify_overflows_total": [{}],
        "kittiwake_smtpserver_logins_limited_total": [
            {"result": r} for r in ("delayed", "refused")],
    }
    for name, label_sets in expected.items():
        for labels in label_sets:
            assert (name, tuple(sorted(labels.items()))) in s, (name, labels)
            # A fresh server has sent no query yet except its DNSSEC probe (not counted).
            assert value(s, name, **labels) == 0, (name, labels)
    for name in ("kittiwake_queue_messages", "kittiwake_queue_recipients",
                 "kittiwake_queue_held_messages", "kittiwake_queue_oldest_message_age_seconds",
                 "kittiwake_queue_oldest_held_message_age_seconds"):
        assert (name, ()) in s and value(s, name) == 0, name
    for name, label, values in (
            ("kittiwake_smtpserver_delivery_duration_seconds_count", "service",
             smtp_metrics.SERVICES),
            ("kittiwake_queue_delivery_duration_seconds_count", "transport",
             queue_metrics.TRANSPORTS),
            ("kittiwake_dns_query_duration_seconds_count", "type", ("A", "MX", "TLSA"))):
        for v in values:
            assert (name, ((label, v),)) in s and value(s, name, **{label: v}) == 0, (name, v)
    assert ("kittiwake_smtpserver_local_delivery_duration_seconds_count", ()) in s
    for name in ("kittiwake_junk_classify_duration_seconds_count",
                 "kittiwake_junk_train_duration_seconds_count",
                 "kittiwake_store_group_commit_deliveries_count",
                 "kittiwake_store_group_commit_duration_seconds_count"):
        assert (name, ()) in s and value(s, name) == 0, name
    for route in http_metrics.ROUTES:
        assert value(s, "kittiwake_http_request_duration_seconds_count", route=route) == 0
        assert ("kittiwake_http_request_duration_seconds_count", (("route", route),)) in s
    for name in ("kittiwake_imapserver_notify_sessions", "kittiwake_imapserver_idle_sessions"):
        assert (name, ()) in s and value(s, name) == 0, name
    # Every series that METRIC_MODULES create at import is exposed (a fresh interpreter:
    # this process's other tests have added series of their own).
    fresh = subprocess.run([sys.executable, "-c", (
        "from kittiwake import metrics\n"
        "from kittiwake.server.metrics_http import load_metric_modules\n"
        "load_metric_modules()\n"
        "for f in metrics.REGISTRY.collect():\n"
        "    for x in f.samples:\n"
        "        if x.name.startswith('kittiwake_'): print(x.name, sorted(x.labels.items()))\n")],
        capture_output=True, text=True, check=True, timeout=60).stdout.splitlines()
    exposed = {f"{n} {sorted(ls)}" for n, ls in s}
    assert len(fresh) > 1000
    assert not [line for line in fresh if line not in exposed and "_created " not in line]
    # The probe found no resolver: one-hot status, no-answer.
    assert value(s, "kittiwake_dns_resolver_dnssec_status", status="no-answer") == 1
    assert total(s, "kittiwake_dns_resolver_dnssec_status") == 1
    # The configured certificate's expiry, in the future.
    expiry = value(s, "kittiwake_tls_certificate_expiry_timestamp_seconds",
                   host="mail.example.org")
    assert expiry > time.time()


def test_workload_changes_exactly_the_counters_it_should(running: Running) -> None:
    before = running.scrape()

    # 1. One message in over SMTP (MX) to a local account.
    with smtplib.SMTP("127.0.0.1", running.smtp_port, timeout=30) as client:
        client.ehlo("client.example")
        refused = client.sendmail("sender@other.example", ["alice@example.org"],
                                  b"From: sender@other.example\r\nSubject: in\r\n\r\nHi\r\n")
    assert refused == {}

    # 2. A submission: one recipient routed to the "fail" transport, one unreachable.
    tls = ssl.create_default_context()
    running.ca.configure_trust(tls)
    tls.check_hostname = False
    with smtplib.SMTP("127.0.0.1", running.submission_port, timeout=30) as client:
        client.starttls(context=tls)
        client.login("alice@example.org", PASSWORD)
        refused = client.sendmail(
            "alice@example.org", ["bob@fail.example", "carol@unreachable.example"],
            b"From: alice@example.org\r\nSubject: out\r\n\r\nHi\r\n")
    assert refused == {}

    # 3. Wait for both first attempts and the DSN about bob, stored in alice's Inbox.
    # A scrape is not one atomic snapshot (it is rendered in a thread while the
    # server goes on): the DSN's store delivery, counted just before the DSN
    # itself, can be missing from the scrape that first shows the DSN.
    after = running.wait_for(
        lambda s: total(s, "kittiwake_queue_delivery_attempts_total") == 2
        and total(s, "kittiwake_queue_dsns_sent_total") == 1
        and value(s, "kittiwake_store_operations_total", op="deliver", result="ok") == 1,
        "attempts and the DSN")
    check = subprocess.run([shutil.which("promtool") or "promtool", "check", "metrics"],
                           input=running.scrape_text().encode(), capture_output=True)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("kittiwake_smtpserver_connections_total",
                 service="smtp", result="accepted") == 1
    assert delta("kittiwake_smtpserver_connections_total",
                 service="submission", result="accepted") == 1
    assert delta("kittiwake_smtpserver_messages_total", service="smtp",
                 result="delivered") == 1
    assert delta("kittiwake_smtpserver_messages_total", service="submission",
                 result="delivered") == 1
    assert delta("kittiwake_smtpserver_delivery_duration_seconds_count", service="smtp") == 1
    # Into alice's Inbox: the inbound message (the DSN is stored by the DSN sender).
    assert delta("kittiwake_smtpserver_local_deliveries_total", result="delivered") == 1
    assert delta("kittiwake_smtpserver_local_delivery_duration_seconds_count") == 1
    # The store saw both: the inbound message handed over from the SMTP spool
    # ("deliver_spool") and the DSN composed in memory ("deliver").
    assert delta("kittiwake_store_operations_total", op="deliver_spool", result="ok") == 1
    assert delta("kittiwake_store_operations_total", op="deliver", result="ok") == 1
    assert total(after, "kittiwake_store_operations_total", result="error") == 0
    cmd = "kittiwake_smtpserver_commands_total"
    # smtplib: EHLO, MAIL, RCPT, DATA (354 then 250), QUIT; submission: EHLO, STARTTLS,
    # EHLO again, AUTH, MAIL, RCPT twice, DATA (354, 250), QUIT.
    assert delta(cmd, verb="EHLO", **{"class": "2"}) == 3
    assert delta(cmd, verb="STARTTLS", **{"class": "2"}) == 1
    assert delta(cmd, verb="AUTH", **{"class": "2"}) == 1
    assert delta(cmd, verb="MAIL", **{"class": "2"}) == 2
    assert delta(cmd, verb="RCPT", **{"class": "2"}) == 3
    assert delta(cmd, verb="DATA", **{"class": "3"}) == 2
    assert delta(cmd, verb="DATA", **{"class": "2"}) == 2
    assert delta(cmd, verb="QUIT", **{"class": "2"}) == 2
    assert total(after, cmd, **{"class": "5"}) == total(before, cmd, **{"class": "5"})
    assert total(after, cmd, **{"class": "4"}) == total(before, cmd, **{"class": "4"})
    mechanisms = {m for (n, ls), v in after.items()
                  if n == "kittiwake_smtpserver_auth_total" and v and ("result", "ok") in ls
                  for k, m in ls if k == "mechanism"}
    assert len(mechanisms) == 1 and mechanisms <= set(smtp_metrics.MECHANISMS) - {"other"}
    assert total(after, "kittiwake_smtpserver_auth_total", result="ok") == 1
    assert total(after, "kittiwake_smtpserver_tls_handshakes_total") == 1
    # The inbound message's checks: one verdict each; DNS is unreachable, so
    # SPF and iprev are temperror, the message is unsigned (DKIM none).
    assert delta("kittiwake_smtpserver_spf_results_total", result="temperror", dnssec="no") == 1
    assert delta("kittiwake_smtpserver_iprev_results_total", result="temperror",
                 dnssec="no") == 1
    assert delta("kittiwake_smtpserver_dkim_results_total", result="none", dnssec="no") == 1
    # The queue: bob failed at once on the "fail" transport (a DSN went to alice),
    # carol's first direct attempt failed temporarily.
    att = "kittiwake_queue_delivery_attempts_total"
    assert delta(att, transport="fail", attempt="1", result="permanent") == 1
    assert delta(att, transport="direct", attempt="1", result="temporary") == 1
    assert delta("kittiwake_queue_dsns_sent_total", kind="failed") == 1
    assert delta("kittiwake_queue_delivery_duration_seconds_count", transport="fail") == 1
    assert delta("kittiwake_queue_delivery_duration_seconds_count", transport="direct") == 1
    assert value(after, "kittiwake_queue_messages") == 1
    assert value(after, "kittiwake_queue_recipients") == 1
    assert value(after, "kittiwake_queue_held_messages") == 0
    assert value(after, "kittiwake_queue_oldest_message_age_seconds") >= 0
    # DNS: the lookups reached no resolver; no answer was counted as one.
    assert delta("kittiwake_dns_queries_total", type="MX", result="error") + delta(
        "kittiwake_dns_queries_total", type="MX", result="timeout") >= 1
    for result in ("NOERROR", "NXDOMAIN", "SERVFAIL"):
        assert total(after, "kittiwake_dns_queries_total", result=result) == 0
    assert total(after, "kittiwake_panic_total") == 0
    # The junk filter judged the inbound message for alice (a new sender: accepted).
    assert total(after, "kittiwake_junk_verdicts_total", action="accept") - total(
        before, "kittiwake_junk_verdicts_total", action="accept") == 1
    assert total(after, "kittiwake_junk_verdicts_total") - total(
        before, "kittiwake_junk_verdicts_total") == 1
    assert delta("kittiwake_junk_classify_duration_seconds_count") == 1
    assert total(after, "kittiwake_tls_handshake_failures_total") == 0

    # 4. A client that asks for STARTTLS and goes away: one failed handshake.
    with socket.create_connection(("127.0.0.1", running.submission_port), timeout=10) as raw:
        reply = raw.makefile("rb")
        assert reply.readline().startswith(b"220")
        raw.sendall(b"EHLO client.example\r\n")
        while not reply.readline().startswith(b"250 "):
            pass
        raw.sendall(b"STARTTLS\r\n")
        assert reply.readline().startswith(b"220")
        reply.close()
    failed = running.wait_for(
        lambda s: total(s, "kittiwake_tls_handshake_failures_total") == 1, "the failed handshake")
    assert value(failed, "kittiwake_tls_handshake_failures_total", service="submission",
                 reason="closed") == 1
    assert not any(n == "kittiwake_smtpserver_tls_handshake_failures_total"
               for n, _ in failed)  # retired: the listener-level counter has it

    # `kittiwake status` tells the same story.
    st = running.status()
    assert st["hostname"] == "mail.example.org"
    assert {listener["service"] for listener in st["listeners"]} >= {"smtp", "submission",
                                                                      "metrics"}
    assert st["dnssec"]["status"] == "no-answer"
    assert [c["host"] for c in st["certificates"]] == ["mail.example.org"]
    assert st["certificates"][0]["expires_in_seconds"] > 0
    assert st["queue"]["messages"] == 1 and st["queue"]["held_messages"] == 0
    assert st["queue"]["failing_domains"] == [{"domain": "unreachable.example",
                                               "recipients": 1}]
    errors = {e["to"]: e for e in st["queue"]["last_errors"]}
    assert set(errors) == {"bob@fail.example", "carol@unreachable.example"}
    assert errors["bob@fail.example"]["status"] == "failed"
    assert "no mail to fail.example" in errors["bob@fail.example"]["text"]
    assert errors["carol@unreachable.example"]["status"] == "queued"
    assert st["messages_today"] == {"received": 1, "submitted": 1, "delivered": 0,
                                    "failed": 1}
    assert st["panics"] == {}
    assert st["tls_handshake_failures"] == {"submission": {"closed": 1}}
    assert st["junk"] == {"accounts_filtered": 1,
                          "verdicts_today": {"accept": 1, "junk": 0, "reject": 0}}
    assert st["acme_certificates"] == []
    screen = subprocess.run([*running.base, "status"], capture_output=True, text=True,
                            check=True, timeout=30).stdout
    assert "queue: 1 messages (1 recipients)" in screen
    assert "failing domains: unreachable.example (1)" in screen
    assert "mail.example.org" in screen and "panics since start: none" in screen
    assert "today (UTC): received 1, submitted 1, delivered 0, failed 1" in screen
    assert "junk filter: 1 accounts filtered; today: accept 1, junk 0, reject 0" in screen
    assert "TLS handshake failures since start: 1 (submission: closed 1)" in screen
    assert "ACME certificates:" not in screen


def test_status_without_a_running_server_is_one_line(tmp_path: Path) -> None:
    conf = tmp_path / "config"
    conf.mkdir()
    (conf / "kittiwake.conf").write_text('hostname = "mail.example.org"\ndata_dir = "../data"\n')
    (conf / "domains.conf").write_text("")
    proc = subprocess.run([*KITTIWAKE, "--config", str(conf), "status"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the running server" in lines[0], proc.stderr
