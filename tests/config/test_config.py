"""Config files: validation messages name file, field path and expectation."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from kittiwake.cli.main import cli
from kittiwake.config import (
    ConfigError,
    DomainsConfig,
    StaticConfig,
    load,
    load_domains,
    write_domains,
)
from kittiwake.config.describe import describe
from kittiwake.config.reload import DomainsWatcher

STATIC = """
hostname = "mail.example.org"
data_dir = "data"
[listeners.internal]
ips = ["127.0.0.1"]
metrics = { enabled = true, port = 18010 }
"""

DOMAINS = """
[domains."example.org"]
[accounts.alice]
domain = "example.org"
[accounts.alice.destinations."alice@example.org"]
mailbox = "Inbox"
"""


def write(dir_: Path, static: str = STATIC, domains: str = DOMAINS) -> Path:
    (dir_ / "kittiwake.conf").write_text(static)
    (dir_ / "domains.conf").write_text(domains)
    return dir_


def problems(dir_: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(dir_)
    return info.value.problems


def test_valid_config_loads_with_resolved_data_dir(tmp_path: Path) -> None:
    config = load(write(tmp_path))
    assert config.static.hostname == "mail.example.org"
    assert config.data_dir == (tmp_path / "data").resolve()
    assert config.domains.accounts["alice"].destinations["alice@example.org"].mailbox == "Inbox"


def test_unknown_field_names_file_and_path(tmp_path: Path) -> None:
    write(tmp_path, STATIC + "\n[log]\nlevle = 'debug'\n")
    [line] = problems(tmp_path)
    assert line.startswith(f"{tmp_path / 'kittiwake.conf'}: log.levle: unknown field")


def test_bad_values_list_every_problem(tmp_path: Path) -> None:
    static = STATIC.replace('ips = ["127.0.0.1"]', 'ips = ["127.0.0.300"]') + \
        '\n[log]\nlevel = "loud"\n'
    write(tmp_path, static, DOMAINS.replace('domain = "example.org"', 'domain = "exmaple.org"'))
    found = problems(tmp_path)
    assert any("listeners.internal.ips[0]: '127.0.0.300' is not an IP address" in p
               for p in found), found
    assert any("log.level: 'loud' is not a log level (known: error, warn" in p for p in found)
    assert any(p.startswith(str(tmp_path / "domains.conf")) and
               "accounts.alice.domain: domain 'exmaple.org' is not in domains (known: "
               "example.org)" in p for p in found), found


def test_missing_required_field(tmp_path: Path) -> None:
    write(tmp_path, 'data_dir = "data"\n')
    [line] = problems(tmp_path)
    assert line == f"{tmp_path / 'kittiwake.conf'}: hostname: Field required"


def test_toml_syntax_error_has_position(tmp_path: Path) -> None:
    write(tmp_path, 'hostname = "x\n')
    [line] = problems(tmp_path)
    assert "kittiwake.conf: TOML syntax error" in line and "line 1" in line


def test_port_clash_is_reported(tmp_path: Path) -> None:
    write(tmp_path, STATIC.replace("metrics = { enabled = true, port = 18010 }",
                                   "metrics = { enabled = true, port = 25 }\n"
                                   "smtp = { enabled = true }"))
    [line] = problems(tmp_path)
    assert "listeners.internal.metrics and listeners.internal.smtp both use 127.0.0.1 port 25" \
        in line


def test_dkim_key_file_must_exist(tmp_path: Path) -> None:
    domains = DOMAINS.replace('[domains."example.org"]', '''[domains."example.org"]
dkim = { selectors = { s1 = { private_key_file = "dkim/s1.pem" } }, sign = ["s1", "s2"] }''')
    write(tmp_path, STATIC, domains)
    found = problems(tmp_path)
    assert any("dkim.sign[1]: selector 's2' is not in dkim.selectors (known: s1)" in p
               for p in found), found


def test_idna_domains_are_stored_as_a_labels(tmp_path: Path) -> None:
    write(tmp_path, STATIC, '[domains."bücher.example"]\n')
    assert list(load(tmp_path).domains.domains) == ["xn--bcher-kva.example"]


@pytest.mark.parametrize("model", [StaticConfig, DomainsConfig])
def test_described_examples_are_valid_and_document_every_field(model) -> None:  # type: ignore[no-untyped-def]
    text = describe(model, "x")
    model.model_validate(tomllib.loads(text))
    for name, field in model.model_fields.items():
        assert field.description, f"{model.__name__}.{name} has no docstring"
        assert name in text


def test_cli_config_test_prints_each_problem_and_exits_1(tmp_path: Path) -> None:
    write(tmp_path, "bogus = 1\n" + STATIC, "[accounts.x]\ndomain = 'nowhere.example'\n")
    result = CliRunner().invoke(cli, ["--config", str(tmp_path), "config", "test"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert any("kittiwake.conf: bogus: unknown field" in line for line in lines)
    assert any("domains.conf: accounts.x.domain" in line for line in lines)
    assert lines[-1] == "kittiwake: 2 problems in the configuration"
    assert "Traceback" not in result.output


def test_cli_config_test_ok(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(write(tmp_path)), "config", "test"])
    assert result.exit_code == 0, result.output
    assert "config OK" in result.output and "1 accounts" in result.output


def test_write_domains_round_trips_and_watcher_reloads(tmp_path: Path) -> None:
    write(tmp_path)
    watcher = DomainsWatcher(tmp_path, load_domains(tmp_path))
    seen: list[DomainsConfig] = []
    watcher.subscribe(seen.append)
    assert not watcher.check()
    updated = load_domains(tmp_path).model_copy(deep=True)
    updated.accounts["alice"].full_name = "Alice Liddell"
    write_domains(tmp_path, updated)
    assert watcher.check()
    assert watcher.current.accounts["alice"].full_name == "Alice Liddell"
    assert seen and seen[-1].accounts["alice"].full_name == "Alice Liddell"
    # A broken file is not taken; the previous config stays.
    (tmp_path / "domains.conf").write_text("[accounts.bob]\ndomain = 'missing.example'\n")
    assert not watcher.check()
    assert "alice" in watcher.current.accounts


def test_reload_refuses_routes_to_unknown_transports(tmp_path: Path) -> None:
    write(tmp_path)
    from kittiwake.config import load_static

    watcher = DomainsWatcher(tmp_path, load_domains(tmp_path), static=load_static(tmp_path))
    (tmp_path / "domains.conf").write_text(DOMAINS + '\n[[routes]]\ntransport = "nope"\n')
    assert not watcher.check()
    assert watcher.current.routes == []
