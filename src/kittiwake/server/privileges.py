"""Running as an unprivileged user: ``kittiwake serve`` started as root.

As root, serve binds its listening sockets first (ports below 1024 need
root), gives the data and config files to the configured ``user``, then
drops to it for good (setgroups, setgid, setuid, in that order; a
setuid(0) afterwards must fail). Everything after that (opening databases,
loading certificates, the control socket) runs as the user.

File ownership after :func:`prepare_files`:

- data directory: everything owned by user:group; directories 0750, files
  without any world permission (umask 027 for new ones);
- config directory: only the files the configuration names are touched
  (never a whole tree: ``--config /etc`` must not regroup /etc).
  kittiwake.conf, domains.conf, certificates: owner unchanged, group the
  user's, group-readable, nothing for others; private keys and password
  files (``*key_file``, ``*key_files``, ``password_file`` fields): owned by
  the user, 0600; the config directory and the directories on the way to
  those files: the user's group may enter, others not. Files named outside
  the config directory are left alone: the user must be able to read them.

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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

ALLOW_ROOT_ENV = "KITTIWAKE_ALLOW_ROOT"
UMASK = 0o027
_SECRET_FIELDS = ("key_file", "key_files", "password_file")


class PrivilegeError(Exception):
    """Cannot run as the configured user; the message says what to change."""


@dataclass(frozen=True)
class RunAs:
    name: str
    uid: int
    gid: int


def run_as(user: str, euid: int | None = None,
           environ: Mapping[str, str] | None = None) -> RunAs | None:
    """The user to drop to, or None to stay as we are; PrivilegeError when refused."""
    euid = os.geteuid() if euid is None else euid
    env: Mapping[str, str] = os.environ if environ is None else environ
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


def _file_fields(value: object, name: str = "") -> Iterator[tuple[str, str]]:
    """(field name, path) of every ``*_file``/``*_files`` field in a config model."""
    if isinstance(value, BaseModel):
        for field_name in type(value).model_fields:
            yield from _file_fields(getattr(value, field_name), field_name)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _file_fields(item, name)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _file_fields(item, name)
    elif isinstance(value, str) and value and name.endswith(("_file", "_files")):
        yield name, value


def config_files(config_dir: Path, *models: BaseModel) -> list[tuple[Path, bool]]:
    """The files the config names, inside ``config_dir``, with whether each is a secret.

    Secrets are keys and passwords (fields ``*key_file``, ``*key_files``,
    ``password_file``); certificates and CA files are not. kittiwake.conf and
    domains.conf are included. Files outside the config directory are left as
    they are (serve then needs to be able to read them as its user).
    """
    config_dir = config_dir.resolve()
    out: dict[Path, bool] = {config_dir / "kittiwake.conf": False,
                             config_dir / "domains.conf": False}
    for model in models:
        for name, value in _file_fields(model):
            path = (config_dir / value).resolve()
            if path.is_relative_to(config_dir) and path.is_file():
                secret = name.endswith(_SECRET_FIELDS)
                out[path] = out.get(path, False) or secret
    return [(path, secret) for path, secret in out.items() if path.is_file()]


def _fix(path: Path, st: os.stat_result, uid: int, gid: int, mode: int) -> None:
    if (st.st_uid, st.st_gid) != (uid, gid):
        os.lchown(path, uid, gid)
    if stat.S_IMODE(st.st_mode) != mode:
        os.chmod(path, mode)


def prepare_files(data_dir: Path, config_dir: Path, user: RunAs,
                  files: list[tuple[Path, bool]]) -> None:
    """Give the data directory to ``user``, and ``files`` (from :func:`config_files`) to it
    (secrets) or its group (the rest); see the module docstring."""
    data_dir = data_dir.resolve()
    config_dir = config_dir.resolve()
    if len(data_dir.parts) < 3 or config_dir.is_relative_to(data_dir):
        raise PrivilegeError(f"kittiwake.conf: data_dir: {data_dir} is not a directory of its"
                             f" own; serve would give all of it to user {user.name!r}; use"
                             " e.g. /var/lib/kittiwake")
    data_dir.mkdir(parents=True, exist_ok=True)
    _fix(data_dir, data_dir.stat(), user.uid, user.gid, 0o750)
    for root, dirs, names in os.walk(data_dir):
        for name in [*dirs, *names]:
            path = Path(root) / name
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                if st.st_uid != user.uid:
                    os.lchown(path, user.uid, user.gid)
                continue
            mode = 0o750 if stat.S_ISDIR(st.st_mode) else stat.S_IMODE(st.st_mode) & 0o770
            _fix(path, st, user.uid, user.gid, mode)
    directories = {config_dir}
    for path, secret in files:
        st = path.stat()
        if secret:
            _fix(path, st, user.uid, user.gid, 0o600)
        else:
            _fix(path, st, st.st_uid, user.gid, (stat.S_IMODE(st.st_mode) & 0o760) | 0o040)
        directories.update(p for p in path.parents if p.is_relative_to(config_dir))
    for directory in directories:
        st = directory.stat()
        _fix(directory, st, st.st_uid, user.gid, (stat.S_IMODE(st.st_mode) & 0o770) | 0o050)


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
    problem = unreadable_install(user.name, install_directories())
    if problem:
        raise PrivilegeError(problem)


def install_directories() -> list[Path]:
    """Where the program's code is: kittiwake's package and the installed libraries
    (modules imported later, e.g. at the first ACME order, are read from there)."""
    import sys

    import pydantic

    import kittiwake

    return [Path(kittiwake.__file__).resolve().parent,
            Path(pydantic.__file__).resolve().parent.parent, Path(sys.prefix).resolve()]


def unreadable_install(user: str, directories: list[Path]) -> str:
    """A line saying which directory of the installation the current (dropped) user
    cannot read, or "" when it can read them all.

    Checked right after the drop so that a checkout or virtual environment that only
    root may enter (a home directory of mode 0700) stops serve with one line now,
    not with an import error at the first lazily loaded module hours later.
    """
    for directory in directories:
        if os.access(directory, os.R_OK | os.X_OK):
            continue
        blocking = directory
        for ancestor in reversed([directory, *directory.parents]):
            if not os.access(ancestor, os.R_OK | os.X_OK if ancestor == directory
                             else os.X_OK):
                blocking = ancestor
                break
        mode = stat.S_IMODE(blocking.stat().st_mode) if blocking.exists() else 0
        return (f"user {user!r} cannot read the kittiwake installation at {directory}:"
                f" {blocking} (mode {mode:04o}) does not let it in; make it readable"
                f" (chmod o+rx {blocking}) or install kittiwake where {user!r} can read it")
    return ""
