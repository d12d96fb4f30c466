"""Differential test: random zones checked by kittiwake and by pyspf (Debian python3-spf).

pyspf is run by the system Python with its DNS replaced by the same zone data,
as the openspf suite's own driver does; both must reach the same result.

The zones avoid three places where pyspf knowingly differs from us:
- pyspf counts every empty DNS answer as a void lookup, also the address lookups
  of MX hosts and of PTR names; RFC 7208 §4.6.4 limits '"terms" for which DNS
  queries return [...] an answer count of 0, or a "Name Error"', so we count the
  term's own query (MX, PTR, A/AAAA, exists' A). Hosts here always have A and AAAA.
- pyspf rejects "include:" of the record's own domain before evaluating anything;
  RFC 7208 §4.6.2 evaluates mechanisms in order ("the first match [...] is used"),
  and the loop ends at the 10-term limit. Records here do not include themselves.
- pyspf expands the exp= text before evaluating the record and counts the PTR
  lookup of a %{p} there as a void lookup; the suite's exp-void test says exp=
  lookups "MUST NOT count against the void lookup limit". No %{p} in exp= here.
- for "@domain" pyspf expands %{s} to "@domain"; RFC 7208 §4.3 substitutes
  "postmaster" for the missing local-part of <sender> itself. Senders here have one.
- pyspf writes the nibbles of %{i} for IPv6 in upper case; RFC 7208 §7.4 shows lower
  case. Explanations are compared without case.
"""

from __future__ import annotations

import json
import random
import subprocess

import pytest

from kittiwake.dns import MX, MockResolver
from kittiwake.spf import verify

pytestmark = pytest.mark.integration  # pyspf (Debian python3-spf)

SCENARIOS = 500
DOMAINS = [f"d{i}.example" for i in range(5)]
HOSTS = [f"h{i}.example" for i in range(4)]
CLIENTS = ["192.0.2.1", "198.51.100.5", "2001:db8::1"]
MECHANISMS = [
    "a", "a:{h}", "a:{h}/24", "a//64", "mx", "mx:{d}", "mx/24", "ptr", "ptr:example", "ptr:{h}",
    "include:{d}", "exists:%{{ir}}.{h}", "exists:{h}", "ip4:192.0.2.0/24", "ip4:198.51.100.5",
    "ip6:2001:db8::/64", "a:nx{n}.example", "mx:nx{n}.example", "include:nx{n}.example",
    "exists:%{{l}}.{d}", "a:%{{d}}", "all", "a:{h}/24//48", "mx:{d}//64", "a:%{{h}}",
    "exists:%{{l1r.}}.%{{o}}.{h}", "ptr:%{{d2}}", "ip4:192.0.2.1/32", "ip6:::/0", "ip4:0.0.0.0/0",
]
MODIFIERS = ["redirect={d}", "exp=e.{d}", "x-unknown=%{{d}}"]


def _zone(rng: random.Random) -> dict[str, list[tuple[str, object]]]:
    zone: dict[str, list[tuple[str, object]]] = {}

    def add(name: str, rtype: str, value: object) -> None:
        zone.setdefault(name, []).append((rtype, value))

    for domain in DOMAINS:
        if rng.random() < 0.9:
            terms = []
            for _ in range(rng.randint(0, 5)):
                others = [d for d in DOMAINS if d != domain]
                text = rng.choice(MECHANISMS).format(
                    h=rng.choice(HOSTS), d=rng.choice(others), n=rng.randint(0, 3))
                terms.append(rng.choice(["", "", "-", "~", "?"]) + text)
            for modifier in MODIFIERS:
                if rng.random() < 0.2:
                    terms.append(modifier.format(d=rng.choice(DOMAINS)))
            if rng.random() < 0.5:
                terms.append(rng.choice(["-all", "~all", "?all", "+all"]))
            add(domain, "TXT", "v=spf1 " + " ".join(terms))
        add(f"e.{domain}", "TXT", rng.choice([
            "explained %{d} for %{i}", "%{s} %{l} %{o} %{h} %{v}", "%{L} %{dr} %{d1}",
            "broken %{x}", "%{d2r} %{H}", "%{ir}.%{v}.arpa",
        ]))
        if rng.random() < 0.6:
            add(domain, "A", rng.choice(CLIENTS[:2]))
        if rng.random() < 0.6:
            add(domain, "MX", (10, rng.choice(HOSTS)))
    for host in HOSTS:
        add(host, "A", rng.choice(["192.0.2.1", "192.0.2.77", "198.51.100.5"]))
        add(host, "AAAA", rng.choice(["2001:db8::1", "2001:db8::99"]))
        if rng.random() < 0.3:
            add(f"1.2.0.192.{host}", "A", "127.0.0.2")
    add("1.2.0.192.in-addr.arpa", "PTR", rng.choice(HOSTS))
    add("5.100.51.198.in-addr.arpa", "PTR", rng.choice(HOSTS))
    return zone


_PYSPF = r"""
import json, socket, sys, spf
scenarios = json.load(sys.stdin)
zone = {}
def lookup(name, qtype, strict=True, timeout=None, level=0):
    for rtype, value in zone.get(name.lower().rstrip("."), []):
        if rtype != qtype:
            continue
        if rtype == "AAAA":
            value = socket.inet_pton(socket.AF_INET6, value)
        elif rtype == "TXT":
            value = (value.encode(),)
        elif rtype == "MX":
            value = tuple(value)
        yield ((name, rtype), value)
spf.DNSLookup = lookup
out = []
for z, ip, sender, helo in scenarios:
    zone = {k: [tuple(e) for e in v] for k, v in z.items()}
    q = spf.query(i=ip, s=sender, h=helo)
    q.set_default_explanation("")
    res, _code, exp = q.check()
    out.append([{"unknown": "permerror", "error": "temperror"}.get(res, res), exp])
print(json.dumps(out))
"""


def _resolver(zone: dict[str, list[tuple[str, object]]]) -> MockResolver:
    r = MockResolver()
    for name, entries in zone.items():
        for rtype, value in entries:
            if rtype == "MX":
                preference, exchange = value  # type: ignore[misc]
                r.add("MX", name, MX(preference, exchange))
            else:
                r.add(rtype, name, value)
    return r


async def test_random_zones_agree_with_pyspf() -> None:
    rng = random.Random(7208)
    senders = ["user@d0.example", "user@d0.example", "a.b-c@d0.example", ""]
    scenarios = [(_zone(rng), rng.choice(CLIENTS), rng.choice(senders), "d1.example")
                 for _ in range(SCENARIOS)]
    proc = subprocess.run(["/usr/bin/python3", "-c", _PYSPF], input=json.dumps(scenarios),
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"pyspf (python3-spf) oracle failed: {proc.stderr[-2000:]}"
    theirs = json.loads(proc.stdout)
    differences = []
    for (zone, ip, sender, helo), (status, explanation) in zip(scenarios, theirs, strict=True):
        ours = await verify(_resolver(zone), ip, sender, helo)
        # pyspf also returns a text for other results; RFC 7208 §6.2 has exp= only for
        # "fail", so the explanations are compared for "fail" alone.
        same_exp = status != "fail" or ours.explanation.lower() == explanation.lower()
        if str(ours.status) != status or not same_exp:
            differences.append(
                f"{ip} {sender or helo} {zone.get('d0.example')}: ours {ours.status}"
                f" {ours.explanation!r} ({ours.problem}), pyspf {status} {explanation!r}")
    assert not differences, f"{len(differences)} differences:\n" + "\n".join(differences[:10])
