"""Reading, validating and writing the two config files.

Every problem names the file, the field path and what was expected, e.g.
``config/domains.conf: accounts.alice.domain: domain 'exmaple.org' is not in
domains (known: example.org)``. :class:`ConfigError` carries all problems found.
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import tomli_w
from pydantic import BaseModel, ValidationError

from kittiwake.config.domains import DomainsConfig
from kittiwake.config.static import ACMEConfig, StaticConfig
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


# What a wrong TOML type means, in words (config models are strict: "25" is no port).
TYPE_MESSAGES = {
    "int_type": "expected an integer, without quotes or decimal point (e.g. 25)",
    "float_type": "expected a number (e.g. 5 or 2.5)",
    "bool_type": "expected true or false, without quotes",
    "string_type": "expected a string, in quotes",
    "list_type": "expected a list, e.g. [\"a\", \"b\"]",
    "dict_type": "expected a table",
    "model_type": "expected a table",
}


def format_validation_error(file: str, error: ValidationError) -> list[str]:
    """One line per pydantic error: ``file: field.path: message (got VALUE)``."""
    problems = []
    for item in error.errors(include_url=False):
        # Drop pydantic's internal markers from the location (e.g. function-after[...]).
        loc = tuple(p for p in item["loc"] if not str(p).startswith(("function-", "json-")))
        message = item["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, "):]
        if item["type"] in TYPE_MESSAGES:
            message = TYPE_MESSAGES[item["type"]]
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


def load(config_dir: str | Path, *, keys_apart: bool = False) -> Config:
    """Load and check both files; ConfigError lists every problem in both.

    ``keys_apart``: the DKIM private keys are opened in a short-lived child
    process (:mod:`kittiwake.dkim.keycheck`), so that the caller (``serve``,
    whose SMTP workers sign) does not load the crypto library for the check."""
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
        problems.extend(check_files(directory, static, domains, keys_apart=keys_apart))
        problems.extend(cross_checks(directory, static, domains))
    if problems:
        raise ConfigError(problems)
    assert static is not None and domains is not None
    return Config(directory.resolve(), static, domains)


def cross_checks(directory: Path, static: StaticConfig, domains: DomainsConfig) -> list[str]:
    """Problems between the two files: routes naming no transport, a postmaster for no account."""
    problems = [f"{directory / DOMAINS_FILE}: {problem}"
                for problem in check_routes(static, domains)]
    problems += [f"{directory / STATIC_FILE}: {problem}"
                 for problem in check_postmaster(static, domains)]
    problems += [f"{directory / DOMAINS_FILE}: {problem}"
                 for problem in check_mta_sts_mx(static, domains)]
    problems += [f"{directory / STATIC_FILE}: {problem}"
                 for problem in check_tlsrpt_from_domain(static, domains)]
    problems += [f"{directory / STATIC_FILE}: {problem}"
                 for problem in check_dmarc_reporting(static, domains)]
    return problems


def check_tlsrpt_from_domain(static: StaticConfig, domains: DomainsConfig) -> list[str]:
    """``reports.tlsrpt.from_domain`` must be a domain here that signs with DKIM: the
    reports are sent from postmaster@ it, signed with its keys."""
    name = static.reports.tlsrpt.from_domain
    if not name:
        return []
    where = _location(("reports", "tlsrpt", "from_domain"))
    domain = domains.domains.get(name)
    if domain is None:
        known = ", ".join(sorted(domains.domains)) or "none"
        return [f"{where}: domain {name!r} is not in domains.conf (known: {known})"]
    if not domain.dkim.sign:
        return [f"{where}: domain {name!r} has no DKIM signing (domains.{name}.dkim.sign is"
                " empty); TLS reports are sent DKIM-signed"]
    return []


def check_dmarc_reporting(static: StaticConfig, domains: DomainsConfig) -> list[str]:
    """``dmarc_reporting.from_address`` must be in one of our domains: reports are
    DKIM-signed with its domain's key, and receivers check its DMARC (RFC 7489 §7.2.1.1)."""
    address = static.dmarc_reporting.from_address
    if not address or not domains.domains:
        return []
    domain = address.rpartition("@")[2].lower().rstrip(".")
    if domain in domains.domains:
        return []
    known = ", ".join(sorted(domains.domains))
    return [f"dmarc_reporting.from_address: {address!r} is not in one of our domains"
            f" (known: {known}); reports are signed with its domain's DKIM key"]


