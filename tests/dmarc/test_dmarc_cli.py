"""``kittiwake dmarc lookup`` with an injected MockResolver."""

from __future__ import annotations

import json

from click.testing import CliRunner

from kittiwake.cli.main import cli
from kittiwake.dns import MockResolver


def invoke(resolver: MockResolver, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["dmarc", "lookup", *args], obj={"resolver": resolver})


def test_lookup_text_via_org_domain() -> None:
    r = MockResolver()
    r.add("TXT", "_dmarc.example.com",
          "v=DMARC1; p=reject; sp=quarantine; rua=mailto:d@example.com; pct=bad",
          authentic=True)
    r.add("TXT", "_dmarc.mail.example.com", "v=DMARC1; p=none", authentic=True)
    res = invoke(r, "www.example.com")
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0] == ("www.example.com (organizational domain example.com): found"
                        " (not DNSSEC-authentic)")
    assert "record at _dmarc.example.com: v=DMARC1; p=reject; sp=quarantine" in res.output
    assert "policy for www.example.com: quarantine" in res.output
    assert "rua: mailto:d@example.com" in res.output
    assert "warning: pct='bad'" in res.output
    # Directly at a domain with its own record, all answers authentic.
    res = invoke(r, "postmaster@mail.example.com")
    assert res.exit_code == 0
    assert res.output.splitlines()[0] == (
        "mail.example.com (organizational domain example.com): found (DNSSEC-authentic)")
    assert "policy for mail.example.com: none" in res.output


def test_lookup_json() -> None:
    r = MockResolver()
    r.add("TXT", "_dmarc.example.org", "v=DMARC1; p=quarantine; adkim=s", authentic=True)
    res = invoke(r, "--json", "example.org")
    assert res.exit_code == 0
    doc = json.loads(res.output)
    assert doc["status"] == "found"
    assert doc["policy_domain"] == "example.org"
    assert doc["record"] == "v=DMARC1; p=quarantine; adkim=s"
    assert doc["policy"]["p"] == "quarantine" and doc["policy"]["adkim"] == "s"
    assert doc["authentic"] is True


def test_lookup_none_invalid_temperror_and_bad_name() -> None:
    r = MockResolver()
    r.add("TXT", "_dmarc.bad.example", "v=DMARC1; p=maybe")
    r.fail("TXT", "_dmarc.down.example")
    res = invoke(r, "nothing.example")
    assert res.exit_code == 2 and "no DMARC record at _dmarc.nothing.example" in res.output
    res = invoke(r, "--json", "bad.example")
    assert res.exit_code == 2 and json.loads(res.output)["status"] == "permerror"
    res = invoke(r, "down.example")
    assert res.exit_code == 3 and "temperror" in res.output
    assert "record at" not in res.output and "SERVFAIL" in res.output
    res = invoke(r, "a..example")
    assert res.exit_code == 1
    assert "empty label" in res.output and "Traceback" not in res.output


def test_verify_runs_spf_dkim_dmarc_like_the_mx() -> None:
    import json

    from click.testing import CliRunner

    from kittiwake import dkim
    from kittiwake.cli.main import cli
    from kittiwake.dns import MockResolver

    resolver = MockResolver()
    key = dkim.load_private_key(dkim.generate_key("ed25519"))
    resolver.add("TXT", "sel._domainkey.example.org", dkim.dns_record(key), authentic=True)
    resolver.add("TXT", "_dmarc.example.org", "v=DMARC1; p=reject", authentic=True)
    resolver.add("TXT", "example.org", "v=spf1 -all", authentic=True)
    message = dkim.sign_message(b"From: a@example.org\r\nSubject: x\r\n\r\nbody\r\n",
                                "example.org", "sel", key)
    args = ["dmarc", "verify", "--json", "--ip", "192.0.2.1", "--mailfrom", "a@example.org",
            "--helo", "mail.example.org"]
    result = CliRunner().invoke(cli, args, input=message, obj={"resolver": resolver})
    out = json.loads(result.output)
    assert result.exit_code == 0, result.output
    assert (out["result"], out["domain"], out["policy"]) == ("pass", "example.org", "reject")
    assert out["dkim_aligned"] and not out["spf_aligned"] and out["authentic"]
    tampered = message.replace(b"body", b"BODY")
    result = CliRunner().invoke(cli, args, input=tampered, obj={"resolver": resolver})
    assert result.exit_code == 2 and json.loads(result.output)["result"] == "fail"
