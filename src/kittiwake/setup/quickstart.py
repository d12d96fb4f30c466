"""``kittiwake quickstart``: a complete configuration for a real server, in one step.

Writes, in a new directory: ``config/kittiwake.conf`` and
``config/domains.conf`` (through the config package's writers, then loaded
back to validate), DKIM keys (Ed25519 of RFC 8463 and RSA-2048, both signing,
for verifiers that do not know Ed25519 yet), ACME host keys
(ECDSA P-256 and RSA-2048, PKCS#8 PEM, mode 0600) for TLSA records that
survive renewals, the account with a generated password (only SCRAM/CRAM
secrets are stored, never the password), and a systemd unit. It returns
what the caller prints: the password (once), and the facts of the domain
from which the DNS records are made.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pwd
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from kittiwake.config import (
    DOMAINS_FILE,
    STATIC_FILE,
    Account,
    Config,
    ConfigError,
    Destination,
    Domain,
    DomainsConfig,
    Listener,
    StaticConfig,
    load,
    write_domains,
    write_static,
)
from kittiwake.config.domains import (
    DKIMConfig,
    DKIMSelector,
    DMARCReports,
    MTASTSPolicy,
    TLSRPTReports,
)
from kittiwake.config.static import (
    ACMEConfig,
    HTTPService,
    IMAPServiceConfig,
    ServiceConfig,
    SMTPService,
    SubmissionService,
    TLSConfig,
)

LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
ACME_NAME = "letsencrypt"
PUBLIC, INTERNAL = "public", "internal"
INTERNAL_IP = "127.0.0.1"
INTERNAL_HTTP_PORT = 1080  # kittiwake's http behind an existing web server
DMARC_LOCALPART = "dmarc-reports"
TLSRPT_LOCALPART = "tls-reports"
MAILBOXES = ["Inbox", "Sent", "Drafts", "Trash", "Archive", "Junk", "DMARC", "TLSRPT"]
PASSWORD_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
UNIT_FILE = "kittiwake.service"


class QuickstartError(Exception):
    """Quickstart cannot go on; the message is one line for the user."""


@dataclass
class Options:
    """What the user asked for (the CLI's arguments, checked)."""

    address: str  # you@example.org, domain in A-labels
    hostname: str
    directory: Path
    ips: list[str]
    existing_webserver: bool = False
    acme_directory: str = LETS_ENCRYPT
    acme_ca_file: str = ""
    acme_issuers: list[str] = field(default_factory=list)
    user: str = "kittiwake"
    executable: str = "kittiwake"

    @property
    def localpart(self) -> str:
        return self.address.rsplit("@", 1)[0]

    @property
    def domain(self) -> str:
        return self.address.rsplit("@", 1)[1]


@dataclass
class Outcome:
    """What quickstart made."""

    config: Config
    account: str
    password: str
    unit_file: Path
    files: list[Path]  # every file written, for the summary


def generate_password() -> str:
    """A random password of 4 groups of 5 unambiguous characters (about 116 bits)."""
    groups = ["".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(5)) for _ in range(4)]
    return "-".join(groups)


def existing_config(config_dir: Path) -> Path | None:
    for name in (STATIC_FILE, DOMAINS_FILE):
        if (config_dir / name).exists():
            return config_dir / name
    return None


def acme_name(directory_url: str) -> str:
    """The [acme.NAME] section name: "letsencrypt" for Let's Encrypt, else "acme"."""
    from urllib.parse import urlsplit

    host = (urlsplit(directory_url).hostname or "").lower()
    return ACME_NAME if host.endswith(".letsencrypt.org") else "acme"


def static_config(opts: Options, host_key_files: list[str]) -> StaticConfig:
    """kittiwake.conf: a public listener for mail and web, an internal one for metrics."""
    name = acme_name(opts.acme_directory)
    challenge = "http-01" if opts.existing_webserver else "tls-alpn-01"
    acme = ACMEConfig(directory_url=opts.acme_directory, contact_email=opts.address,
                      challenge=challenge, ca_file=opts.acme_ca_file,
                      issuer_domain_names=list(opts.acme_issuers))
    on = {"enabled": True}
    public = Listener(
        ips=list(opts.ips),
        tls=TLSConfig(acme=name, host_private_key_files=host_key_files),
        smtp=SMTPService(**on), submission=SubmissionService(**on),
        submissions=ServiceConfig(**on), imap=IMAPServiceConfig(**on),
        imaps=ServiceConfig(**on),
        http=HTTPService(enabled=not opts.existing_webserver),
        https=ServiceConfig(enabled=not opts.existing_webserver))
    internal = Listener(
        ips=[INTERNAL_IP], metrics=ServiceConfig(**on),
        http=HTTPService(enabled=True, port=INTERNAL_HTTP_PORT, reverse_proxied=True)
        if opts.existing_webserver else HTTPService())
    return StaticConfig(hostname=opts.hostname, data_dir="../data",
                        postmaster_account=opts.localpart, user=opts.user,
                        listeners={PUBLIC: public, INTERNAL: internal},
                        acme={name: acme})


