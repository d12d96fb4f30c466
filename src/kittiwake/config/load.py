"""Reading, validating and writing the two config files.

Every problem names the file, the field path and what was expected, e.g.
``config/domains.conf: accounts.alice.domain: domain 'exmaple.org' is not in
domains (known: example.org)``. :class:`ConfigError` carries all problems found.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import tomli_w
from pydantic import BaseModel, ValidationError

from kittiwake.config.domains import DomainsConfig
from kittiwake.config.static import StaticConfig
from kittiwake.config.transports import check_routes, check_transport_files

STATIC_FILE = "kittiwake.conf"
DOMAINS_FILE = "domains.conf"

M = TypeVar("M", bound=BaseModel)


class ConfigError(Exception):
    """The configuration has problems; ``problems`` lists each as one line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class Config:
    """Both config files, loaded, with resolved paths."""

    config_dir: Path
    static: StaticConfig
    domains: DomainsConfig

    @property
    def data_dir(self) -> Path:
        return (self.config_dir / self.static.data_dir).resolve()

    def path(self, relative: str) -> Path:
        """A path from the config, relative to the config directory."""
        return (self.config_dir / relative).resolve()


def _location(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
            continue
        text = str(item)
        if not text.replace("_", "").replace("-", "").isalnum():
            text = f'"{text}"'
        parts.append(("." if parts else "") + text)
    return "".join(parts)


def format_validation_error(file: str, error: ValidationError) -> list[str]:
    """One line per pydantic error: ``file: field.path: message (got VALUE)``."""
    problems = []
    for item in error.errors(include_url=False):
        # Drop pydantic's internal markers from the location (e.g. function-after[...]).
        loc = tuple(p for p in item["loc"] if not str(p).startswith(("function-", "json-")))
        message = item["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, "):]
        if item["type"] == "extra_forbidden":
            message = "unknown field (see `kittiwake config describe-static` / `describe-domains`)"
        where = _location(loc)
        line = f"{file}: {where}: {message}" if where else f"{file}: {message}"
        if item["type"] not in ("extra_forbidden", "missing", "value_error") and "input" in item:
            shown = repr(item["input"])
            if len(shown) < 60:
                line += f" (got {shown})"
        problems.append(line)
    return problems


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; ConfigError with the file and position on syntax errors."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found (see `kittiwake config describe-static`"
                           " for an annotated example)"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: TOML syntax error: {exc}"]) from None


def validate(model: type[M], data: dict[str, Any], file: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(file, exc)) from None


def load_static(config_dir: str | Path) -> StaticConfig:
    path = Path(config_dir) / STATIC_FILE
    return validate(StaticConfig, read_toml(path), str(path))


def load_domains(config_dir: str | Path) -> DomainsConfig:
    path = Path(config_dir) / DOMAINS_FILE
    if not path.exists():
        return DomainsConfig()
    return validate(DomainsConfig, read_toml(path), str(path))


def load(config_dir: str | Path) -> Config:
    """Load and check both files; ConfigError lists every problem in both."""
    directory = Path(config_dir)
    problems: list[str] = []
    static = domains = None
    try:
        static = load_static(directory)
    except ConfigError as exc:
        problems.extend(exc.problems)
    try:
        domains = load_domains(directory)
    except ConfigError as exc:
        problems.extend(exc.problems)
    if static is not None and domains is not None:
        problems.extend(check_files(directory, static, domains))
        problems.extend(f"{directory / DOMAINS_FILE}: {problem}"
                        for problem in check_routes(static, domains))
    if problems:
        raise ConfigError(problems)
    assert static is not None and domains is not None
    return Config(directory.resolve(), static, domains)


def check_files(directory: Path, static: StaticConfig, domains: DomainsConfig) -> list[str]:
    """Problems with files the config points at (certificates, DKIM keys)."""
    problems = [f"{directory / STATIC_FILE}: {problem}"
                for problem in check_transport_files(directory, static)]
    for name, listener in static.listeners.items():
        if listener.tls:
            for i, cert in enumerate(listener.tls.certificates):
                for field in ("cert_file", "key_file"):
                    target = directory / getattr(cert, field)
                    if not target.is_file():
                        problems.append(f"{directory / STATIC_FILE}: listeners.{name}.tls."
                                        f"certificates[{i}].{field}: no file {target}")
    for dname, domain in domains.domains.items():
        for sel, selector in domain.dkim.selectors.items():
            target = directory / selector.private_key_file
            if not target.is_file():
                problems.append(f"{directory / DOMAINS_FILE}: domains.{dname}.dkim.selectors."
                                f"{sel}.private_key_file: no file {target}")
    return problems


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write a file so readers see the old or the new content, never a mix; fsynced."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def to_toml(model: BaseModel) -> bytes:
    """TOML text of a model, leaving out fields at their defaults."""
    data = model.model_dump(mode="json", exclude_defaults=True)
    return tomli_w.dumps(data).encode("utf-8")


def write_domains(config_dir: str | Path, domains: DomainsConfig) -> None:
    """Validate and atomically replace domains.conf; the running server reloads it."""
    path = Path(config_dir) / DOMAINS_FILE
    text = to_toml(domains)
    # Round-trip check: never write a file we could not read back.
    validate(DomainsConfig, tomllib.loads(text.decode("utf-8")), str(path))
    atomic_write(path, text)


def write_static(config_dir: str | Path, static: StaticConfig) -> None:
    path = Path(config_dir) / STATIC_FILE
    atomic_write(path, to_toml(static))
