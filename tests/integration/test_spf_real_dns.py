"""SPF over real DNS: edge cases of TXT answers that a mock resolver hides.

bind9 serves each case from a zone file, unbound resolves and validates it,
and kittiwake's stub resolver reads the wire. The expected results are those
of the RFC 7208 test suite's corresponding cases (named in each row).

bind9 refuses a TXT record with no strings at all (the suite's "null-text",
RDLENGTH 0) in a zone file; that case is served by a scripted authoritative
server behind a real unbound below (unbound passes the record on as it is),
and straight to the stub resolver in tests/dns/test_stub_malformed_rdata.py.
"""

from __future__ import annotations

import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rrset
import pytest

from kittiwake import spf
from kittiwake.dns import Nameserver, StubResolver

from .dnsworld import free_port

LONG = "v=spf1 " + " ".join(f"ip4:10.{i}.0.0/16" for i in range(30)) + " ip4:192.0.2.5 -all"

# (name below signed.test, TXT rdata list in zone-file form, client IP, result, suite case)
CASES = [
    ("empty", ['"v=spf1 ip4:" "192.0.2.5 -all"', '""'], "192.0.2.5", "pass",
     "null-text, with one empty string (what bind can serve)"),
    ("split", ['"v=spf1 ip4:192.0.2.5 -a" "ll"'], "192.0.2.5", "pass",
     "strings are joined with no separator (§3.3)"),
    ("hosed", ['"v=spf1 a:\\239\\187\\191garbage.signed.test -all"'], "1.2.3.4", "permerror",
     "non-ascii-policy"),
    ("hosed2", ['"v=spf1 \\128a:signed.test -all"'], "1.2.3.4", "permerror",
     "non-ascii-mech"),
    ("nothosed", ['"v=spf1 a:signed.test -all"', '"\\150"'], "1.2.3.4", "fail",
     "non-ascii-non-spf"),
    ("ctrl", ['"v=spf1 a:ctrl.signed.test\\013ptr -all"'], "192.0.2.3", "permerror",
     "control-char-policy"),
    ("two", ['"v=spf1 -all"', '"v=spf1 +all"'], "192.0.2.5", "permerror",
     "multitxt2: two SPF records (§4.5)"),
    ("others", ['"google-site-verification=abc"', '"v=spf1 ip4:192.0.2.5 -all"',
                '"v=spf10 +all"'], "192.0.2.5", "pass", "non-SPF TXT records are ignored"),
    ("spf10", ['"v=spf10 +all"'], "192.0.2.5", "none", "v=spf10 is not v=spf1"),
    ("long", [LONG], "192.0.2.5", "pass", "a record longer than 255 octets"),
    ("viacname", [], "192.0.2.5", "pass", "the SPF record is reached through two CNAMEs"),
    ("include", ['"v=spf1 include:alias.signed.test -all"'], "192.0.2.5", "pass",
     "include of a name that is a CNAME"),
]


@pytest.fixture(scope="module")
def spf_world():  # type: ignore[no-untyped-def]
    from .dnsworld import DNSWorld

    world = DNSWorld()
    world.add("signed.test", "A", "127.0.0.1")
    world.add("ctrl.signed.test", "A", "192.0.2.3")
    world.add("target.signed.test", "TXT", '"v=spf1 ip4:192.0.2.5 -all"')
    world.add("alias.signed.test", "CNAME", "alias2.signed.test.")
    world.add("alias2.signed.test", "CNAME", "target.signed.test.")
    world.add("viacname.signed.test", "CNAME", "alias.signed.test.")
    for name, records, *_ in CASES:
        for rdata in records:
            world.add(f"{name}.signed.test", "TXT", rdata)
    world.start()
    yield world
    world.stop()


@pytest.mark.parametrize(("name", "ip", "expected"),
                         [pytest.param(c[0], c[2], c[3], id=c[0]) for c in CASES])
async def test_spf_over_real_dns(spf_world, name: str, ip: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    resolver = spf_world.stub_resolver()
    result = await spf.verify(resolver, ip, f"x@{name}.signed.test", "helo.signed.test")
    assert str(result.status) == expected, (result.status, result.problem, result.record)
    assert result.authentic  # every answer came validated from the signed zone


# --- null-text: a TXT of RDLENGTH 0, through a real unbound ------------------------

def _null_text_answer(query: dns.message.Message) -> bytes:
    response = dns.message.make_response(query)
    response.use_edns(False)
    response.flags |= dns.flags.AA
    question = query.question[0]
    if question.rdtype != dns.rdatatype.TXT:
        return response.to_wire()
    response.answer.append(dns.rrset.from_text(
        question.name, 60, "IN", "TXT", '"v=spf1 ip4:" "192.0.2.5 -all"'))
    wire = bytearray(response.to_wire())
    struct.pack_into("!H", wire, 6, 2)
    return bytes(wire + b"\xc0\x0c" + struct.pack("!HHIH", 16, 1, 60, 0))


def _authoritative(sock: socket.socket) -> None:
    while True:
        try:
            data, addr = sock.recvfrom(4096)
        except OSError:
            return
        sock.sendto(_null_text_answer(dns.message.from_wire(data)), addr)


def _wait_until_answering(port: int, proc: subprocess.Popen[bytes]) -> None:
    query = dns.message.make_query("example.com", "SOA")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert proc.poll() is None, "unbound exited"
        try:
            dns.query.udp(query, "127.0.0.1", port=port, timeout=0.2)
            return
        except (dns.exception.Timeout, OSError):
            time.sleep(0.05)  # not listening yet (connection refused comes at once)
    pytest.fail("unbound did not start")


async def test_null_text_through_unbound(tmp_path: Path) -> None:
    auth = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    auth.bind(("127.0.0.1", 0))
    threading.Thread(target=_authoritative, args=(auth,), daemon=True).start()
    port = free_port()
    (tmp_path / "unbound.conf").write_text(f"""server:
  interface: 127.0.0.1
  port: {port}
  do-ip6: no
  so-reuseport: no
  num-threads: 1
  username: ""
  chroot: ""
  directory: "{tmp_path}"
  pidfile: "{tmp_path}/unbound.pid"
  logfile: ""
  use-syslog: no
  module-config: "iterator"
  do-not-query-localhost: no
  local-zone: "." refuse
  local-zone: "example.com." transparent
  access-control: 127.0.0.0/8 allow
stub-zone:
  name: "null.example.com."
  stub-addr: 127.0.0.1@{auth.getsockname()[1]}
""")
    proc = subprocess.Popen(["unbound", "-d", "-c", str(tmp_path / "unbound.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until_answering(port, proc)
        resolver = StubResolver([Nameserver("127.0.0.1", port)], timeout=1.0)
        result = await spf.verify(resolver, "192.0.2.5", "silly@null.example.com", "hosed")
        assert result.status is spf.Status.PASS, result.problem
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        auth.close()
