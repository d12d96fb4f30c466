"""One bad config per row, and the exact line `kittiwake config test` prints for it.

Each of these used to pass `config test` and then fail at runtime, or be
accepted and do nothing (a 250 for mail stored nowhere). `{dir}` in an
expected line is the config directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme
from click.testing import CliRunner

from kittiwake import dkim
from kittiwake.cli.main import cli

STATIC = """\
hostname = "mail.example.org"
data_dir = "data"
[listeners.internal]
ips = ["127.0.0.1"]
smtp = { enabled = true, port = 12025 }
"""

DOMAINS = """\
[domains."example.org"]
[accounts.alice]
domain = "example.org"
destinations = { "alice@example.org" = {} }
[accounts.bob]
domain = "example.org"
destinations = { "bob@example.org" = {} }
"""

S = "{dir}/kittiwake.conf: "
D = "{dir}/domains.conf: "
INT = "expected an integer, without quotes or decimal point (e.g. 25)"
BOOL = "expected true or false, without quotes"

# (id, kittiwake.conf, domains.conf, the one line config test prints)
ROWS = [
    ("port-string", STATIC.replace("port = 12025", 'port = "12025"'), DOMAINS,
     S + f"listeners.internal.smtp.port: {INT} (got '12025')"),
    ("port-float", STATIC.replace("port = 12025", "port = 12025.0"), DOMAINS,
     S + f"listeners.internal.smtp.port: {INT} (got 12025.0)"),
    ("enabled-string", STATIC.replace("enabled = true", 'enabled = "yes"'), DOMAINS,
     S + f"listeners.internal.smtp.enabled: {BOOL} (got 'yes')"),
    ("enabled-int", STATIC.replace("enabled = true", "enabled = 1"), DOMAINS,
     S + f"listeners.internal.smtp.enabled: {BOOL} (got 1)"),
    ("hostname-spaces", STATIC.replace("mail.example.org", "mail kw example"), DOMAINS,
     S + "hostname: domain name 'mail kw example': a space is not allowed (letters, digits,"
     " hyphens and dots only)"),
    ("listener-hostname", STATIC + 'hostname = "mx_1.example.org"\n', DOMAINS,
     S + "listeners.internal.hostname: domain name 'mx_1.example.org': character '_' is not"
     " allowed (letters, digits, hyphens and dots only)"),
    ("submissions-no-certificate", STATIC + "submissions = { enabled = true }\n", DOMAINS,
     S + "listeners.internal.submissions: enabled, but listeners.internal.tls has no"
     " certificates: implicit TLS (RFC 8314 §3.3) needs one; add"
     " [[listeners.internal.tls.certificates]] or disable submissions"),
    ("postmaster-ghost", 'postmaster_account = "ghost"\n' + STATIC, DOMAINS,
     S + "postmaster_account: no account 'ghost' in domains.conf (known: alice, bob);"
     " postmaster@ mail must reach a real account (RFC 5321 §4.5.1): add it with"
     " `kittiwake account add ghost ADDRESS` or name another"),
    ("same-address-two-accounts", STATIC,
     DOMAINS.replace('"bob@example.org" = {}', '"bob@example.org" = {}, "Alice@example.org" = {}'),
     D + "accounts.bob.destinations.\"Alice@example.org\": address 'Alice@example.org' is"
     " already a destination of account alice: an address belongs to one account (use an"
     " alias for several)"),
    ("two-catchalls", STATIC,
     DOMAINS.replace('"alice@example.org" = {}', '"alice@example.org" = {}, "@example.org" = {}')
     .replace('"bob@example.org" = {}', '"bob@example.org" = {}, "@Example.ORG" = {}'),
     D + "accounts.bob.destinations.\"@Example.ORG\": catch-all of the domain '@Example.ORG'"
     " is already a destination of account alice: an address belongs to one account (use an"
     " alias for several)"),
    ("alias-is-an-account-address", STATIC,
     DOMAINS + '[aliases."bob@example.org"]\naddresses = ["alice@example.org"]\n',
     D + "aliases.\"bob@example.org\": 'bob@example.org' is also a destination of account bob:"
     " an address cannot be both an alias and an account's address"),
    ("alias-remote-member", STATIC,
     DOMAINS + '[aliases."fwd@example.org"]\naddresses = ["victim@remote.example"]\n',
     D + "aliases.\"fwd@example.org\".addresses[0]: alias 'fwd@example.org': member"
     " 'victim@remote.example' is not a local address (its domain is not in domains);"
     " aliases deliver to local accounts only, remote members are not supported"),
    ("alias-misspelled-member", STATIC,
     DOMAINS + '[aliases."team@example.org"]\naddresses = ["alice@example.org",'
     ' "bbo@example.org"]\n',
     D + "aliases.\"team@example.org\".addresses[1]: alias 'team@example.org': member"
     " 'bbo@example.org' is not a destination of any account (add it with"
     " `kittiwake address add bbo@example.org ACCOUNT`)"),
    ("alias-catchall-member", STATIC,
     DOMAINS.replace('"bob@example.org" = {}', '"@example.org" = {}')
     + '[aliases."team@example.org"]\naddresses = ["carol@example.org"]\n',
     D + "aliases.\"team@example.org\".addresses[0]: alias 'team@example.org': member"
     " 'carol@example.org' is not a destination of any account (add it with"
     " `kittiwake address add carol@example.org ACCOUNT`)"),
    ("alias-of-alias", STATIC,
     DOMAINS + '[aliases."a@example.org"]\naddresses = ["b@example.org"]\n'
     '[aliases."b@example.org"]\naddresses = ["bob@example.org"]\n',
     D + "aliases.\"a@example.org\".addresses[0]: alias 'a@example.org': member"
     " 'b@example.org' is an alias; aliases cannot contain aliases"),
    ("alias-no-members", STATIC, DOMAINS + '[aliases."none@example.org"]\naddresses = []\n',
     D + "aliases.\"none@example.org\".addresses: alias 'none@example.org' has no members:"
     " mail to it would go nowhere"),
    ("alias-foreign-domain", STATIC,
     DOMAINS + '[aliases."team@example.net"]\naddresses = ["bob@example.org"]\n',
     D + "aliases.\"team@example.net\": domain 'example.net' of alias 'team@example.net' is"
     " not in domains (known: example.org)"),
    ("mailbox-empty-level", STATIC,
     DOMAINS.replace('"alice@example.org" = {}', '"alice@example.org" = { mailbox = "Lists//x" }'),
     D + "accounts.alice.destinations.\"alice@example.org\".mailbox: mailbox name 'Lists//x'"
     " has an empty hierarchy level (between two '/')"),
    ("ruleset-mailbox-control-char", STATIC,
     DOMAINS.replace('"alice@example.org" = {}', '"alice@example.org" = { rulesets = ['
                     '{ smtp_mailfrom_regexp = "x", mailbox = "a\\u0007b" }] }'),
     D + "accounts.alice.destinations.\"alice@example.org\".rulesets[0].mailbox: mailbox name"
     " 'a\\x07b' contains control characters"),
    ("resolver-not-an-ip", STATIC + '[dns]\nresolvers = ["dns.example:53"]\n', DOMAINS,
     S + "dns.resolvers[0]: 'dns.example:53' is not an IP address (expected IP[:PORT],"
     " e.g. 127.0.0.1:53)"),
    ("account-name-a-path", STATIC, DOMAINS.replace("[accounts.bob]", '[accounts."../bob"]'),
     D + "accounts.\"../bob\": account name '../bob' cannot be used: it names the account's"
     " directory, so no '/', no leading '.', no control characters"),
    ("socks-ehlo-name", STATIC + '[transports.proxy.socks]\naddress = "127.0.0.1:1080"\n'
     'remote_ips = ["192.0.2.1"]\nhostname = "out proxy"\n', DOMAINS,
     S + "transports.proxy.socks.hostname: domain name 'out proxy': a space is not allowed"
     " (letters, digits, hyphens and dots only)"),
    ("dkim-headers-without-from", STATIC, DOMAINS.replace(
        '[domains."example.org"]',
        '[domains."example.org"]\ndkim = { selectors = { s1 = { private_key_file = "k.pem",'
        ' headers = ["Subject", "To"] } } }'),
     D + "domains.\"example.org\".dkim.selectors.s1.headers: the signed header fields must"
     " include From (RFC 6376 §5.4); leave the list empty for the default"),
    ("dkim-header-name", STATIC, DOMAINS.replace(
        '[domains."example.org"]',
        '[domains."example.org"]\ndkim = { selectors = { s1 = { private_key_file = "k.pem",'
        ' headers = ["From", "Sub ject"] } } }'),
     D + "domains.\"example.org\".dkim.selectors.s1.headers: 'Sub ject' is not a header"
     " field name"),
    ("dmarc-reports-ghost", STATIC, DOMAINS.replace(
        '[domains."example.org"]',
        '[domains."example.org"]\ndmarc_reports = { localpart = "dmarc", account = "carol" }'),
     D + "domains.\"example.org\".dmarc_reports.account: no account 'carol'"
     " (known: alice, bob)"),
]


def _write(directory: Path, static: str, domains: str) -> None:
    (directory / "kittiwake.conf").write_text(static)
    (directory / "domains.conf").write_text(domains)


def _config_test(directory: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli, ["--config", str(directory), "config", "test"])
    assert "Traceback" not in result.output
    return result.exit_code, result.output.strip().splitlines()


def test_the_base_config_is_good(tmp_path: Path) -> None:
    _write(tmp_path, STATIC, DOMAINS)
    code, lines = _config_test(tmp_path)
    assert code == 0 and lines[-1].startswith("config OK"), lines


@pytest.mark.parametrize(("static", "domains", "expected"), [row[1:] for row in ROWS],
                         ids=[row[0] for row in ROWS])
def test_bad_config_gives_its_one_line(tmp_path: Path, static: str, domains: str,
                                       expected: str) -> None:
    _write(tmp_path, static, domains)
    code, lines = _config_test(tmp_path)
    assert code == 1
    assert lines == [expected.format(dir=tmp_path), "kittiwake: 1 problem in the configuration"]


def _with_files(tmp_path: Path) -> tuple[str, str]:
    ca = trustme.CA()
    cert = ca.issue_cert("mail.example.org")
    cert.cert_chain_pems[0].write_to_path(tmp_path / "cert.pem")
    cert.private_key_pem.write_to_path(tmp_path / "key.pem")
    (tmp_path / "dkim.pem").write_bytes(dkim.generate_key("ed25519"))
    static = STATIC + ('tls = { certificates = [{ cert_file = "cert.pem",'
                       ' key_file = "key.pem" }] }\n')
    domains = DOMAINS.replace('[domains."example.org"]', '[domains."example.org"]\n'
                              'dkim = { selectors = { s1 = { private_key_file = "dkim.pem" } } }')
    return static, domains


def test_files_that_are_right_pass(tmp_path: Path) -> None:
    _write(tmp_path, *_with_files(tmp_path))
    code, lines = _config_test(tmp_path)
    assert code == 0, lines


@pytest.mark.parametrize(("swap", "expected"), [
    (("dkim.pem", "cert.pem"), D + 'domains."example.org".dkim.selectors.s1.private_key_file:'
     " {dir}/dkim.pem: not a PEM private key (expected an RSA or Ed25519 private key in PEM,"
     " e.g. from `kittiwake dkim gen ed25519`)"),
    (("cert.pem", "key.pem"), S + "listeners.internal.tls.certificates[0]: {dir}/cert.pem is"
     " not a PEM certificate"),
    (("key.pem", "dkim.pem"), S + "listeners.internal.tls.certificates[0]: {dir}/key.pem is"
     " not the private key of {dir}/cert.pem"),
    (("key.pem", "cert.pem"), S + "listeners.internal.tls.certificates[0]: {dir}/key.pem is"
     " not a PEM private key"),
], ids=["dkim-key-is-a-certificate", "certificate-is-a-key", "key-does-not-match",
        "key-is-a-certificate"])
def test_file_of_the_wrong_kind(tmp_path: Path, swap: tuple[str, str], expected: str) -> None:
    """A file that exists but is not what the field needs fails config test, not serve."""
    static, domains = _with_files(tmp_path)
    target, source = swap
    (tmp_path / target).write_bytes((tmp_path / source).read_bytes())
    _write(tmp_path, static, domains)
    code, lines = _config_test(tmp_path)
    assert code == 1
    assert lines == [expected.format(dir=tmp_path), "kittiwake: 1 problem in the configuration"]


def test_missing_dkim_key_says_which_command_creates_it(tmp_path: Path) -> None:
    static, domains = _with_files(tmp_path)
    (tmp_path / "dkim.pem").unlink()
    _write(tmp_path, static, domains)
    code, lines = _config_test(tmp_path)
    assert code == 1
    assert lines[0] == (f"{tmp_path}/domains.conf: domains.\"example.org\".dkim.selectors.s1."
                        f"private_key_file: no file {tmp_path}/dkim.pem (create it with"
                        f" `kittiwake dkim gen ed25519 > {tmp_path}/dkim.pem`)")


@pytest.mark.parametrize("child", ["runs", "cannot start"])
def test_serve_checks_dkim_keys_in_a_child_with_the_same_answer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, child: str) -> None:
    """``serve`` (keys_apart) opens the DKIM keys in a child process: the same problems
    as ``config test``; when the child cannot start, they are found in this process."""
    import subprocess
    import sys

    from kittiwake.config import ConfigError, load

    static, domains = _with_files(tmp_path)
    domains = domains.replace('s1 = { private_key_file = "dkim.pem" }',
                              's1 = { private_key_file = "dkim.pem" },'
                              ' s2 = { private_key_file = "wrong.pem" }')
    (tmp_path / "wrong.pem").write_bytes((tmp_path / "cert.pem").read_bytes())
    _write(tmp_path, static, domains)
    with pytest.raises(ConfigError) as here:
        load(tmp_path)
    [problem] = here.value.problems
    assert problem.startswith(f"{tmp_path}/domains.conf: domains.\"example.org\".dkim."
                              f"selectors.s2.private_key_file: {tmp_path}/wrong.pem: not a PEM"
                              " private key")
    calls: list[list[str]] = []
    real_run = subprocess.run

    def run(cmd: list[str], **kwargs: object) -> object:
        calls.append(cmd)
        return real_run(cmd, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(subprocess, "run", run)
    if child == "cannot start":
        monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    with pytest.raises(ConfigError) as apart:
        load(tmp_path, keys_apart=True)
    assert apart.value.problems == here.value.problems
    assert [c[1:3] for c in calls] == [["-m", "kittiwake.dkim.keycheck"]]
    assert calls[0][3:] == [str(tmp_path / "dkim.pem"), str(tmp_path / "wrong.pem")]
