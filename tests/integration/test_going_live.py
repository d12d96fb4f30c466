"""Going live end to end: quickstart, the printed records, ``serve`` with ACME, then
DANE (posttls-finger), ``config dnscheck`` and a forced renewal.

The self-hoster's path of issue 10, on loopback, with real peers only:

1. ``kittiwake quickstart`` for 127.0.0.1 and ::1 (IPv4 and IPv6, as
   internet.nl wants) in a temporary directory, its ACME directory being
   Debian's ``pebble`` (``--acme-directory``, ``--acme-ca-file`` for pebble's API
   certificate, ``--acme-issuer`` for CAA); the listeners then get ephemeral
   ports (a test cannot take 25/80/443 on the machine).
2. Every record ``config dnsrecords --json`` prints is served in the signed DNS
   world (bind9 + validating unbound, :mod:`.dnsworld`): A and AAAA of the
   host, the PTR of each address in its signed reverse zone.
3. ``kittiwake serve`` gets its certificates from pebble for the
   **pre-generated** host keys. pebble resolves the names through the world's
   unbound (``-dnsserver``) and validates tls-alpn-01 (the challenge quickstart
   chose) on the port set as its ``tlsPort``: pebble is configured with our
   listeners' http/https ports as ``httpPort``/``tlsPort`` instead of 80/443,
   the one thing changed from production.
4. ``posttls-finger -l dane`` (Debian ``postfix``) and ``config dnscheck`` need
   the well-known ports (TLSA at ``_25._tcp``, MTA-STS policy on 443) and the
   system resolver, so they run in a private network namespace
   (:mod:`.netns`): there 127.0.0.1:53 leads to the world's unbound (with
   ``options trust-ad`` in the namespace's resolv.conf, else glibc drops the
   AD bit and Postfix sees no DNSSEC), 127.0.0.1:25 and the configured SMTP
   port to our SMTP listener, 127.0.0.1:443 to our HTTPS listener, and the
   same ports on the namespace's ::1 to our listeners on ::1.
   posttls-finger must report a DANE-verified connection, once preferring
   the ECDSA certificate, once forced to the RSA one (TLS 1.2, aRSA
   ciphers), and once over IPv6 only (the AAAA, to our ::1 listener): the
   printed TLSA of both keys work. dnscheck must say OK on every
   line, mta-sts-policy (fetched over HTTPS, trusting pebble's root) and
   tlsa-served included.
5. Forced renewal: pebble issues certificates valid 45 days; serve is
   restarted with ``renew_before_days = 60``, so both stored certificates are
   due at start and are renewed (new serials, same keys), and posttls-finger
   again verifies both through the same TLSA records.

A missing peer (pebble, postfix, bind9, unbound, unshare) fails the test.
Why slower than 20 s: two serve starts, four ACME orders with three names each.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from kittiwake.cli.main import cli
from kittiwake.config import StaticConfig, write_static
from kittiwake.setup.hostkeys import KEY_KINDS, load_host_key, tlsa_3_1_1

from .acmepeers import Pebble
from .dnsworld import DNSWorld, MakeDNSWorld
from .loopback import free_port
from .netns import command_line, serve_unix_to_tcp

DOMAIN = "signed.test"
HOST = f"mail.{DOMAIN}"
ISSUER = "pebble.test"  # CAA issuer domain we tell quickstart pebble has
POSTTLS_FINGER = "/usr/sbin/posttls-finger"
VALIDITY = dt.timedelta(days=45)
BINDIR = Path(sys.executable).parent
# TLS 1.2 with RSA authentication only: the server must pick its RSA certificate.
RSA_ONLY = ["-p", ">=TLSv1.2 <=TLSv1.2", "-g", "high", "-o",
            "tls_high_cipherlist=aRSA+AESGCM:aRSA+CHACHA20"]


def kittiwake(config_dir: Path, *args: str) -> list[str]:
    return [str(BINDIR / "kittiwake"), "--config", str(config_dir), *args]


def distinct_ports(n: int) -> list[int]:
    """``n`` different free ports (loopback.free_port never hands one out twice)."""
    return [free_port() for _ in range(n)]


def local_ports(config_dir: Path, http_port: int, https_port: int) -> dict[str, int]:
    """Ephemeral ports for every service (http/https: pebble's validation ports); serve
    as root without a user (see below)."""
    data = tomllib.loads((config_dir / "kittiwake.conf").read_text())
    services = ("smtp", "submission", "submissions", "imap", "imaps", "metrics")
    free = iter(p for p in distinct_ports(8) if p not in (http_port, https_port))
    ports: dict[str, int] = {"http": http_port, "https": https_port}
    for listener in data["listeners"].values():
        for service in (*services, "http", "https"):
            if listener.get(service, {}).get("enabled"):
                if service not in ports or service in services:
                    ports[service] = next(free)
                listener[service]["port"] = ports[service]
    if os.getuid() == 0:
        # serve refuses user = "root"; the suite runs as root with KITTIWAKE_ALLOW_ROOT=1
        # (tests/conftest.py); test_serve_root covers the privilege drop.
        data["user"] = ""
    write_static(config_dir, StaticConfig.model_validate(data))
    return ports


def set_renew_before(config_dir: Path, days: int) -> None:
    data = tomllib.loads((config_dir / "kittiwake.conf").read_text())
    for section in data["acme"].values():
        section["renew_before_days"] = days
    write_static(config_dir, StaticConfig.model_validate(data))


class Serve:
    """``kittiwake serve`` as a subprocess; its log is read to wait for events."""

    def __init__(self, config_dir: Path, world: DNSWorld, log: Path) -> None:
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(kittiwake(config_dir, "serve"), env=world.env,
                                         stdout=subprocess.DEVNULL, stderr=out)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    async def wait_for(self, line: str, count: int = 1, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.text().count(line) < count:
            assert self.proc.poll() is None, f"serve exited:\n{self.text()}"
            assert "certificate order failed" not in self.text(), self.text()
            assert time.monotonic() < deadline, f"no {line!r} x{count} in:\n{self.text()}"
            await asyncio.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)


class Namespace:
    """Runs commands in a network namespace whose 53, 25, 443 (and more) lead to us."""

    def __init__(self, workdir: Path, world: DNSWorld, tcp: dict[int, int],
                 tcp6: dict[int, int] | None = None) -> None:
        self.workdir = workdir
        self.world = world
        self.tcp = tcp  # port inside -> port on the machine's 127.0.0.1
        self.tcp6 = tcp6 or {}  # port on the namespace's ::1 -> port on the machine's ::1
        self.resolv = workdir / "resolv.conf"
        # trust-ad: glibc passes the AD bit on only when told (PEERS.md).
        self.resolv.write_text("nameserver 127.0.0.1\noptions trust-ad attempts:2 timeout:3\n")
        self.relays: list[asyncio.AbstractServer] = []
        self.sockets: dict[int, str] = {}
        self.sockets6: dict[int, str] = {}

    async def __aenter__(self) -> Namespace:
        host, port = self.world.resolver
        self.dns_socket = str(self.workdir / "ns-dns.sock")
        self.relays.append(await serve_unix_to_tcp(self.dns_socket, host, port))
        for outside in set(self.tcp.values()):
            path = str(self.workdir / f"ns-{outside}.sock")
            self.relays.append(await serve_unix_to_tcp(path, "127.0.0.1", outside))
        self.sockets = {inside: str(self.workdir / f"ns-{outside}.sock")
                        for inside, outside in self.tcp.items()}
        for outside in set(self.tcp6.values()):
            path = str(self.workdir / f"ns6-{outside}.sock")
            self.relays.append(await serve_unix_to_tcp(path, "::1", outside))
        self.sockets6 = {inside: str(self.workdir / f"ns6-{outside}.sock")
                         for inside, outside in self.tcp6.items()}
        return self

    async def __aexit__(self, *exc: object) -> None:
        for relay in self.relays:
            relay.close()

    async def run(self, *command: str, env: dict[str, str] | None = None,
                  timeout: float = 120) -> tuple[int, str, str]:
        environment = {k: v for k, v in (env or os.environ).items()
                       if "proxy" not in k.lower() and k != "KITTIWAKE_DNS"}
        process = await asyncio.create_subprocess_exec(
            *command_line(self.resolv, self.dns_socket, self.sockets, list(command),
                          self.sockets6),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=environment)
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
        assert process.returncode is not None
        return process.returncode, stdout.decode(errors="replace"), stderr.decode(
            errors="replace")


def postfix_config(workdir: Path, protocols: str = "ipv4") -> dict[str, str]:
    """The environment for posttls-finger: its own main.cf (MAIL_CONFIG), DNSSEC on,
    connecting over ``protocols`` (ipv4 or ipv6) only."""
    directory = workdir / f"postfix-{protocols}"
    directory.mkdir(exist_ok=True)
    (directory / "main.cf").write_text(f"compatibility_level = 3.6\ninet_protocols = {protocols}\n"
                                       "smtp_dns_support_level = dnssec\n")
    return {**os.environ, "MAIL_CONFIG": str(directory)}


def posttls_finger(*extra: str) -> list[str]:
    if not Path(POSTTLS_FINGER).exists():
        pytest.fail(f"{POSTTLS_FINGER} is missing: install Debian's postfix"
                    " (scripts/install-peers.sh)")
    return [POSTTLS_FINGER, "-t30", "-T180", "-c", "-L", "verbose,summary", "-l", "dane",
            *extra, DOMAIN]


def assert_dane_verified(result: tuple[int, str, str], tlsa: str) -> tuple[str, str]:
    """posttls-finger's verdict line and the certificate's fingerprint; the TLSA digest
    it matched must be ``tlsa``."""
    status, stdout, stderr = result
    output = stdout + stderr
    assert status == 0, output
    verdicts = [line for line in output.splitlines() if "TLS connection established" in line]
    assert verdicts and "Verified TLS connection established to" in verdicts[0], output
    matched = [line.rsplit(" ", 1)[-1].lower() for line in output.splitlines()
               if "Matched DANE EE certificate at depth 0: 3 1 1 " in line]
    assert matched == [tlsa], output
    fingerprint = re.search(r" fingerprint=([0-9A-F:]+)", output)
    assert fingerprint, output
    return verdicts[0], fingerprint.group(1)


@pytest.mark.timeout(300)
async def test_going_live(tmp_path: Path, make_dns_world: MakeDNSWorld) -> None:
    if shutil.which("unshare") is None:
        pytest.fail("unshare is missing: install Debian's util-linux")
    http_port, https_port = distinct_ports(2)
    pebble = Pebble(tmp_path, 0, http_port, https_port, certificate_validity=VALIDITY)

    # 1. quickstart, as the README says, with pebble as the authority.
    runner = CliRunner()
    made = runner.invoke(cli, ["quickstart", f"admin@{DOMAIN}", "--hostname", HOST,
                               "--ip", "127.0.0.1", "--ip", "::1",
                               "--dir", str(tmp_path / "server"),
                               "--acme-directory", pebble.directory_url,
                               "--acme-ca-file", str(pebble.ca_file),
                               "--acme-issuer", ISSUER, "--user", "nobody"])
    assert made.exit_code == 0, made.output
    config_dir = tmp_path / "server" / "config"
    # The fresh config is clean: ACME gives the certificates, https is on 443.
    tested = runner.invoke(cli, ["--config", str(config_dir), "config", "test"])
    assert tested.exit_code == 0 and "warning" not in tested.output, tested.output
    ports = local_ports(config_dir, http_port, https_port)

    # 2. The printed records, in the signed world.
    listed = runner.invoke(cli, ["--config", str(config_dir), "config", "dnsrecords", DOMAIN,
                                 "--json"])
    assert listed.exit_code == 0, listed.output
    records = json.loads(listed.output)["records"]
    world = make_dns_world(start=False)
    reverse = {ipaddress.ip_address(ip).reverse_pointer: ip for ip in ("127.0.0.1", "::1")}
    assert {r["name"].rstrip(".") for r in records if r["type"] == "PTR"} == set(reverse)
    assert {r["rdata"] for r in records if r["name"].rstrip(".") == HOST
            and r["type"] in ("A", "AAAA")} == {"127.0.0.1", "::1"}
    for record in records:
        if record["type"] == "PTR":
            world.add_ptr(reverse[record["name"].rstrip(".")], record["value"])
        else:
            world.add(record["name"], record["type"], record["rdata"])
    world.start()
    tlsa = {r["rdata"].split()[-1].lower() for r in records if r["type"] == "TLSA"}
    # The printed TLSA records are those of the two pre-generated host keys.
    key_tlsa = {kind: tlsa_3_1_1(load_host_key(config_dir / f"hostkeys/{kind}.pem"))
                for kind in KEY_KINDS}
    assert tlsa == set(key_tlsa.values()), (tlsa, key_tlsa)
    pebble.dns_port = world.resolver[1]
    postfix = postfix_config(tmp_path)
    postfix6 = postfix_config(tmp_path, "ipv6")

    with pebble:
        root = tmp_path / "pebble-root.pem"
        root.write_bytes(pebble.root_pem())
        # 3. serve: certificates from pebble for the pre-generated keys.
        serve = Serve(config_dir, world, tmp_path / "serve1.log")
        try:
            await serve.wait_for("certificate obtained", 2)
            inside = {25: ports["smtp"], ports["smtp"]: ports["smtp"], 443: https_port}
            async with Namespace(tmp_path, world, inside, inside) as ns:
                # 4. DANE with both keys (and over IPv6), and dnscheck, at once.
                ecdsa, rsa, ipv6, checked = await asyncio.gather(
                    ns.run(*posttls_finger(), env=postfix),
                    ns.run(*posttls_finger(*RSA_ONLY), env=postfix),
                    ns.run(*posttls_finger(), env=postfix6),
                    ns.run(*kittiwake(config_dir, "config", "dnscheck", DOMAIN, "--json",
                                      "--ca-file", str(root))))
            ecdsa_line, ecdsa_cert = assert_dane_verified(ecdsa, key_tlsa["ecdsa-p256"])
            rsa_line, rsa_cert = assert_dane_verified(rsa, key_tlsa["rsa2048"])
            assert "server-signature ECDSA" in ecdsa_line, ecdsa_line
            ipv6_line, _ = assert_dane_verified(ipv6, key_tlsa["ecdsa-p256"])
            assert f"{HOST}[::1]:25" in ipv6_line, ipv6_line  # the AAAA, on kittiwake's ::1
            assert "TLSv1.2 with cipher ECDHE-RSA-" in rsa_line, rsa_line
            status, stdout, stderr = checked
            results = json.loads(stdout)["results"]
            not_ok = [r for r in results if r["level"] != "OK"]
            assert not_ok == [], json.dumps(results, indent=1) + stderr
            assert status == 0
            seen = {r["check"] for r in results}
            assert {"mta-sts-policy", "tlsa", "tlsa-served", "dnssec", "caa", "spf", "dkim",
                    "dmarc", "tlsrpt", "mx", "reverse-dns"} <= seen, seen
        finally:
            serve.stop()
        assert "Traceback" not in serve.text(), serve.text()

        # 5. Forced renewal: restarted with renew_before_days beyond the remaining time.
        set_renew_before(config_dir, 60)
        serve = Serve(config_dir, world, tmp_path / "serve2.log")
        try:
            await serve.wait_for("certificate obtained", 2)
            assert serve.text().count("stored certificate") == 2, serve.text()
            async with Namespace(tmp_path, world, inside) as ns:
                ecdsa, rsa = await asyncio.gather(
                    ns.run(*posttls_finger(), env=postfix),
                    ns.run(*posttls_finger(*RSA_ONLY), env=postfix))
            # New certificates (served without anything else changing), same keys: the
            # TLSA records published at quickstart still verify both.
            assert assert_dane_verified(ecdsa, key_tlsa["ecdsa-p256"])[1] != ecdsa_cert
            assert assert_dane_verified(rsa, key_tlsa["rsa2048"])[1] != rsa_cert
        finally:
            serve.stop()
        assert "Traceback" not in serve.text(), serve.text()
