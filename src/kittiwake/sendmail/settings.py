"""The submission configuration of ``kittiwake sendmail``: one small TOML file.

Read from ``$KITTIWAKE_SUBMIT_CONF`` or ``/etc/kittiwake-submit.conf``::

    host = "mail.example.org"
    port = 587                    # default: 587, or 465 with tls = "tls"
    tls = "starttls"              # "starttls" (RFC 3207), "tls" (RFC 8314), "none"
    username = "alice@example.org"
    password_file = "/etc/kittiwake-submit.password"   # or: password = "..."
    from = "alice@example.org"    # envelope sender when -f is not given
    failures_dir = "~/.kittiwake-sendmail-failures"
    ca_file = "/etc/ssl/private-ca.pem"   # optional: extra trusted CA certificates
    timeout = 60                  # optional: seconds per SMTP step

``tls = "none"`` sends the password in the clear and is refused unless the
host is the local machine (``localhost``, 127.0.0.0/8, ``::1``).
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_CONF", "DEFAULT_FAILURES_DIR", "SettingsError", "SubmitSettings",
           "conf_path", "default_failures_dir", "load_settings"]

DEFAULT_CONF = "/etc/kittiwake-submit.conf"
DEFAULT_FAILURES_DIR = "~/.kittiwake-sendmail-failures"
TLS_MODES = ("starttls", "tls", "none")
_KEYS = {"host", "port", "tls", "username", "password", "password_file", "from",
         "failures_dir", "ca_file", "timeout"}


class SettingsError(ValueError):
    """The configuration file is missing or wrong; the message says which field."""


@dataclass(frozen=True)
class SubmitSettings:
    host: str
    port: int
    tls: str  # one of TLS_MODES
    username: str | None
    password: str | None
    sender: str | None  # the "from" key
    failures_dir: Path
    ca_file: Path | None
    timeout: float
    path: Path  # the file these came from, for messages


def conf_path() -> Path:
    """The configuration file: ``$KITTIWAKE_SUBMIT_CONF`` or :data:`DEFAULT_CONF`."""
    return Path(os.environ.get("KITTIWAKE_SUBMIT_CONF") or DEFAULT_CONF)


def is_local_host(host: str) -> bool:
    if host.rstrip(".").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _str(doc: dict[str, Any], key: str, path: Path) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(f"{path}: {key}: expected a non-empty string, got {value!r}")
    return value.strip()


def _resolve(path: Path, value: str) -> Path:
    """``~`` expanded; relative paths are relative to the configuration file."""
    p = Path(value).expanduser()
    return p if p.is_absolute() else path.parent / p


def default_failures_dir() -> Path:
    """The failures directory to use when the configuration cannot be read."""
    return Path(DEFAULT_FAILURES_DIR).expanduser()


def load_settings(path: Path | None = None) -> SubmitSettings:
    """Read and check the configuration file. Raises SettingsError with one line."""
    path = path or conf_path()
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError:
        raise SettingsError(f"{path}: no such file (set KITTIWAKE_SUBMIT_CONF or create it;"
                            " see `kittiwake sendmail --help`)") from None
    except OSError as exc:
        raise SettingsError(f"{path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(doc) - _KEYS)
    if unknown:
        raise SettingsError(f"{path}: unknown setting {unknown[0]!r} (known: "
                            f"{', '.join(sorted(_KEYS))})")
    host = _str(doc, "host", path)
    if host is None:
        raise SettingsError(f"{path}: host: missing (the submission server's name)")
    tls = doc.get("tls", "starttls")
    if tls not in TLS_MODES:
        raise SettingsError(f"{path}: tls: expected one of {', '.join(TLS_MODES)}, got {tls!r}")
    if tls == "none" and not is_local_host(host):
        raise SettingsError(f"{path}: tls: \"none\" is only allowed for a server on this"
                            f" machine (localhost), not {host}")
    port = doc.get("port", 465 if tls == "tls" else 587)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise SettingsError(f"{path}: port: expected a number from 1 to 65535, got {port!r}")
    timeout = doc.get("timeout", 60)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise SettingsError(f"{path}: timeout: expected a positive number of seconds,"
                            f" got {timeout!r}")
    username = _str(doc, "username", path)
    password = doc.get("password")
    if password is not None and not isinstance(password, str):
        raise SettingsError(f"{path}: password: expected a string")
    password_file = _str(doc, "password_file", path)
    if password is not None and password_file is not None:
        raise SettingsError(f"{path}: give either password or password_file, not both")
    if password_file is not None:
        pw_path = _resolve(path, password_file)
        try:
            password = pw_path.read_text("utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or str(exc)
            raise SettingsError(f"{path}: password_file: {pw_path}: {why}") from None
    if username is not None and password is None:
        raise SettingsError(f"{path}: username is set but neither password nor password_file")
    if password is not None and username is None:
        raise SettingsError(f"{path}: a password is set but no username")
    failures = _str(doc, "failures_dir", path) or DEFAULT_FAILURES_DIR
    ca_file = _str(doc, "ca_file", path)
    return SubmitSettings(
        host=host, port=port, tls=tls, username=username, password=password,
        sender=_str(doc, "from", path), failures_dir=_resolve(path, failures),
        ca_file=_resolve(path, ca_file) if ca_file else None, timeout=float(timeout),
        path=path)
