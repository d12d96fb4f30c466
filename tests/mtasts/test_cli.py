"""``kittiwake mtasts lookup`` with a mock resolver and a stand-in policy fetch."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import kittiwake.cli.mtasts as mtasts_cli
from kittiwake.cli.main import cli
from kittiwake.dns import MockResolver
from kittiwake.mtasts import FailureType, FetchResult, parse_policy, policy_url

POLICIES = {
    "example.org": "version: STSv1\nmode: enforce\nmx: *.example.org\nmax_age: 604800\n",
}


@pytest.fixture(autouse=True)
def fake_fetch(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    fetched: list[str] = []

    async def fetch(domain: str, resolver: object = None) -> FetchResult:
        fetched.append(domain)
        if domain in POLICIES:
            return FetchResult(domain, policy_url(domain), parse_policy(POLICIES[domain]))
        return FetchResult(domain, policy_url(domain), None, FailureType.STS_POLICY_FETCH_ERROR,
                           f"{policy_url(domain)} answered HTTP 404 Not Found")

    monkeypatch.setattr(mtasts_cli, "fetch", fetch)
    return fetched


@pytest.fixture
def resolver() -> MockResolver:
    r = MockResolver()
    r.add("TXT", "_mta-sts.example.org", "v=STSv1; id=2024a;", authentic=True)
    r.add("TXT", "_mta-sts.example.net", "v=STSv1; id=n1")
    r.fail("TXT", "_mta-sts.down.example", "servfail")
    return r


def invoke(resolver: MockResolver, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["mtasts", "lookup", *args], obj={"resolver": resolver})
    return result.exit_code, result.stdout, result.stderr


def test_lookup_text(resolver: MockResolver) -> None:
    code, out, _ = invoke(resolver, "Example.ORG")
    assert code == 0
    assert out.splitlines() == [
        "_mta-sts.example.org: v=STSv1; id=2024a; (DNSSEC-authentic)",
        "policy from https://mta-sts.example.org/.well-known/mta-sts.txt:",
        "  mode: enforce",
        "  max_age: 604800 (7 days)",
        "  mx: *.example.org",
    ]


def test_lookup_json(resolver: MockResolver) -> None:
    code, out, _ = invoke(resolver, "--json", "example.org")
    data = json.loads(out)
    assert code == 0
    assert data["record"]["id"] == "2024a" and data["record"]["authentic"] is True
    assert data["policy"]["policy"] == {"version": "STSv1", "mode": "enforce",
                                        "max_age": 604800, "mx": ["*.example.org"]}


def test_lookup_policy_failure(resolver: MockResolver) -> None:
    code, out, _ = invoke(resolver, "example.net")
    assert code == 2
    assert "no valid policy (sts-policy-fetch-error):" in out and "HTTP 404" in out


def test_lookup_without_record_does_not_fetch(resolver: MockResolver,
                                              fake_fetch: list[str]) -> None:
    code, out, _ = invoke(resolver, "example.com")
    assert code == 2 and "no MTA-STS record" in out and fake_fetch == []


def test_lookup_temporary_failure(resolver: MockResolver) -> None:
    code, out, _ = invoke(resolver, "down.example")
    assert code == 3 and "SERVFAIL" in out


def test_lookup_bad_domain(resolver: MockResolver) -> None:
    code, _out, err = invoke(resolver, "bad..example")
    assert code == 1 and err.startswith("kittiwake: ") and "empty label" in err
