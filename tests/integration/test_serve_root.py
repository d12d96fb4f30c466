"""``kittiwake serve`` started as root: binds low ports, then runs as ``user`` (needs root).

CI runs as root; anywhere else these tests fail saying so (they are not skipped).
The interpreter of the test run may live where the unprivileged user cannot read
(pyenv under /root, mode 0700): the server then runs in a mount namespace
(``unshare -m``) in which that directory is traversable, so that what is tested
is kittiwake's privilege drop, not the test machine's home directory modes. A
checkout in a directory others cannot traverse (``mktemp -d`` makes 0700 ones) is
opened to them (o+x) for the test and closed again after.
"""

from __future__ import annotations

import os
import pwd
import random
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.server.tls_helpers import KITTIWAKE, PKI, nxdomain_resolver

from kittiwake.server.privileges import ALLOW_ROOT_ENV

USER = "nobody"


def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("this test needs root: it checks that serve started as root binds ports"
                    " below 1024 and then runs as an unprivileged user (CI runs as root)")


def _low_ports(n: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < n:
        port = random.randint(600, 1000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        if port not in ports:
            ports.append(port)
    return ports


def _hidden_ancestor(path: Path) -> tuple[Path, Path] | None:
    """(first ancestor others cannot traverse, its child on the way to ``path``) or None."""
    parts = path.resolve().parts
    for i in range(1, len(parts)):
        directory = Path(*parts[:i])
        if not directory.stat().st_mode & stat.S_IXOTH:
            return directory, Path(*parts[:i + 1])
    return None


def _command(base: Path, args: list[str]) -> list[str]:
    hidden = _hidden_ancestor(Path(sys.base_prefix))
    if hidden is None:
        return args
    directory, child = hidden
    holder = base / "interpreter"
    holder.mkdir()
    script = ('set -e; mount --bind "$1" "$2"; mount -t tmpfs -o mode=0755 tmpfs "$3";'
              ' mkdir -p "$1"; mount --bind "$2" "$1"; shift 3; exec "$@"')
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
            str(child), str(holder), str(directory), *args]


def _hidden_checkout_dirs() -> list[Path]:
    """Directories on the way to the checkout and its venv that others cannot traverse
    (the interpreter's own hidden directory is handled by :func:`_command`)."""
    import kittiwake

    interpreter = _hidden_ancestor(Path(sys.base_prefix))
    out: list[Path] = []
    for target in (Path(kittiwake.__file__), Path(sys.prefix)):
        parts = target.resolve().parts
        for i in range(1, len(parts)):
            directory = Path(*parts[:i])
            if interpreter is not None and directory == interpreter[0]:
                break
            if not directory.stat().st_mode & stat.S_IXOTH and directory not in out:
                out.append(directory)
    return out


@pytest.fixture
def base() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="kittiwake-root-", dir="/tmp"))
    path.chmod(0o755)
    opened = [(d, d.stat().st_mode) for d in _hidden_checkout_dirs()]
    for directory, mode in opened:
        directory.chmod(mode | stat.S_IXOTH)
    try:
        yield path
    finally:
        for directory, mode in opened:
            directory.chmod(mode)
        shutil.rmtree(path, ignore_errors=True)


def _write_config(base: Path, user: str, ports: list[int], resolver: str) -> Path:
    config = base / "config"
    config.mkdir(exist_ok=True)
    ca = PKI.create(config / "tls")
    cert = ca.issue(["localhost"], "ecdsa")
    cert.key_file.chmod(0o644)  # as a careless copy would leave it: serve fixes it
    (config / "domains.conf").write_text(
        '[domains."example.org"]\n[accounts.alice]\ndomain = "example.org"\n'
        '[accounts.alice.destinations."alice@example.org"]\n')
    (config / "kittiwake.conf").write_text(f"""
hostname = "localhost"
data_dir = "../data"
user = "{user}"
shutdown_grace_seconds = 2
[dns]
resolvers = ["{resolver}"]
[listeners.public]
ips = ["127.0.0.1"]
smtp = {{ enabled = true, port = {ports[0]} }}
submissions = {{ enabled = true, port = {ports[1]} }}
[[listeners.public.tls.certificates]]
cert_file = "{cert.cert_file}"
key_file = "{cert.key_file}"
""")
    return cert.key_file


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop(ALLOW_ROOT_ENV, None)
    return env


def _start(base: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            _command(base, [*KITTIWAKE, "--config", str(base / "config"), "serve"]),
            stdout=subprocess.DEVNULL, stderr=out, env=_env())
    deadline = time.monotonic() + 60
    while "kittiwake started" not in log.read_text(errors="replace"):
        assert proc.poll() is None, f"serve exited {proc.returncode}:\n{log.read_text()}"
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    return proc


