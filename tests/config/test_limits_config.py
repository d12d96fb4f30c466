"""kittiwake.conf [limits]: documented in describe-static, checked by config test."""

from __future__ import annotations

import tomllib
from pathlib import Path

from click.testing import CliRunner

from kittiwake.cli.main import cli
from kittiwake.config import StaticConfig
from kittiwake.config.limits import LimitsConfig, LoginLimits

STATIC = """
hostname = "mail.example.org"
data_dir = "data"
[listeners.internal]
ips = ["127.0.0.1"]
submission = { enabled = true, port = 15870 }
"""


def test_describe_static_documents_every_limit_with_its_default() -> None:
    result = CliRunner().invoke(cli, ["config", "describe-static"])
    assert result.exit_code == 0, result.output
    described = tomllib.loads(result.output)
    assert described["limits"] == LimitsConfig().model_dump()
    for section, model in (("[limits]", LimitsConfig), ("[limits.login]", LoginLimits)):
        assert section in result.output
        for name, field in model.model_fields.items():
            assert field.description, name
    assert "max_connections_per_ip = 20" in result.output
    assert "network_max_failures = 30" in result.output


def test_limits_are_read_from_kittiwake_conf(tmp_path: Path) -> None:
    (tmp_path / "kittiwake.conf").write_text(STATIC + """
[limits]
max_connections = 50
listen_backlog = 300
[limits.login]
ip_max_failures = 4
trust_days = 7
""")
    (tmp_path / "domains.conf").write_text("")
    from kittiwake.config import load

    limits = load(tmp_path).static.limits
    assert (limits.max_connections, limits.max_connections_per_ip) == (50, 20)
    assert (limits.listen_backlog, limits.login.ip_max_failures) == (300, 4)
    assert StaticConfig.model_fields["limits"].description


def config_test(tmp_path: Path, login: str) -> list[str]:
    (tmp_path / "kittiwake.conf").write_text(STATIC + "[limits.login]\n" + login)
    (tmp_path / "domains.conf").write_text("")
    result = CliRunner().invoke(cli, ["--config", str(tmp_path), "config", "test"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    return result.output.strip().splitlines()


def test_config_test_reports_bad_login_limits_in_one_line(tmp_path: Path) -> None:
    lines = config_test(tmp_path, "max_delay_seconds = -1\n")
    assert any("kittiwake.conf: limits.login.max_delay_seconds: Input should be greater than"
               " or equal to 0" in line for line in lines), lines
    lines = config_test(tmp_path, "ip_failures_before_delay = 20\nip_max_failures = 10\n")
    assert any("kittiwake.conf: limits.login:" in line and "ip_failures_before_delay (20) is "
               "more than ip_max_failures (10)" in line for line in lines), lines


def test_smtp_rates_are_configurable_and_checked(tmp_path: Path) -> None:
    (tmp_path / "kittiwake.conf").write_text(STATIC + """
[limits]
smtp_connections_per_minute = [1000, 5000, 20000]
""")
    (tmp_path / "domains.conf").write_text("")
    from kittiwake.config import load
    from kittiwake.server.app import Server

    config = load(tmp_path)
    assert config.static.limits.smtp_connections_per_minute == [1000, 5000, 20000]
    server = Server(config)
    ctx = server._smtp_context(config.static.listeners["internal"])
    assert ctx.limits.connections_per_minute == (1000, 5000, 20000)
    assert ctx.limits.messages_per_minute == (60, 300, 1500)
    server.store.close()
    (tmp_path / "kittiwake.conf").write_text(STATIC + """
[limits]
smtp_messages_per_minute = [300, 60, 1500]
""")
    result = CliRunner().invoke(cli, ["--config", str(tmp_path), "config", "test"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "smtp_messages_per_minute: [300, 60, 1500]: expected three positive numbers" \
        in result.output, result.output


def test_imap_fetch_cache_memory_is_configurable_and_checked(tmp_path: Path) -> None:
    """limits.imap_fetch_cache_mib bounds the FETCH caches of the IMAP server (two thirds
    facts, one third HEADER.FIELDS answers); a bad value is one line of config test."""
    from kittiwake.config import load
    from kittiwake.imapserver import fetchcache
    from kittiwake.server.app import Server

    (tmp_path / "kittiwake.conf").write_text(STATIC.replace(
        "submission = { enabled = true, port = 15870 }",
        "imap = { enabled = true, port = 15143 }") + "[limits]\nimap_fetch_cache_mib = 12\n")
    (tmp_path / "domains.conf").write_text("")
    config = load(tmp_path)
    server = Server(config)
    try:
        server._imap_context(config.static.listeners["internal"])
        assert fetchcache.FACTS.max_bytes == 8 * 1024 * 1024
        assert fetchcache.FIELDS.max_bytes == 4 * 1024 * 1024
    finally:
        server.store.close()
        fetchcache.set_memory(fetchcache.DEFAULT_MEMORY)
    for bad, said in (("-1", "Input should be greater than or equal to 0"),
                      ('"lots"', "expected an integer")):
        (tmp_path / "kittiwake.conf").write_text(
            STATIC + f"[limits]\nimap_fetch_cache_mib = {bad}\n")
        result = CliRunner().invoke(cli, ["--config", str(tmp_path), "config", "test"])
        assert result.exit_code == 1 and "Traceback" not in result.output
        lines = [x for x in result.output.splitlines() if "imap_fetch_cache_mib" in x]
        assert len(lines) == 1 and "kittiwake.conf: limits.imap_fetch_cache_mib: " in lines[0] \
            and said in lines[0], result.output
