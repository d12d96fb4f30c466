"""``[dmarc_reporting]`` in kittiwake.conf: validated, checked by ``config test``, defaults."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from kittiwake.cli.main import cli
from kittiwake.config import load
from kittiwake.reports.dmarc_service import report_settings


def run(conf: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(conf), *args])
    return result.exit_code, result.output


def config(tmp_path: Path, section: str) -> Path:
    conf = tmp_path / "config"
    conf.mkdir()
    (conf / "kittiwake.conf").write_text(
        f'hostname = "mail.example.org"\ndata_dir = "../data"\n{section}')
    (conf / "domains.conf").write_text('[domains."example.org"]\n')
    return conf


def test_bad_from_address_is_one_clear_line(tmp_path: Path) -> None:
    conf = config(tmp_path, '[dmarc_reporting]\nfrom_address = "not an address"\n')
    code, out = run(conf, "config", "test")
    assert code != 0
    assert "dmarc_reporting.from_address" in out and "is not a mail address" in out
    assert "Traceback" not in out


def test_from_address_outside_our_domains_is_found_by_config_test(tmp_path: Path) -> None:
    conf = config(tmp_path, '[dmarc_reporting]\nfrom_address = "r@elsewhere.example"\n')
    code, out = run(conf, "config", "test")
    assert code != 0
    assert "dmarc_reporting.from_address: 'r@elsewhere.example' is not in one of our" \
           " domains (known: example.org)" in out


def test_unknown_setting_refused(tmp_path: Path) -> None:
    conf = config(tmp_path, "[dmarc_reporting]\nenable = true\n")
    code, out = run(conf, "config", "test")
    assert code != 0 and "dmarc_reporting.enable" in out


def test_defaults_are_the_host_domain_and_postmaster(tmp_path: Path) -> None:
    conf = config(tmp_path, "")
    c = load(conf)
    assert c.static.dmarc_reporting.enabled
    s = report_settings(c.static, c.domains, conf)
    assert (s.organization, s.from_address, s.hostname) == (
        "example.org", "postmaster@example.org", "mail.example.org")
    assert s.signing is None  # example.org has no DKIM key configured: sent unsigned
