"""``kittiwake localserve``: a ready local mail server for developers.

Set up on first run in DIR (default ``~/.config/kittiwake-localserve``): a
config, a self-signed certificate, and the account ``kittiwake@localhost``
with password ``kittiwake``. Listens on the usual ports plus 1000 on
127.0.0.1. Mail to any address is accepted and delivered into the account;
localparts of recipient and MAIL FROM addresses trigger failures for
testing senders (see ``kittiwake.smtpserver.localserve_rules``). Started
again, it reuses DIR.
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path

import click

from kittiwake.cli.common import UserError

ACCOUNT = "kittiwake"
ADDRESS = "kittiwake@localhost"
PASSWORD = "kittiwake"
PORTS = {"smtp": 1025, "submissions": 1465, "submission": 1587, "imap": 1143, "imaps": 1993,
         "metrics": 1081}
# Listener lines added since the first localserve version; an older config gains them.
ADDED_LINES = {
    "imap": f'imap = {{ enabled = true, port = {PORTS["imap"]}, no_require_starttls = true }}',
    "imaps": f'imaps = {{ enabled = true, port = {PORTS["imaps"]} }}',
}


def default_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "kittiwake-localserve"


def setup(directory: Path, ip: str) -> bool:
    """Create config, certificate and account if missing; True when created now."""
    from kittiwake.config import Account, Destination, Domain, DomainsConfig, write_domains
    from kittiwake.config.load import atomic_write
    from kittiwake.sasl import derive_credentials
    from kittiwake.server.tls import make_self_signed
    from kittiwake.store import AccountStore
    from kittiwake.store.store import account_dir

    conf = directory / "config"
    created = not (conf / "kittiwake.conf").exists()
    conf.mkdir(parents=True, exist_ok=True)
    make_self_signed(conf / "certs", ["localhost", ip])
    if created:
        static = f'''# kittiwake localserve: generated on first run; edit freely.
hostname = "localhost"
data_dir = "../data"
shutdown_grace_seconds = 3
postmaster_account = "{ACCOUNT}"

[listeners.local]
ips = ["{ip}"]
hostname = "localhost"
smtp = {{ enabled = true, port = {PORTS["smtp"]} }}
submissions = {{ enabled = true, port = {PORTS["submissions"]} }}
submission = {{ enabled = true, port = {PORTS["submission"]} }}
metrics = {{ enabled = true, port = {PORTS["metrics"]} }}
{ADDED_LINES["imap"]}
{ADDED_LINES["imaps"]}

[listeners.local.tls]
certificates = [
  {{ cert_file = "certs/localserve.crt", key_file = "certs/localserve.key" }},
]
'''
        atomic_write(conf / "kittiwake.conf", static.encode())
        domains = DomainsConfig(
            domains={"localhost": Domain(description="localserve")},
            accounts={ACCOUNT: Account(domain="localhost", destinations={
                ADDRESS: Destination(), "@localhost": Destination()})})
        write_domains(conf, domains)
    else:
        upgrade(conf / "kittiwake.conf")
    root = account_dir((conf / "../data").resolve(), ACCOUNT)
    store = AccountStore(ACCOUNT, root)
    try:
        store.ensure_mailboxes(["Sent", "Drafts", "Trash", "Archive", "Junk"])
        if store.credentials() is None:
            store.set_credentials(json.dumps(derive_credentials(PASSWORD).to_dict()))
    finally:
        store.close()
    return created


def upgrade(path: Path) -> list[str]:
    """Add the services a localserve config made by an older version lacks (IMAP).

    Lines go at the end of the ``[listeners.local]`` table; a config whose
    user removed that table is left alone. Returns the services added.
    """
    from kittiwake.config.load import atomic_write

    text = path.read_text()
    lines = text.splitlines()
    try:
        start = lines.index("[listeners.local]")
    except ValueError:
        return []
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")),
               len(lines))
    section = [ln.split("=", 1)[0].strip() for ln in lines[start + 1:end] if "=" in ln]
    added = [name for name in ADDED_LINES if name not in section]
    if not added:
        return []
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    lines[end:end] = [ADDED_LINES[name] for name in added]
    atomic_write(path, ("\n".join(lines) + "\n").encode())
    return added


@click.command(name="localserve")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Where config and mail live (default ~/.config/"
                                 "kittiwake-localserve).")
@click.option("--ip", default="127.0.0.1", show_default=True,
              help="Address to listen on.")
@click.pass_context
def localserve_command(ctx: click.Context, directory: Path | None, ip: str) -> None:
    """Run a local mail server for testing the email your software sends."""
    from kittiwake.cli.serve import run_server
    from kittiwake.config import ConfigError, load
    from kittiwake.dns import MockResolver

    try:
        ipaddress.ip_address(ip)
    except ValueError:
        raise UserError(f"--ip {ip!r}: not an IP address (e.g. 127.0.0.1)") from None
    directory = (directory or default_dir()).resolve()
    try:
        created = setup(directory, ip)
    except OSError as exc:
        raise UserError(f"cannot set up {directory}: {exc}") from None
    try:
        config = load(directory / "config")
    except ConfigError as exc:
        for problem in exc.problems[:-1]:
            click.echo(problem, err=True)
        raise UserError(exc.problems[-1]) from None
    from kittiwake import log

    level = ctx.find_root().obj.get("loglevel") or config.static.log.level
    log.setup(level=level, packages=dict(config.static.log.packages),
              format=config.static.log.format)

    def started(_server: object) -> None:
        host = f"[{ip}]" if ":" in ip else ip
        click.echo(f"""
kittiwake localserve is running{' (first run: set up ' + str(directory) + ')' if created else ''}.
Mail to ANY address is accepted and stored in the one account.

  account     {ADDRESS}   password {PASSWORD}
  SMTP        {host}:{PORTS["smtp"]}   (no authentication needed)
  submission  {host}:{PORTS["submission"]}   (STARTTLS optional, AUTH with the account)
  submissions {host}:{PORTS["submissions"]}   (TLS, self-signed certificate)
  IMAP        {host}:{PORTS["imap"]}   (plain text, login with the account)
  IMAPS       {host}:{PORTS["imaps"]}   (TLS, self-signed certificate)
  metrics     http://{host}:{PORTS["metrics"]}/metrics
  data        {directory}

Failures for testing senders, by the localpart of an address:
  ...temperror@ 451   ...permerror@ 550   ...550@ (any 4xx/5xx code)   ...timeout@ no answer
  recipient address: after the message data; with prefix "rcptto" at RCPT TO instead
  MAIL FROM address: only with prefix "mailfrom" (mailfromtemperror@...), at MAIL FROM
  On submission ({PORTS["submission"]}/{PORTS["submissions"]}) mail is queued first: after-data \
failures come
  back as retries (4xx, timeout) or a bounce into the account (5xx).

Stop with Ctrl-C.
""")

    # localserve makes no DNS lookups: nothing is checked, everything is delivered.
    run_server(config, MockResolver(), localserve=True, on_started=started)
