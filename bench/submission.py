"""Submission benchmark: CPU per submitted message of ``kittiwake serve`` (and its workers).

    .venv/bin/python -m bench.submission [--messages N] [--sessions N] [--processes N]
                                         [--implicit-tls]

A ``kittiwake serve`` with a submission listener (587-style STARTTLS, or
465-style implicit TLS with ``--implicit-tls``), one account with a
password, and the sender domain signing with two DKIM selectors (Ed25519
and RSA-2048, as ``kittiwake quickstart`` sets up). The client sends each
message on its own connection: EHLO, STARTTLS, EHLO, AUTH PLAIN, MAIL,
RCPT (a remote recipient: the message is queued; the resolver never
answers, so delivery attempts wait), DATA, QUIT; ``--sessions`` at a time
from threads (Python's smtplib), all over loopback.

Prints messages/second (noise on a shared machine) and the figure that
counts, CPU time per message of the server process (and of its main
thread alone, the event loop: the serial part), of each SMTP worker
(``smtp_processes``, :mod:`kittiwake.server.smtpworkers`; ``--processes``
sets ``KITTIWAKE_SMTP_PROCESSES``) and of the CPU pool, read from
/proc while the load ran (:class:`bench.smtp_inbound.Figures`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.smtp_inbound import Figures, settle, stop, wait_port

PASSWORD = "a benchmark password"
KITTIWAKE = [str(Path(sys.executable).parent / "kittiwake")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def setup(base: Path, port: int, resolver_port: int, implicit: bool) -> Path:
    """Config and data directory for the benchmark server; the config directory."""
    import trustme

    from kittiwake.dkim import generate_key

    conf = base / "config"
    conf.mkdir(parents=True)
    ca = trustme.CA()
    cert = ca.issue_cert("mail.example.org", "127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(conf / "cert.pem"))
    cert.private_key_pem.write_to_path(str(conf / "key.pem"))
    ca.cert_pem.write_to_path(str(base / "ca.pem"))
    for name, kind in (("ed", "ed25519"), ("rsa", "rsa")):
        (conf / f"{name}.pem").write_bytes(generate_key(kind))
    service = "submissions" if implicit else "submission"
    (conf / "kittiwake.conf").write_text(f"""
hostname = "mail.example.org"
data_dir = "../data"
[dns]
resolvers = ["127.0.0.1:{resolver_port}"]
timeout_seconds = 0.5
[limits]
max_connections_per_ip = 1000
smtp_connections_per_minute = [1000000, 1000000, 1000000]
smtp_messages_per_minute = [1000000, 1000000, 1000000]
[listeners.public]
ips = ["127.0.0.1"]
{service} = {{ enabled = true, port = {port} }}
[listeners.public.tls]
certificates = [{{ cert_file = "cert.pem", key_file = "key.pem" }}]
""")
    (conf / "domains.conf").write_text("""