def check_mta_sts_mx(static: StaticConfig, domains: DomainsConfig) -> list[str]:
    """An MTA-STS policy in testing or enforce mode needs an mx line (RFC 8461 §3.2).

    Its mx lines are the host names of the listeners serving smtp, then
    ``mta_sts.mx``: with neither, no valid policy can be served.
    """
    if any(listener.smtp.enabled for listener in static.listeners.values()):
        return []
    return [f"{_location(('domains', name, 'mta_sts', 'mx'))}: mode {domain.mta_sts.mode}"
            " needs an MX host, and"
            " no listener serves smtp: list the MX hosts (e.g. mx = [\"mail.example.org\"])"
            " or set mode = \"none\""
            for name, domain in domains.domains.items()
            if domain.mta_sts and domain.mta_sts.mode != "none" and not domain.mta_sts.mx]


def check_postmaster(static: StaticConfig, domains: DomainsConfig) -> list[str]:
    """``postmaster_account`` must name an account (RFC 5321 §4.5.1: postmaster must work).

    While domains.conf has no account at all (a new setup: kittiwake.conf is
    written first, then domains and accounts are added) nothing can receive
    mail yet, and the name is not held against the commands that add them.
    """
    name = static.postmaster_account
    if name and domains.accounts and name not in domains.accounts:
        known = ", ".join(sorted(domains.accounts))
        return [f"postmaster_account: no account {name!r} in domains.conf (known: {known});"
                " postmaster@ mail must reach a real account (RFC 5321 §4.5.1): add it with"
                f" `kittiwake account add {name} ADDRESS` or name another"]
    return []


def postmaster_account(static_setting: str, domains: DomainsConfig) -> str | None:
    """The account receiving postmaster@ mail: the configured one, else the first account.

    None only when domains.conf has no account at all.
    """
    if static_setting:
        return static_setting if static_setting in domains.accounts else None
    return next(iter(domains.accounts), None)


def check_files(directory: Path, static: StaticConfig, domains: DomainsConfig, *,
                keys_apart: bool = False) -> list[str]:
    """Problems with files the config points at (certificates, DKIM keys, passwords).

    Each file is opened as what it must be (a certificate chain with its key,
    a DKIM private key), so what ``serve`` would fail on fails here first.
    """
    problems = [f"{directory / STATIC_FILE}: {problem}"
                for problem in check_transport_files(directory, static)]
    for name, listener in static.listeners.items():
        if listener.tls:
            for i, cert in enumerate(listener.tls.certificates):
                where = f"{directory / STATIC_FILE}: listeners.{_key(name)}.tls.certificates[{i}]"
                missing = False
                for field in ("cert_file", "key_file"):
                    target = directory / getattr(cert, field)
                    if not target.is_file():
                        missing = True
                        problems.append(f"{where}.{field}: no file {target}")
                if not missing:
                    why = _tls_problem(directory / cert.cert_file, directory / cert.key_file)
                    if why:
                        problems.append(f"{where}: {why}")
        if listener.tls:
            where = f"{directory / STATIC_FILE}: listeners.{_key(name)}.tls"
            problems += [f"{where}.{problem}" for problem in
                         host_key_problems(directory, listener.tls.host_private_key_files)]
    for authority, section in static.acme.items():
        where = f"{directory / STATIC_FILE}: acme.{_key(authority)}"
        problems += [f"{where}.{problem}" for problem in acme_file_problems(directory, section)]
    dkim_keys: list[tuple[str, Path]] = []
    for dname, domain in domains.domains.items():
        for sel, selector in domain.dkim.selectors.items():
            where = (f"{directory / DOMAINS_FILE}: domains.{_key(dname)}.dkim.selectors."
                     f"{_key(sel)}.private_key_file")
            target = directory / selector.private_key_file
            if not target.is_file():
                problems.append(f"{where}: no file {target} (create it with"
                                f" `kittiwake dkim gen ed25519 > {target}`)")
                continue
            dkim_keys.append((where, target))
    found = dkim_key_problems([t for _w, t in dkim_keys], apart=keys_apart)
    problems += [f"{where}: {target}: {why}" for (where, target), why in zip(dkim_keys, found,
                                                                            strict=True) if why]
    return problems