def _ids(pid: int) -> dict[str, list[int]]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    out = {}
    for line in status:
        key, _, value = line.partition(":")
        if key in ("Uid", "Gid", "Groups"):
            out[key] = [int(v) for v in value.split()]
    return out


def _smtp_message(port: int, subject: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        data = b""
        for line in (b"EHLO client.example.net", b"MAIL FROM:<bob@example.net>",
                     b"RCPT TO:<alice@example.org>", b"DATA",
                     f"Subject: {subject}\r\n\r\nhello\r\n.".encode(), b"QUIT"):
            sock.sendall(line + b"\r\n")
        while chunk := sock.recv(4096):
            data += chunk
        return data


def test_serve_as_root_without_user_refuses_in_one_line(base: Path) -> None:
    _require_root()
    with nxdomain_resolver() as resolver:
        _write_config(base, "", _low_ports(2), resolver)
        done = subprocess.run([*KITTIWAKE, "--config", str(base / "config"), "serve"],
                              capture_output=True, text=True, env=_env(), timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith("kittiwake: kittiwake.conf: user: empty"), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr


def test_serve_as_root_drops_to_user_and_restarts_on_its_low_ports(base: Path) -> None:
    _require_root()
    entry = pwd.getpwnam(USER)
    stray = base / "data" / "stray.txt"
    stray.parent.mkdir()
    stray.write_text("left world-readable by an earlier run")
    stray.chmod(0o644)
    log = base / "serve.log"
    with nxdomain_resolver() as resolver:
        ports = _low_ports(2)
        key_file = _write_config(base, USER, ports, resolver)
        proc = _start(base, log)
        try:
            pid = proc.pid  # unshare and sh exec into serve: the same process
            ids = _ids(pid)
            assert ids["Uid"] == [entry.pw_uid] * 4, ids
            assert ids["Gid"] == [entry.pw_gid] * 4, ids
            assert ids["Groups"] == [entry.pw_gid], ids
            assert f'msg="running as" user={USER}' in log.read_text()
            assert b"250 2.0.0 message accepted" in _smtp_message(ports[0], "as nobody")

            key = key_file.stat()
            assert (key.st_uid, stat.S_IMODE(key.st_mode)) == (entry.pw_uid, 0o600)
            for path in [base / "data", *(base / "data").rglob("*")]:
                try:
                    st = path.lstat()
                except FileNotFoundError:  # a spool name unlinked meanwhile (in the background)
                    continue
                assert st.st_uid == entry.pw_uid, f"{path} owned by {st.st_uid}"
                if not stat.S_ISLNK(st.st_mode):
                    assert not st.st_mode & 0o007, f"{path} is {oct(st.st_mode)}"

            # Restart: the new program runs as nobody, which could not bind ports < 1024;
            # it serves on them because it took over the listening sockets.
            restart = subprocess.run([*KITTIWAKE, "--config", str(base / "config"), "restart"],
                                     capture_output=True, text=True, timeout=60)
            assert restart.returncode == 0, restart.stderr + log.read_text()
            assert _ids(pid)["Uid"] == [entry.pw_uid] * 4
            assert b"250 2.0.0 message accepted" in _smtp_message(ports[0], "after restart")
            with socket.create_connection(("127.0.0.1", ports[1]), timeout=10) as raw:
                context = ssl.create_default_context(cafile=str(base / "config/tls/ca.pem"))
                with context.wrap_socket(raw, server_hostname="localhost") as tls:
                    assert tls.recv(100).startswith(b"220 ")

            stop = subprocess.run([*KITTIWAKE, "--config", str(base / "config"), "stop"],
                                  capture_output=True, text=True, timeout=60)
            assert stop.returncode == 0, stop.stderr
            assert proc.wait(timeout=10) == 0
            text = log.read_text()
            assert text.count("kittiwake started") == 2 and "Traceback" not in text, text
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_an_installation_the_user_cannot_read_is_one_line(base: Path) -> None:
    """After dropping to ``user``, serve checks that it can still read its own code:
    a checkout in a directory only root may enter stops it with one line naming the
    directory, instead of an import error later."""
    _require_root()
    closed = base / "home"
    package = closed / "checkout" / "kittiwake"
    package.mkdir(parents=True)
    closed.chmod(0o700)
    entry = pwd.getpwnam(USER)
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from kittiwake.server.privileges import unreadable_install\n"
        f"os.setgroups([]); os.setgid({entry.pw_gid}); os.setuid({entry.pw_uid})\n"
        f"print(unreadable_install({USER!r}, [Path(sys.argv[1]), Path(sys.argv[2])]))\n")
    done = subprocess.run([sys.executable, "-c", script, str(base), str(package)],
                          capture_output=True, text=True, env=_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"user {USER!r} cannot read the kittiwake installation at {package}: {closed}"
        f" (mode 0700) does not let it in; make it readable (chmod o+rx {closed}) or"
        f" install kittiwake where {USER!r} can read it")