[domains."example.org".dkim]
sign = ["ed", "rsa"]
[domains."example.org".dkim.selectors.ed]
private_key_file = "ed.pem"
[domains."example.org".dkim.selectors.rsa]
private_key_file = "rsa.pem"
[accounts.alice]
domain = "example.org"
[accounts.alice.destinations."alice@example.org"]
""")
    subprocess.run([*KITTIWAKE, "--config", str(conf), "account", "setpassword", "alice"],
                   input=f"{PASSWORD}\n".encode(), check=True, capture_output=True)
    return conf


def message(n: int, size: int) -> bytes:
    head = (f"From: alice@example.org\r\nTo: bob@remote.example\r\n"
            f"Subject: bench {n}\r\n\r\n").encode()
    line = b"x" * 76 + b"\r\n"
    return head + line * max(1, (size - len(head)) // len(line))


def submit(port: int, tls: ssl.SSLContext, implicit: bool, data: bytes,
           password: str = PASSWORD, timeout: float = 60) -> dict[str, tuple[int, bytes]]:
    """alice@example.org submits ``data`` to bob@remote.example with AUTH PLAIN over
    STARTTLS or implicit TLS; the refused recipients (empty: the 250). Raises what
    smtplib raises (a refused login or message, a lost connection)."""
    client: smtplib.SMTP
    if implicit:
        client = smtplib.SMTP_SSL("127.0.0.1", port, context=tls, timeout=timeout)
    else:
        client = smtplib.SMTP("127.0.0.1", port, timeout=timeout)
    with client:
        if not implicit:
            client.starttls(context=tls)
        client.ehlo()
        client.user, client.password = "alice@example.org", password
        client.auth("PLAIN", client.auth_plain)  # RFC 4616 (smtplib prefers CRAM-MD5)
        return client.sendmail("alice@example.org", ["bob@remote.example"], data)


def submit_all(port: int, tls: ssl.SSLContext, implicit: bool, data: bytes) -> None:
    """:func:`submit`, failing the benchmark on a refused recipient."""
    if refused := submit(port, tls, implicit, data):
        raise SystemExit(f"refused: {refused}")


def _thread_cpu(pid: int) -> float:
    """User + system CPU time of a process's main thread (the event loop)."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def queued(conf: Path) -> int:
    listed = subprocess.run([*KITTIWAKE, "--config", str(conf), "queue", "list", "--json"],
                            capture_output=True, text=True, check=True).stdout
    return len(json.loads(listed)["queued"])


def run(messages: int, sessions: int, size: int, processes: int, implicit: bool) -> None:
    base = Path(tempfile.mkdtemp(prefix="kw-bench-submission-"))
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a resolver never answering
    silent.bind(("127.0.0.1", 0))
    try:
        port = _free_port()
        conf = setup(base, port, silent.getsockname()[1], implicit)
        tls = ssl.create_default_context(cafile=str(base / "ca.pem"))
        tls.check_hostname = False
        log = base / "serve.log"
        env = {"KITTIWAKE_ALLOW_ROOT": "1", **os.environ,
               "KITTIWAKE_SMTP_PROCESSES": str(processes)}
        with open(log, "wb") as out:
            proc = subprocess.Popen([*KITTIWAKE, "--loglevel", "warn", "--config", str(conf),
                                     "serve"], stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env)
        try:
            wait_port("127.0.0.1", port, proc, log=log)
            submit_all(port, tls, implicit, message(0, size))  # warm: imports, keys loaded
            settle(proc.pid)
            figures = Figures(proc.pid)
            loop_thread = _thread_cpu(proc.pid)
            todo = list(range(1, messages + 1))
            lock = threading.Lock()
            errors: list[BaseException] = []

            def worker() -> None:
                while True:
                    with lock:
                        if not todo or errors:
                            return
                        n = todo.pop()
                    try:
                        submit_all(port, tls, implicit, message(n, size))
                    except BaseException as exc:
                        with lock:
                            errors.append(exc)

            started = time.monotonic()
            threads = [threading.Thread(target=worker) for _ in range(sessions)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            took = time.monotonic() - started
            figures.at_end_of_load()
            loop_thread = _thread_cpu(proc.pid) - loop_thread
            if errors:
                raise SystemExit(f"submission failed: {errors[0]!r}; log {log}")
        finally:
            stop(proc)
        got = queued(conf)
        if got != messages + 1:
            raise SystemExit(f"{got} of {messages + 1} messages queued; log {log}")
        mode = "465 implicit TLS" if implicit else "587 STARTTLS"
        print(f"submission ({mode}, AUTH PLAIN, DKIM ed25519+rsa2048, queued), {messages}"
              f" messages of {size} bytes, {sessions} sessions, smtp_processes={processes}:"
              f" {messages / took:.1f} msg/s")
        print(f"  {figures.text(messages)}")
        print(f"  of the server's CPU, its main thread (the event loop, the serial part):"
              f" {loop_thread * 1000 / messages:.2f} ms per message")
    finally:
        silent.close()
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--size", type=int, default=10 * 1024)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--implicit-tls", action="store_true")
    args = parser.parse_args()
    run(args.messages, args.sessions, args.size, args.processes, args.implicit_tls)


if __name__ == "__main__":
    main()