def dkim_key_problems(paths: list[Path], apart: bool = False) -> list[str | None]:
    """:func:`dkim_key_problem` of each path; ``apart``: in a child process (which
    falls back to this process if the child cannot answer)."""
    from kittiwake.dkim.keycheck import dkim_key_problem

    if apart and paths:
        import json
        import subprocess
        import sys

        try:
            done = subprocess.run([sys.executable, "-m", "kittiwake.dkim.keycheck",
                                   *map(str, paths)], capture_output=True, timeout=60,
                                  check=True)
            answer = json.loads(done.stdout)
            if isinstance(answer, list) and len(answer) == len(paths):
                return [a if isinstance(a, str) else None for a in answer]
        except (OSError, subprocess.SubprocessError, ValueError):
            pass
    return [dkim_key_problem(p) for p in paths]


def acme_file_problems(directory: Path, section: ACMEConfig) -> list[str]:
    """``field: why`` for the files of one ACME authority that ``serve`` could not use:
    the external account binding key (RFC 8555 §7.3.4: a base64url HMAC key, given
    together with its key id) and the extra CA certificates for the directory."""
    import base64
    import binascii
    import ssl

    problems: list[str] = []
    if section.eab_key_id and not section.eab_hmac_key_file:
        problems.append("eab_key_id: set, but eab_hmac_key_file is not; the two go together")
    if section.eab_hmac_key_file:
        target = directory / section.eab_hmac_key_file
        try:
            text = target.read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "not text"
            problems.append(f"eab_hmac_key_file: cannot read {target} ({why})")
        else:
            try:
                key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            except (binascii.Error, ValueError):
                key = b""
            if not key or not re.fullmatch(r"[A-Za-z0-9_-]+={0,2}", text):
                problems.append(f"eab_hmac_key_file: {target} does not hold a base64url key"
                                " (the HMAC key the authority gave with the key id)")
            if not section.eab_key_id:
                problems.append("eab_hmac_key_file: set, but eab_key_id is not; the two go"
                                " together")
    if section.ca_file:
        target = directory / section.ca_file
        try:
            ssl.create_default_context().load_verify_locations(cafile=str(target))
        except FileNotFoundError:
            problems.append(f"ca_file: no file {target}")
        except (ssl.SSLError, OSError, ValueError) as exc:
            problems.append(f"ca_file: {target} is not a PEM CA certificate ({exc})")
    return problems


def host_key_problems(directory: Path, files: list[str]) -> list[str]:
    """``host_private_key_files[i]: why`` for each pre-generated ACME host key that the
    certificate manager could not use: missing, not an unencrypted PEM private key, not
    ECDSA P-256/P-384 or RSA of 2048 bits or more, or a second key of one type (one
    certificate per key type is served)."""
    if not files:
        return []
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    problems: list[str] = []
    seen: dict[str, int] = {}
    for i, relative in enumerate(files):
        where = f"host_private_key_files[{i}]"
        target = directory / relative
        if not target.is_file():
            problems.append(f"{where}: no file {target} (`kittiwake quickstart` writes"
                            " ECDSA and RSA keys; or make one with `openssl genpkey`)")
            continue
        try:
            key = serialization.load_pem_private_key(target.read_bytes(), password=None)
        except OSError as exc:
            problems.append(f"{where}: cannot read {target}: {exc.strerror}")
            continue
        except (TypeError, ValueError):
            problems.append(f"{where}: {target} is not an unencrypted PEM private key")
            continue
        if isinstance(key, ec.EllipticCurvePrivateKey):
            kind = "ECDSA"
            if key.curve.name not in ("secp256r1", "secp384r1"):
                problems.append(f"{where}: {target}: ECDSA curve {key.curve.name}; expected"
                                " P-256 (secp256r1) or P-384")
                continue
        elif isinstance(key, rsa.RSAPrivateKey):
            kind = "RSA"
            if key.key_size < 2048:
                problems.append(f"{where}: {target}: RSA key of {key.key_size} bits;"
                                " expected 2048 or more")
                continue
        else:
            problems.append(f"{where}: {target}: a {type(key).__name__.lstrip('_')}; expected"
                            " an ECDSA or RSA private key (what certificate authorities sign)")
            continue
        if kind in seen:
            problems.append(f"{where}: {target}: a second {kind} key (the first is"
                            f" host_private_key_files[{seen[kind]}]); give one per type")
            continue
        seen[kind] = i
    return problems


