"""The TLSRPT settings as ``kittiwake config test`` sees them: one clear line per problem."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from kittiwake.cli.main import cli
from kittiwake.config import load
from kittiwake.config.lookup import AccountRecipient, AddressIndex

DOMAINS = """
[domains."example.org".tlsrpt_reports]
localpart = "tls-reports"
account = "{account}"

[accounts.alice]
domain = "example.org"
"""


def config_test(tmp_path: Path, static: str, domains: str) -> Result:
    conf = tmp_path / "config"
    conf.mkdir(exist_ok=True)
    (conf / "kittiwake.conf").write_text('hostname = "mail.example.org"\n' + static)
    (conf / "domains.conf").write_text(domains)
    return CliRunner().invoke(cli, ["--config", str(conf), "config", "test"])


def test_report_address_delivers_to_its_account(tmp_path: Path) -> None:
    assert config_test(tmp_path, "", DOMAINS.format(account="alice")).exit_code == 0
    index = AddressIndex(load(tmp_path / "config").domains)
    found = index.lookup("TLS-Reports", "example.org")
    assert isinstance(found, AccountRecipient)
    assert (found.account, found.destination.mailbox) == ("alice", "TLSRPT")


def test_unknown_account(tmp_path: Path) -> None:
    result = config_test(tmp_path, "", DOMAINS.format(account="bob"))
    assert result.exit_code == 1
    assert ('domains."example.org".tlsrpt_reports.account: no account \'bob\''
            " (known: alice)") in result.output


def test_from_domain_must_sign(tmp_path: Path) -> None:
    result = config_test(tmp_path, '[reports.tlsrpt]\nfrom_domain = "example.net"\n',
                         DOMAINS.format(account="alice"))
    assert result.exit_code == 1
    assert ("reports.tlsrpt.from_domain: domain 'example.net' is not in domains.conf"
            " (known: example.org)") in result.output
    result = config_test(tmp_path, '[reports.tlsrpt]\nfrom_domain = "example.org"\n',
                         DOMAINS.format(account="alice"))
    assert result.exit_code == 1
    assert "has no DKIM signing" in result.output


def test_timeout_is_validated(tmp_path: Path) -> None:
    result = config_test(tmp_path, "[reports.tlsrpt]\nhttps_timeout_seconds = 0\n",
                         DOMAINS.format(account="alice"))
    assert result.exit_code == 1
    assert "reports.tlsrpt.https_timeout_seconds" in result.output