def domains_config(opts: Options, selectors: dict[str, str], now: dt.datetime) -> DomainsConfig:
    """domains.conf: the domain (DKIM, DMARC reports, MTA-STS) and the account."""
    d = opts.domain
    domain = Domain(
        dkim=DKIMConfig(selectors={s: DKIMSelector(private_key_file=f)
                                   for s, f in selectors.items()},
                        sign=list(selectors)),
        dmarc_reports=DMARCReports(localpart=DMARC_LOCALPART, account=opts.localpart,
                                   mailbox="DMARC"),
        tlsrpt_reports=TLSRPTReports(localpart=TLSRPT_LOCALPART, account=opts.localpart,
                                     mailbox="TLSRPT"),
        # No policy_id: it is derived from the policy text, so it changes with it.
        mta_sts=MTASTSPolicy(mode="enforce", max_age_seconds=86400))
    account = Account(domain=d, mailboxes=list(MAILBOXES), destinations={
        opts.address: Destination()})
    return DomainsConfig(domains={d: domain}, accounts={opts.localpart: account})


def unit_text(executable: str, config_file: Path) -> str:
    """The systemd unit, from the server package when it has it."""
    try:
        from kittiwake.server.systemd import unit_text as server_unit_text  # type: ignore
    except ImportError:
        return _fallback_unit_text(executable, config_file)
    text: str = server_unit_text(executable, config_file)
    return text


def _fallback_unit_text(executable: str, config_file: Path) -> str:
    # TODO(serve): kittiwake.server.systemd.unit_text (production serve: privilege
    # drop, sd_notify) replaces this once merged; this minimal unit only lets
    # quickstart run before then.
    config_dir = config_file.parent
    return f"""[Unit]
Description=kittiwake mail server
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
WorkingDirectory={config_dir.parent}
ExecStart={executable} --config {config_dir} serve
Restart=on-failure
RestartSec=5s

[Install]
WantedBy=multi-user.target
"""


def _write_secret(path: Path, data: bytes) -> None:
    from kittiwake.server.tls import write_private_file

    write_private_file(path, data)


def quickstart(opts: Options, now: dt.datetime | None = None) -> Outcome:
    """Write everything for a new server in ``opts.directory``; QuickstartError says why not."""
    from kittiwake.dkim import generate_key
    from kittiwake.sasl import derive_credentials
    from kittiwake.setup.hostkeys import KEY_KINDS, generate_host_key
    from kittiwake.store import AccountStore
    from kittiwake.store.store import account_dir

    now = now or dt.datetime.now(dt.UTC)
    config_dir = opts.directory / "config"
    found = existing_config(config_dir)
    if found is not None:
        raise QuickstartError(f"{found} exists already: quickstart only sets up a new server"
                              " (choose another --dir, or extend this one with `kittiwake"
                              " domain add` and `kittiwake account add`)")
    files: list[Path] = []
    try:
        for sub in ("", "dkim", "hostkeys"):
            (config_dir / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(config_dir / "dkim", 0o700)
        os.chmod(config_dir / "hostkeys", 0o700)
        host_key_files = []
        for kind in KEY_KINDS:
            relative = f"hostkeys/{kind}.pem"
            _write_secret(config_dir / relative, generate_host_key(kind))
            host_key_files.append(relative)
            files.append(config_dir / relative)
        year = now.strftime("%Y")
        selectors = {}
        for selector, kind in ((f"ed{year}", "ed25519"), (f"rsa{year}", "rsa")):
            relative = f"dkim/{opts.domain}.{selector}.pem"
            _write_secret(config_dir / relative, generate_key(kind))
            selectors[selector] = relative
            files.append(config_dir / relative)
        write_static(config_dir, static_config(opts, host_key_files))
        write_domains(config_dir, domains_config(opts, selectors, now))
        files += [config_dir / STATIC_FILE, config_dir / DOMAINS_FILE]
        config = load(config_dir)
    except ConfigError as exc:
        raise QuickstartError(f"the generated configuration does not load: {exc.problems[0]}"
                              ) from None
    except OSError as exc:
        raise QuickstartError(f"cannot write in {config_dir}: {exc.strerror or exc}"
                              ) from None
    password = generate_password()
    account = config.domains.accounts[opts.localpart]
    try:
        store = AccountStore(opts.localpart, account_dir(config.data_dir, opts.localpart))
        try:
            store.ensure_mailboxes(account.mailboxes)
            store.set_credentials(json.dumps(derive_credentials(password).to_dict()))
        finally:
            store.close()
        unit_file = opts.directory / UNIT_FILE
        unit_file.write_text(unit_text(opts.executable, config_dir / STATIC_FILE))
        files.append(unit_file)
    except OSError as exc:
        raise QuickstartError(f"cannot set up the account in {config.data_dir}:"
                              f" {exc.strerror or exc}") from None
    give_to_user(opts.user, config_dir, config.data_dir)
    return Outcome(config, opts.localpart, password, unit_file, files)


def give_to_user(user: str, config_dir: Path, data_dir: Path) -> None:
    """Run as root, hand the data directory and the private keys to the server's user.

    ``serve`` drops to that user after binding its ports, and then still reads
    DKIM keys (domains.conf reloads) and host keys (certificate renewal).
    """
    if not user or os.geteuid() != 0:
        return
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return  # the CLI tells how to create the user; `chown -R` is then in the steps
    for top in (data_dir, config_dir / "dkim", config_dir / "hostkeys"):
        for path in (top, *top.rglob("*")):
            shutil.chown(path, entry.pw_uid, entry.pw_gid)
