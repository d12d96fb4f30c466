"""Organizational domains (RFC 7489 §3.2) against the Public Suffix List's own test cases.

The cases come from the Debian package ``publicsuffix``
(``/usr/share/doc/publicsuffix/examples/test_psl.txt``). The list we use is
the snapshot inside the ``publicsuffixlist`` package, usually newer than the
Debian one; the test cases use rules that have been stable for years
(``com``, ``uk.com``, ``*.mm``, ``*.kobe.jp``/``!city.kobe.jp``, ``*.ck``/
``!www.ck``, ``k12.ak.us``, IDN ``公司.cn``), and all pass with both
snapshots. Should a future snapshot change one of those rules, the failure
message names the case.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kittiwake.dns.names import to_ascii
from kittiwake.publicsuffix import (
    InvalidName,
    is_public_suffix,
    organizational_domain,
    registrable_domain,
)

PSL_TESTS = Path("/usr/share/doc/publicsuffix/examples/test_psl.txt")
CASE = re.compile(r"checkPublicSuffix\((null|'[^']*'),\s*(null|'[^']*')\);")


def _psl_cases() -> list[tuple[str, str | None]]:
    if not PSL_TESTS.exists():
        # Not a skip: the Debian package "publicsuffix" is a required test peer.
        raise RuntimeError(f"{PSL_TESTS} is missing: install the Debian package publicsuffix")
    cases: list[tuple[str, str | None]] = []
    for line in PSL_TESTS.read_text(encoding="utf-8").splitlines():
        if line.startswith("//"):
            continue  # commented-out cases (non-Internet TLD .local)
        m = CASE.search(line)
        if not m:
            continue
        given, expected = (None if x == "null" else x[1:-1] for x in m.groups())
        if given is None:
            continue  # JavaScript null input: not expressible with a str API
        cases.append((given, expected))
    return cases


CASES = _psl_cases()


def test_psl_test_file_has_cases() -> None:
    assert len(CASES) >= 70


@pytest.mark.parametrize(("given", "expected"), CASES, ids=[c[0] for c in CASES])
def test_psl_cases(given: str, expected: str | None) -> None:
    want = None if expected is None else to_ascii(expected).lower()
    assert registrable_domain(given) == want


@pytest.mark.parametrize(
    ("given", "org"),
    [
        ("a.b.c.d.example.com", "example.com"),  # RFC 7489 §3.2 example
        ("cbg.bounces.example.com", "example.com"),  # RFC 7489 §3.1.2 example
        ("WWW.Example.CO.UK.", "example.co.uk"),
        ("mail.食狮.公司.cn", "xn--85x722f.xn--55qx5d.cn"),
        ("mail.xn--85x722f.xn--55qx5d.cn", "xn--85x722f.xn--55qx5d.cn"),
        ("alice.github.io", "alice.github.io"),  # private section counts
        ("com", "com"),  # a public suffix is its own organizational domain
        ("co.uk", "co.uk"),
        ("b.c.mm", "b.c.mm"),
    ],
)
def test_organizational_domain(given: str, org: str) -> None:
    assert organizational_domain(given) == org


def test_organizational_domain_rejects_bad_names() -> None:
    for bad in ["", ".", ".example.com", "a..b", "x" * 64 + ".com"]:
        with pytest.raises(InvalidName):
            organizational_domain(bad)
        assert registrable_domain(bad) is None


def test_is_public_suffix() -> None:
    assert is_public_suffix("co.uk")
    assert is_public_suffix("COM.")
    assert not is_public_suffix("example.co.uk")
    assert not is_public_suffix("..")
