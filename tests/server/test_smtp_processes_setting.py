"""``smtp_processes`` in kittiwake.conf: "auto" follows the cores, bad values are refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kittiwake.server.smtpworkers import PROCESSES_ENV, process_count

KITTIWAKE = [sys.executable, "-m", "kittiwake.cli.main"]


def test_auto_is_one_process_per_core_and_the_environment_overrides(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROCESSES_ENV, raising=False)
    assert process_count("auto", cores=1) == 1
    assert process_count("auto", cores=2) == 2
    assert process_count(3, cores=2) == 3
    monkeypatch.setenv(PROCESSES_ENV, "1")
    assert process_count("auto", cores=8) == 1
    monkeypatch.setenv(PROCESSES_ENV, "lots")
    assert process_count("auto", cores=2) == 2


@pytest.mark.parametrize("value", ['"many"', "0", "65", "true", "1.5"])
def test_config_test_refuses_a_bad_value_in_one_line(tmp_path: Path, value: str) -> None:
    (tmp_path / "kittiwake.conf").write_text(
        f'hostname = "mail.example.org"\nsmtp_processes = {value}\n')
    (tmp_path / "domains.conf").write_text("")
    done = subprocess.run([*KITTIWAKE, "--config", str(tmp_path), "config", "test"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    problems = [line for line in done.stderr.splitlines() if "smtp_processes" in line]
    assert len(problems) == 1, done.stderr
    assert 'expected "auto" or a number of processes from 1 to 64' in problems[0]


def test_describe_static_documents_the_setting() -> None:
    done = subprocess.run([*KITTIWAKE, "config", "describe-static"], capture_output=True,
                          text=True, timeout=60, check=True)
    assert "\nsmtp_processes = \"auto\"\n" in done.stdout
    assert "# type: 'auto' | int" in done.stdout


def test_spool_directories_of_workers_are_emptied_and_removed_at_start(tmp_path: Path) -> None:
    from kittiwake.server.smtpworkers import clean_worker_spools

    for name in ("smtp-1", "smtp-2"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "unacknowledged").write_bytes(b"never got a 250")
    (tmp_path / "other").mkdir()
    assert clean_worker_spools(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other"]
