"""``kittiwake spf check`` and ``kittiwake spf lookup`` with a MockResolver injected."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import kittiwake.cli.spf as spf_cli
from kittiwake.cli.main import cli
from kittiwake.dns import MockResolver


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> MockResolver:
    r = MockResolver()
    r.add("TXT", "example.org", "v=spf1 ip4:192.0.2.0/24 include:_spf.example.net"
          " exp=why.example.org -all", authentic=True)
    r.add("TXT", "_spf.example.net", "v=spf1 a:out.example.net -all", authentic=True)
    r.add("A", "out.example.net", "198.51.100.7", authentic=False)
    r.add("TXT", "why.example.org", "%{i} may not send for %{d}", authentic=True)
    r.add("TXT", "helo.example.org", "v=spf1 a -all", authentic=True)
    r.add("A", "helo.example.org", "203.0.113.5", authentic=True)
    r.add("TXT", "broken.example", "v=spf1 a:%{x} -all")
    r.fail("TXT", "down.example", "servfail")
    monkeypatch.setattr(spf_cli, "make_resolver", lambda ctx=None: r)
    return r


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["spf", *args])
    return result.exit_code, result.stdout, result.stderr


def test_check_json_pass_not_authentic_through_include(resolver: MockResolver) -> None:
    code, out, _ = invoke("check", "--json", "--ip", "198.51.100.7",
                          "--mailfrom", "alice@example.org", "--helo", "mx.example.net")
    assert code == 0
    data = json.loads(out)
    assert (data["result"], data["domain"], data["explanation"]) == ("pass", "example.org", "")
    assert data["authentic"] is False  # the include's A answer was not DNSSEC-authentic
    assert data["identity"] == "mailfrom"
    assert data["mechanism"] == "include:_spf.example.net"


def test_check_json_fail_with_explanation(resolver: MockResolver) -> None:
    code, out, _ = invoke("check", "--json", "--ip", "203.0.113.9",
                          "--mailfrom", "alice@example.org")
    assert code == 0
    data = json.loads(out)
    assert data["result"] == "fail"
    assert data["explanation"] == "203.0.113.9 may not send for example.org"
    assert data["received_spf"].startswith("fail (unknown: domain of alice@example.org")


def test_check_helo_identity_text(resolver: MockResolver) -> None:
    code, out, _ = invoke("check", "--ip", "203.0.113.5", "--helo", "helo.example.org",
                          "--receiver", "mx.example.com")
    assert code == 0
    assert out.startswith("pass (helo identity, domain helo.example.org, DNSSEC-authentic)")
    assert "Received-SPF: pass (mx.example.com: domain of helo.example.org designates" in out


def test_check_empty_mailfrom_uses_helo(resolver: MockResolver) -> None:
    code, out, _ = invoke("check", "--json", "--ip", "192.0.2.1", "--mailfrom", "",
                          "--helo", "helo.example.org")
    assert code == 0
    data = json.loads(out)
    assert (data["result"], data["identity"], data["authentic"]) == ("fail", "helo", True)


def test_check_errors_exit_zero_with_reason(resolver: MockResolver) -> None:
    code, out, _ = invoke("check", "--json", "--ip", "192.0.2.1", "--mailfrom", "a@broken.example")
    assert code == 0
    data = json.loads(out)
    assert data["result"] == "permerror" and "macro" in data["problem"]
    code, out, _ = invoke("check", "--ip", "192.0.2.1", "--mailfrom", "a@down.example")
    assert code == 0
    assert out.startswith("temperror")


@pytest.mark.parametrize(("args", "message"), [
    (["--ip", "192.0.2.300", "--helo", "h.example"], "--ip '192.0.2.300' is not an IPv4"),
    (["--ip", "192.0.2.1"], "give --mailfrom ADDR or --helo NAME"),
    (["--ip", "192.0.2.1", "--mailfrom", "", "--helo", ""], "give --mailfrom"),
])
def test_check_user_errors_are_one_line(resolver: MockResolver, args: list[str],
                                        message: str) -> None:
    code, out, err = invoke("check", *args)
    assert code == 1
    assert out == ""
    assert err.startswith("kittiwake: ") and message in err
    assert err.count("\n") == 1


def test_lookup_json(resolver: MockResolver) -> None:
    code, out, _ = invoke("lookup", "--json", "example.org")
    assert code == 0
    data = json.loads(out)
    assert data["record"].startswith("v=spf1 ip4:192.0.2.0/24")
    assert data["authentic"] is True
    assert [t["text"] for t in data["terms"]] == [
        "ip4:192.0.2.0/24", "include:_spf.example.net", "exp=why.example.org", "-all"]
    assert data["terms"][1]["mechanism"] == "include"


def test_lookup_text_and_exit_codes(resolver: MockResolver) -> None:
    code, out, _ = invoke("lookup", "example.org")
    assert code == 0
    assert "example.org: found (DNSSEC-authentic)" in out
    assert "fail      all" in out
    code, out, _ = invoke("lookup", "broken.example")
    assert code == 2 and "permerror" in out and "macro" in out
    code, out, _ = invoke("lookup", "nothing.example")
    assert code == 2 and "none" in out
    code, out, _ = invoke("lookup", "down.example")
    assert code == 3 and "temperror" in out
    code, _, err = invoke("lookup", "not a domain")
    assert code == 1 and err.startswith("kittiwake: ")


def test_injected_resolver_through_context_object() -> None:
    r = MockResolver()
    r.add("TXT", "ctx.example", "v=spf1 +all")
    result = CliRunner().invoke(cli, ["spf", "check", "--json", "--ip", "192.0.2.1",
                                      "--mailfrom", "a@ctx.example"], obj={"resolver": r})
    assert result.exit_code == 0
    assert json.loads(result.stdout)["result"] == "pass"
