"""Running as an unprivileged user: ``kittiwake serve`` started as root.

As root, serve binds its listening sockets first (ports below 1024 need
root), gives the data and config files to the configured ``user``, then
drops to it for good (setgroups, setgid, setuid, in that order; a
setuid(0) afterwards must fail). Everything after that (opening databases,
loading certificates, the control socket) runs as the user.

File ownership after :func:`prepare_files`:

- data directory: everything owned by user:group; directories 0750, files
  without any world permission (umask 027 for new ones);
- config directory: kittiwake.conf, domains.conf and other config files
  stay owned by their owner, group is the user's group, readable by the group
  and not by others; private keys and password files (PEM "PRIVATE KEY", or
  a name ending in .key, .password or .secret) are owned by the user, 0600.

Refusal: started as root with ``user`` empty, serve stops with one line
unless ``KITTIWAKE_ALLOW_ROOT=1`` says running as root is intended (e.g.
a container whose only user is root; the test suite). Not started as root,
serve runs as whoever started it (there is nothing to drop). ``localserve``
is a developer tool: it never changes user.
"""

from __future__ import annotations

import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

ALLOW_ROOT_ENV = "KITTIWAKE_ALLOW_ROOT"
UMASK = 0o027
_SECRET_SUFFIXES = (".key", ".password", ".secret")


class PrivilegeError(Exception):
    """Cannot run as the configured user; the message says what to change."""


@dataclass(frozen=True)
class RunAs:
    name: str
    uid: int
    gid: int


def run_as(user: str, euid: int | None = None,
           environ: dict[str, str] | None = None) -> RunAs | None:
    """The user to drop to, or None to stay as we are; PrivilegeError when refused."""
    euid = os.geteuid() if euid is None else euid
    env = os.environ if environ is None else environ
    if euid != 0:
        return None
    if not user:
        if env.get(ALLOW_ROOT_ENV) == "1":
            return None
        raise PrivilegeError(
            "kittiwake.conf: user: empty, and serve was started as root: set user to an"
            " unprivileged account (e.g. user = \"kittiwake\"; serve binds its ports as root,"
            f" then runs as that user), or set {ALLOW_ROOT_ENV}=1 to run as root on purpose")
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise PrivilegeError(f"kittiwake.conf: user: no user {user!r} on this system"
                             f" (create it, e.g. useradd --system {user})") from None
    if entry.pw_uid == 0:
        raise PrivilegeError(f"kittiwake.conf: user: {user!r} is root; name an unprivileged"
                             f" user, or leave user empty and set {ALLOW_ROOT_ENV}=1")
    return RunAs(user, entry.pw_uid, entry.pw_gid)


def _is_secret(path: Path) -> bool:
    if path.name.endswith(_SECRET_SUFFIXES):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(65536)
    except OSError:
        return False
    return b"PRIVATE KEY-----" in head


def _fix(path: Path, st: os.stat_result, uid: int, gid: int, mode: int) -> None:
    if (st.st_uid, st.st_gid) != (uid, gid):
        os.lchown(path, uid, gid)
    if stat.S_IMODE(st.st_mode) != mode:
        os.chmod(path, mode)


def _walk(top: Path, skip: Path | None = None) -> list[tuple[Path, os.stat_result]]:
    out: list[tuple[Path, os.stat_result]] = []
    for root, dirs, files in os.walk(top):
        base = Path(root)
        if skip is not None:
            dirs[:] = [d for d in dirs if (base / d).resolve() != skip]
        for name in [*dirs, *files]:
            path = base / name
            out.append((path, os.lstat(path)))
    return out


def prepare_files(data_dir: Path, config_dir: Path, user: RunAs) -> None:
    """Give the data directory to ``user`` and the config directory to its group (see above)."""
    data_dir = data_dir.resolve()
    config_dir = config_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    _fix(data_dir, data_dir.stat(), user.uid, user.gid, 0o750)
    for path, st in _walk(data_dir):
        if stat.S_ISLNK(st.st_mode):
            if st.st_uid != user.uid:
                os.lchown(path, user.uid, user.gid)
            continue
        mode = 0o750 if stat.S_ISDIR(st.st_mode) else stat.S_IMODE(st.st_mode) & 0o770
        _fix(path, st, user.uid, user.gid, mode)
    inside = data_dir if data_dir.is_relative_to(config_dir) else None
    st = config_dir.stat()
    _fix(config_dir, st, st.st_uid, user.gid, (stat.S_IMODE(st.st_mode) & 0o770) | 0o750)
    for path, st in _walk(config_dir, skip=inside):
        if stat.S_ISLNK(st.st_mode):
            continue
        if stat.S_ISDIR(st.st_mode):
            _fix(path, st, st.st_uid, user.gid, (stat.S_IMODE(st.st_mode) & 0o770) | 0o750)
        elif _is_secret(path):
            _fix(path, st, user.uid, user.gid, 0o600)
        else:
            _fix(path, st, st.st_uid, user.gid, (stat.S_IMODE(st.st_mode) & 0o760) | 0o040)


def drop(user: RunAs) -> None:
    """Become ``user`` for good; PrivilegeError if root could be regained."""
    os.setgroups([user.gid])
    os.setgid(user.gid)
    os.setuid(user.uid)
    if os.getuid() != user.uid or os.geteuid() != user.uid or os.getegid() != user.gid:
        raise PrivilegeError(f"could not become user {user.name!r}")
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:
        raise PrivilegeError(f"still able to become root after dropping to {user.name!r}")
    os.environ["HOME"] = pwd.getpwuid(user.uid).pw_dir
    os.environ["USER"] = os.environ["LOGNAME"] = user.name
