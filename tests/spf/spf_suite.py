"""Loading the openspf RFC 7208 test suite (Debian python3-spf) into MockResolvers.

The zone data conventions are those of the suite's own driver: "SPF" entries are
also served as TXT unless the name has TXT entries ("TXT: NONE" means no TXT
record); a bare "TIMEOUT" makes every type the name does not list time out;
TXT/SPF values given as lists are the strings of one record, joined without
separator (RFC 7208 §3.3); "\\xNN" escapes in the YAML stand for raw bytes.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kittiwake.dns import MX, MockResolver, RRType

SUITE = Path("/usr/share/doc/python3-spf/rfc7208-tests.yml.gz")


@dataclass(frozen=True)
class SuiteTest:
    name: str
    scenario: str
    host: str
    mailfrom: str
    helo: str
    results: tuple[str, ...]
    explanation: str | None
    spec: str
    zonedata: dict[str, Any]


def load_suite(path: Path = SUITE) -> list[SuiteTest]:
    with gzip.open(path, "rb") as f:
        scenarios = list(yaml.safe_load_all(f))
    tests = []
    for scenario in scenarios:
        for name, test in scenario["tests"].items():
            result = test["result"]
            tests.append(SuiteTest(
                name=name,
                scenario=scenario["description"],
                host=str(test["host"]),
                mailfrom=str(test["mailfrom"]),
                helo=str(test["helo"]),
                results=tuple(result) if isinstance(result, list) else (result,),
                explanation=test.get("explanation"),
                spec=str(test["spec"]),
                zonedata=scenario.get("zonedata") or {},
            ))
    return tests


def _wire_text(value: str) -> str:
    """A YAML string whose code points are bytes, decoded as the stub resolver does."""
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        return value
    return raw.decode("utf-8", errors="replace")


def _txt(value: str | list[str]) -> str:
    if isinstance(value, list):
        return "".join(_wire_text(str(s)) for s in value)
    return _wire_text(str(value))


def build_resolver(zonedata: dict[str, Any]) -> MockResolver:
    resolver = MockResolver()
    for name, entries in zonedata.items():
        served: set[RRType] = set()
        timeout = False
        has_txt = any(isinstance(e, dict) and "TXT" in e for e in entries)
        for entry in entries:
            if entry == "TIMEOUT":
                timeout = True
                continue
            for rtype, value in entry.items():
                if rtype in ("SPF", "TXT"):
                    if (rtype == "SPF" and has_txt) or value == "NONE":
                        continue
                    resolver.add(RRType.TXT, name, _txt(value))
                    served.add(RRType.TXT)
                elif rtype == "MX":
                    preference, exchange = value
                    resolver.add(RRType.MX, name, MX(int(preference), str(exchange).rstrip(".")))
                    served.add(RRType.MX)
                elif rtype == "CNAME":
                    resolver.cname(name, str(value).rstrip("."))
                    served.add(RRType.CNAME)
                else:
                    kind = RRType.parse(rtype)
                    resolver.add(kind, name, str(value))
                    served.add(kind)
        if timeout:
            for kind in (RRType.A, RRType.AAAA, RRType.MX, RRType.TXT, RRType.PTR):
                if kind not in served:
                    resolver.fail(kind, name, "timeout")
    return resolver
