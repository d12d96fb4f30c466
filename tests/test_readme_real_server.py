"""The README's "Running a real server" commands, run literally, in a fresh directory.

The commands are read from README.md (its indented command lines in that
section), so the README and this test cannot drift apart. `kittiwake serve`
runs in the background until the commands after it have run; then it gets
SIGTERM and must stop cleanly. Interactive input (the password) comes on stdin.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner
from tests.integration.loopback import free_port

from kittiwake.cli.main import cli

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Running a real server"
PASSWORD = "correct horse battery staple\n"


def readme_commands() -> list[str]:
    """The command lines of the section, in order (indented code, comments kept)."""
    text = README.read_text()
    start = text.index(SECTION + "\n") + len(SECTION)
    rest = text[start:]
    end = min(i for i in (rest.find("\n## "), rest.find("\n### "), len(rest)) if i >= 0)
    return [line[4:] for line in rest[:end].splitlines()
            if line.startswith("    ") and line.strip()]


def _free_port() -> int:
    return free_port()


def test_readme_section_has_the_commands() -> None:
    commands = readme_commands()
    assert commands[0] == "mkdir -p config"
    assert any(c.startswith("kittiwake serve") for c in commands)


def test_readme_commands_run_as_written(tmp_path: Path) -> None:
    bindir = Path(sys.executable).parent
    assert (bindir / "kittiwake").exists(), f"no kittiwake command in {bindir}"
    env = {**os.environ, "PATH": f"{bindir}:{os.environ.get('PATH', '')}",
           # No DNS from the test machine: a resolver that does not answer.
           "KITTIWAKE_DNS": f"127.0.0.1:{_free_port()}"}
    env.pop("KITTIWAKE_CONFIG", None)
    server: subprocess.Popen[bytes] | None = None
    log = tmp_path / "serve.log"
    try:
        for command in readme_commands():
            if command.startswith("kittiwake serve"):
                with open(log, "wb") as log_file:
                    # exec: SIGTERM goes to kittiwake itself, not to a shell around it.
                    server = subprocess.Popen(["bash", "-c", "exec " + command], cwd=tmp_path,
                                              env=env, stdout=subprocess.DEVNULL,
                                              stderr=log_file)
                deadline = time.monotonic() + 30
                while "kittiwake started" not in log.read_text():
                    assert server.poll() is None, f"serve exited: {log.read_text()}"
                    assert time.monotonic() < deadline, f"serve did not start: {log.read_text()}"
                    time.sleep(0.05)
                continue
            done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env,
                                  input=PASSWORD, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, f"{command!r} failed:\n{done.stdout}{done.stderr}"
            if command.startswith("kittiwake config test"):
                assert done.stdout.startswith("config OK"), done.stdout
        assert server is not None, "the README starts no server"
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=15) == 0, log.read_text()
        assert "kittiwake stopped" in log.read_text()
    finally:
        if server is not None and server.poll() is None:
            server.kill()
            server.wait()


def test_both_annotated_examples_pass_config_test_as_printed(tmp_path: Path) -> None:
    runner = CliRunner()
    for command, name in (("describe-static", "kittiwake.conf"),
                          ("describe-domains", "domains.conf")):
        result = runner.invoke(cli, ["config", command])
        assert result.exit_code == 0
        (tmp_path / name).write_text(result.output)
    result = runner.invoke(cli, ["--config", str(tmp_path), "config", "test"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"config OK: {tmp_path}: 1 listeners, 1 domains,"
                                    " 1 accounts, 1 aliases")