def check_user(static: StaticConfig) -> list[str]:
    """``user`` must name an existing unprivileged account: serve started as root drops
    to it after binding its ports, and refuses to start otherwise."""
    import pwd

    if not static.user:
        return []
    try:
        entry = pwd.getpwnam(static.user)
    except KeyError:
        return [f"user: no user {static.user!r} on this system; serve started as root would"
                f" refuse to start (create it, e.g. `useradd --system {static.user}`, or"
                " name another)"]
    if entry.pw_uid == 0:
        return [f"user: {static.user!r} is root; name an unprivileged user (serve started as"
                " root runs as it after binding its ports)"]
    return []


def _tls_problem(cert_file: Path, key_file: Path) -> str | None:
    """Why ``serve`` could not use this certificate chain and key, or None.

    Checked the way the server loads them (``ssl``, which also checks that the
    key belongs to the certificate) and read with :mod:`kittiwake.certinfo`, so
    that the server process need not load a crypto library for it."""
    import ssl

    from kittiwake import certinfo

    try:
        cert_data = cert_file.read_bytes()
        key_data = key_file.read_bytes()
    except OSError as exc:
        return f"cannot read {exc.filename}: {exc.strerror}"
    try:
        certinfo.read_pem(cert_data)
    except ValueError:
        return f"{cert_file} is not a PEM certificate"
    if b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in key_data \
            or b"Proc-Type: 4,ENCRYPTED" in key_data:  # RFC 5958 §3, RFC 1421 §4.6.1.1
        return f"{key_file} is an encrypted private key; give an unencrypted one"
    if not _PEM_PRIVATE_KEY.search(key_data):
        return f"{key_file} is not a PEM private key"

    def no_password() -> str:
        raise ValueError("encrypted")  # an encrypted key fails; OpenSSL must never prompt

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert_file, key_file, password=no_password)
    except ssl.SSLError as exc:
        # OpenSSL: a key of the certificate's type that is not its key, or a key of
        # another type (which then has no certificate beside it).
        if exc.reason in ("KEY_VALUES_MISMATCH", "NO_CERTIFICATE_ASSIGNED"):
            return f"{key_file} is not the private key of {cert_file}"
        if exc.library == "PEM" or "PEM" in str(exc):
            return f"{key_file} is not a PEM private key"
        return f"cannot use {cert_file} with key {key_file}: {exc.reason or exc}"
    except ValueError:
        return f"{key_file} is an encrypted private key; give an unencrypted one"
    except OSError as exc:
        reason = getattr(exc, "reason", None) or exc.strerror or str(exc)
        return f"cannot use {cert_file} with key {key_file}: {reason}"
    return None


_PEM_PRIVATE_KEY = re.compile(rb"-----BEGIN (?:RSA |EC )?PRIVATE KEY-----")


def _key(name: str) -> str:
    return name if name.replace("_", "").replace("-", "").isalnum() else f'"{name}"'


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
    """Validate and atomically replace domains.conf; the running server reloads it.

    The new file must fit kittiwake.conf too (routes name its transports, its
    postmaster_account is an account): a change that the running server would
    refuse to reload is not written. ConfigError says why.
    """
    directory = Path(config_dir)
    path = directory / DOMAINS_FILE
    text = to_toml(domains)
    # Round-trip check: never write a file we could not read back.
    checked = validate(DomainsConfig, tomllib.loads(text.decode("utf-8")), str(path))
    if (directory / STATIC_FILE).exists():
        try:
            static = load_static(directory)
        except ConfigError:
            static = None  # its own problems are reported by whoever loads it
        if static is not None:
            problems = cross_checks(directory, static, checked)
            if problems:
                raise ConfigError(problems)
    atomic_write(path, text)


def write_static(config_dir: str | Path, static: StaticConfig) -> None:
    path = Path(config_dir) / STATIC_FILE
    atomic_write(path, to_toml(static))
