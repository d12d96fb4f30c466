"""Debian's pebble (a test ACME server) on loopback, and a tiny DNS server for it.

:class:`Pebble` starts ``/usr/bin/pebble`` with its own API certificate
(trustme), validation ports of our choosing (``httpPort``/``tlsPort``: where
our HTTP and HTTPS listeners run) and ``-dnsserver`` pointing at
:class:`LoopbackDNS` (or any resolver: :attr:`Pebble.dns_port` may be set
after construction, before the start), which answers A 127.0.0.1 for every name, nothing
for AAAA, and the CAA records a test sets. A missing pebble fails the test.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Self

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import trustme

from .loopback import free_port

PEBBLE = "/usr/bin/pebble"


class LoopbackDNS:
    """UDP DNS on 127.0.0.1 in a thread: every name is 127.0.0.1; CAA from :attr:`caa`."""

    def __init__(self) -> None:
        self.caa: dict[str, list[str]] = {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._stop = False

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop:
            try:
                data, addr = self.sock.recvfrom(4096)
            except OSError:
                return
            try:
                query = dns.message.from_wire(data)
            except Exception:
                continue
            reply = dns.message.make_response(query)
            question = query.question[0]
            name = question.name.to_text().rstrip(".").lower()
            if question.rdtype == dns.rdatatype.A:
                reply.answer.append(dns.rrset.from_text(question.name, 5, "IN", "A",
                                                        "127.0.0.1"))
            elif question.rdtype == dns.rdatatype.CAA and name in self.caa:
                reply.answer.append(dns.rrset.from_text_list(question.name, 5, "IN", "CAA",
                                                             self.caa[name]))
            self.sock.sendto(reply.to_wire(), addr)


class Pebble:
    """A pebble process; :attr:`directory_url`, :attr:`ca_file` (trust for its API)."""

    def __init__(self, workdir: Path, dns_port: int, http_port: int, tls_port: int,
                 eab_keys: dict[str, str] | None = None,
                 certificate_validity: dt.timedelta | None = None) -> None:
        if not Path(PEBBLE).exists():
            raise RuntimeError(f"{PEBBLE} is missing: install Debian's pebble"
                               " (scripts/install-peers.sh)")
        self.workdir = workdir
        ca = trustme.CA()
        server = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_file = workdir / "pebble-api-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        server.cert_chain_pems[0].write_to_path(str(workdir / "pebble-api.pem"))
        server.private_key_pem.write_to_path(str(workdir / "pebble-api.key"))
        self.port = free_port()
        self.management_port = free_port()
        config: dict[str, dict[str, object]] = {"pebble": {
            "listenAddress": f"127.0.0.1:{self.port}",
            "managementListenAddress": f"127.0.0.1:{self.management_port}",
            "certificate": str(workdir / "pebble-api.pem"),
            "privateKey": str(workdir / "pebble-api.key"),
            "httpPort": http_port, "tlsPort": tls_port, "ocspResponderURL": "",
            "externalAccountBindingRequired": bool(eab_keys),
            "externalAccountMACKeys": eab_keys or {},
        }}
        if certificate_validity is not None:  # pebble's default: 5 years
            config["pebble"]["certificateValidityPeriod"] = int(
                certificate_validity.total_seconds())
        (workdir / "pebble.json").write_text(json.dumps(config))
        self.dns_port = dns_port
        self.directory_url = f"https://127.0.0.1:{self.port}/dir"
        self._api_ca = ca
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / "pebble.log"

    def __enter__(self) -> Self:
        env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0",
                   PEBBLE_AUTHZREUSE="0")
        self.process = subprocess.Popen(
            [PEBBLE, "-config", str(self.workdir / "pebble.json"),
             "-dnsserver", f"127.0.0.1:{self.dns_port}"],
            env=env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pebble exited: {self.log.read_text()[-2000:]}")
            try:
                self.fetch(self.directory_url)
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"pebble did not start: {self.log.read_text()[-2000:]}")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)

    def fetch(self, url: str) -> bytes:
        import ssl

        context = ssl.create_default_context(cafile=str(self.ca_file))
        with urllib.request.urlopen(url, context=context, timeout=5) as response:
            return bytes(response.read())

    def root_pem(self) -> bytes:
        """The CA that signs pebble's certificates (it is new at every start)."""
        return self.fetch(f"https://127.0.0.1:{self.management_port}/roots/0")
