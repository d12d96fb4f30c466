"""``kittiwake dkim gen --out FILE``: the private key is never readable by others."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kittiwake.cli.main import cli
from kittiwake.dkim import load_private_key
from kittiwake.server.tls import make_self_signed


@pytest.fixture
def open_umask():
    """umask 0: what a careless login shell or container gives (files 0666 by default)."""
    old = os.umask(0)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_gen_out_creates_the_key_0600(tmp_path: Path, open_umask: None) -> None:
    out = tmp_path / "key.pem"
    result = CliRunner().invoke(cli, ["dkim", "gen", "ed25519", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr == f"private key written to {out} (mode 0600, readable only by you)\n"
    assert mode(out) == 0o600
    load_private_key(out.read_bytes())


def test_gen_out_does_not_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "key.pem"
    out.write_text("precious")
    result = CliRunner().invoke(cli, ["dkim", "gen", "ed25519", "--out", str(out)])
    assert result.exit_code == 1
    assert result.stderr == (f"kittiwake: --out {out}: file exists; not overwritten"
                             " (choose a new name)\n")
    assert out.read_text() == "precious"


def test_gen_to_a_readable_file_warns(tmp_path: Path) -> None:
    """`dkim gen > key.pem` with umask 022: the key works but the user is told to chmod."""
    out = tmp_path / "key.pem"
    with open(out, "wb") as f:
        os.chmod(out, 0o644)
        kittiwake = str(Path(sys.executable).parent / "kittiwake")
        proc = subprocess.run([kittiwake, "dkim", "gen", "ed25519"],
                              stdout=f, stderr=subprocess.PIPE, text=True, check=False)
    assert proc.returncode == 0
    load_private_key(out.read_bytes())
    assert proc.stderr == ("warning: the private key went to a file with mode 0644, readable"
                           " by others: chmod 600 it, or use --out FILE next time\n")


def test_gen_help_mentions_out() -> None:
    result = CliRunner().invoke(cli, ["dkim", "gen", "--help"])
    assert "--out" in result.stdout and "0600" in result.stdout


def test_self_signed_key_is_never_readable_by_others(
        tmp_path: Path, open_umask: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Created 0600 from the start: a process killed right after writing leaves no 0666 key.

    Path.chmod is made a no-op to stand for that interruption.
    """
    monkeypatch.setattr(Path, "chmod", lambda self, m: None)
    files = make_self_signed(tmp_path / "certs", ["localhost", "127.0.0.1"])
    assert mode(files.key_file) == 0o600
