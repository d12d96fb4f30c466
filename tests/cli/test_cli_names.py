"""CLI arguments naming domains, accounts and packages: one clear line and exit 1 on refusal."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kittiwake.cli.main import cli


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    conf = tmp_path / "config"
    conf.mkdir()
    (conf / "kittiwake.conf").write_text('hostname = "mail.example.org"\ndata_dir = "../data"\n')
    (conf / "domains.conf").write_text("")
    for args in (["domain", "add", "example.org"],
                 ["account", "add", "alice", "alice@example.org"]):
        result = kittiwake(conf, *args)
        assert result.exit_code == 0, result.output
    return conf


def kittiwake(config_dir: Path, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config_dir), *args], input=stdin)


def refused(result: Result, *expected: str) -> str:
    """The one line a refused command printed (checked: exit 1, one line, the words)."""
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("kittiwake: ")
    for words in expected:
        assert words in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(("domain", "reason"), [
    ("bad domain", "a space is not allowed"),
    ("127.0.0.1", "is an IP address, not a domain name"),
    ("[127.0.0.1]", "address literal"),
    ("com", "public suffix"),
    ("co.uk", "public suffix"),
    ("x_y.example", "character '_' is not allowed"),
    ("a@b.example", "is an address, not a domain name"),
    ("\u200bkw.example", "invisible character U+200B"),
    ("k\u00adw.example", "invisible character U+00AD"),
])
def test_domain_add_refuses_what_is_no_mail_domain(config_dir: Path, domain: str,
                                                   reason: str) -> None:
    before = (config_dir / "domains.conf").read_text()
    refused(kittiwake(config_dir, "domain", "add", domain), reason)
    assert (config_dir / "domains.conf").read_text() == before
    assert kittiwake(config_dir, "domain", "list").output.split()[2:] == ["example.org", "1"]


def test_domain_add_maps_full_width_dots_and_idna(config_dir: Path) -> None:
    result = kittiwake(config_dir, "domain", "add", "kw\uff0eexample")
    assert result.exit_code == 0 and result.output == "domain kw.example added\n"
    result = kittiwake(config_dir, "domain", "add", "Bücher.example")
    assert result.output == "domain xn--bcher-kva.example added\n"
    refused(kittiwake(config_dir, "domain", "add", "KW.example"), "already configured")


def test_account_add_refuses_unsafe_names(config_dir: Path) -> None:
    line = refused(kittiwake(config_dir, "account", "add", "bad name", "bob@example.org"),
                   "account name 'bad name' is not allowed")
    assert "letters, digits, '.', '_' or '-'" in line
    refused(kittiwake(config_dir, "account", "add", "../x", "bob@example.org"), "not allowed")
    result = kittiwake(config_dir, "account", "add", "bob.smith-2", "bob@example.org")
    assert result.exit_code == 0, result.output


def test_addresses_with_look_alike_or_bad_parts_are_refused(config_dir: Path) -> None:
    refused(kittiwake(config_dir, "account", "add", "bob", "bob@\u200bexample.org"),
            "U+200B")
    refused(kittiwake(config_dir, "address", "add", "a b@example.org", "alice"),
            "is not a valid address")
    refused(kittiwake(config_dir, "address", "add", "x@[127.0.0.1]", "alice"),
            "address literal")
    # the same address spelled with a full-width dot is the same address
    refused(kittiwake(config_dir, "address", "add", "alice@example\uff0eorg", "alice"),
            "already belongs to account alice")
    result = kittiwake(config_dir, "address", "add", "al@example\u3002org", "alice")
    assert result.output == "address al@example.org added to account alice\n"


def test_setpassword_of_unknown_account_says_so(config_dir: Path) -> None:
    refused(kittiwake(config_dir, "account", "setpassword", "ghost", stdin="x\n"),
            "no account 'ghost'", "known: alice")


def test_holdrule_for_unknown_account_is_refused(config_dir: Path) -> None:
    refused(kittiwake(config_dir, "queue", "holdrules", "add", "--account", "ghost"),
            "--account: no account 'ghost'", "known: alice")
    refused(kittiwake(config_dir, "queue", "holdrules", "add", "--to-domain", "bad domain"),
            "--to-domain:", "a space is not allowed")


def test_loglevels_refuses_unknown_packages_and_levels(config_dir: Path) -> None:
    line = refused(kittiwake(config_dir, "loglevels", "nosuchpkg=debug"),
                   "no package 'nosuchpkg'")
    assert "smtpserver" in line  # the known packages are listed
    refused(kittiwake(config_dir, "loglevels", "smtpserver=loud"), "unknown log level 'loud'")
    # a real package passes the check and only then needs the server
    result = kittiwake(config_dir, "loglevels", "smtpserver.connection=debug", "=trace")
    assert "no package" not in result.output and "unknown log level" not in result.output
