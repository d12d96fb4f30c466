"""``kittiwake account ...`` and ``kittiwake address ...``: accounts and their addresses.

These edit domains.conf atomically (a running server reloads it) and open
the account's store in the data directory.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from kittiwake.cli.common import UserError, print_json, table


def _config_dir(ctx: click.Context) -> Path:
    return Path(ctx.find_root().obj["config_dir"])


def _load(ctx: click.Context):  # type: ignore[no-untyped-def]
    from kittiwake.config import ConfigError, load

    try:
        return load(_config_dir(ctx))
    except ConfigError as exc:
        for problem in exc.problems[:-1]:
            click.echo(problem, err=True)
        raise UserError(exc.problems[-1]) from None


def _save(ctx: click.Context, domains) -> None:  # type: ignore[no-untyped-def]
    from kittiwake.config import ConfigError, write_domains

    try:
        write_domains(_config_dir(ctx), domains)
    except ConfigError as exc:
        raise UserError(exc.problems[0]) from None
    except OSError as exc:
        raise UserError(f"cannot write domains.conf: {exc}") from None


# Account names become directory names and appear in logs and the CLI.
ACCOUNT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _check_account_name(name: str) -> None:
    if ACCOUNT_NAME.fullmatch(name) is None:
        raise UserError(f"account name {name!r} is not allowed: use 1-64 letters, digits,"
                        " '.', '_' or '-', starting with a letter or digit")


def _domain_arg(domain: str) -> str:
    """A domain given on the command line, as lower-case A-labels (or one clear line)."""
    from kittiwake.dns import InvalidName, mail_domain

    try:
        return mail_domain(domain).ascii
    except InvalidName as exc:
        raise UserError(str(exc)) from None


def _split_address(address: str) -> tuple[str, str]:
    """(local part, A-label domain) of user@domain or @domain (a catch-all).

    Refuses with one line what no SMTP client could deliver to: bad local
    parts, address literals, domains IDNA 2008 refuses.
    """
    from kittiwake.smtp.address import AddressError, parse_address

    if "@" not in address:
        raise UserError(f"{address!r}: expected an address like user@example.org"
                        " (or @example.org for a catch-all)")
    local, domain = address.rsplit("@", 1)
    if domain.startswith("["):
        raise UserError(f"{address!r}: an address literal ({domain}) is not a domain this"
                        " server can receive mail for; use a domain name")
    ascii_domain = _domain_arg(domain)
    if local:
        try:
            parse_address(address)
        except AddressError as exc:
            raise UserError(f"{address!r} is not a valid address: {exc}") from None
    return local, ascii_domain


def _open_account(config, name: str):  # type: ignore[no-untyped-def]
    """The account's synchronous store (created with default mailboxes if new)."""
    from kittiwake.store import AccountStore
    from kittiwake.store.store import account_dir

    account = config.domains.accounts.get(name)
    if account is None:
        known = ", ".join(sorted(config.domains.accounts)) or "none"
        raise UserError(f"no account {name!r} in domains.conf (known: {known})")
    store = AccountStore(name, account_dir(config.data_dir, name), account.quota_bytes)
    store.ensure_mailboxes(account.mailboxes)
    return store


@click.group(name="account")
def account_group() -> None:
    """Add, remove, list and check accounts; set passwords."""


@account_group.command("add")
@click.argument("name")
@click.argument("address")
@click.option("--full-name", default="", help="Display name.")
@click.pass_context
def account_add(ctx: click.Context, name: str, address: str, full_name: str) -> None:
    """Create account NAME receiving mail for ADDRESS (its domain must be configured)."""
    from kittiwake.config import Account, Destination

    _check_account_name(name)
    config = _load(ctx)
    domains = config.domains.model_copy(deep=True)
    if name in domains.accounts:
        raise UserError(f"account {name!r} already exists")
    address, domain = _clean_address(address)
    if domain not in domains.domains:
        known = ", ".join(sorted(domains.domains)) or "none"
        raise UserError(f"domain {domain!r} of {address!r} is not configured (known: {known});"
                        " add it with `kittiwake domain add`")
    _check_address_free(domains, address)
    domains.accounts[name] = Account(domain=domain, full_name=full_name,
                                     destinations={address: Destination()})
    _save(ctx, domains)
    config.domains = domains
    _open_account(config, name).close()
    click.echo(f"account {name} added with address {address}; set its password with"
               f" `kittiwake account setpassword {name}`")


def _clean_address(address: str) -> tuple[str, str]:
    """The address to store and its A-label domain.

    An ASCII domain is kept as typed; a non-ASCII one is stored in its
    mapped U-label form (full-width dots become ".", upper case lower), so
    the key in domains.conf is what SMTP will look up.
    """
    from kittiwake.dns import mail_domain

    local, ascii_domain = _split_address(address)
    typed = address.rsplit("@", 1)[1]
    if typed.isascii():
        return address, ascii_domain
    return f"{local}@{mail_domain(typed).unicode}", ascii_domain


def _address_key(address: str) -> tuple[str, str]:
    from kittiwake.dns import domain_key

    local, _, domain = address.rpartition("@")
    return local.lower(), domain_key(domain)


def _check_address_free(domains, address: str) -> None:  # type: ignore[no-untyped-def]
    key = _address_key(address)
    for other, acc in domains.accounts.items():
        if any(_address_key(dest) == key for dest in acc.destinations):
            raise UserError(f"address {address} already belongs to account {other}")
    if key in (_address_key(a) for a in domains.aliases):
        raise UserError(f"address {address} is an alias")


@account_group.command("rm")
@click.argument("name")
@click.pass_context
def account_rm(ctx: click.Context, name: str) -> None:
    """Remove account NAME from domains.conf (its mail stays in the data directory)."""
    from kittiwake.store.store import account_dir

    config = _load(ctx)
    domains = config.domains.model_copy(deep=True)
    if domains.accounts.pop(name, None) is None:
        raise UserError(f"no account {name!r}")
    _save(ctx, domains)
    click.echo(f"account {name} removed; its mail is kept in"
               f" {account_dir(config.data_dir, name)}")


@account_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def account_list(ctx: click.Context, as_json: bool) -> None:
    """List accounts with their addresses, message counts and sizes."""
    config = _load(ctx)
    out = []
    for name, account in sorted(config.domains.accounts.items()):
        store = _open_account(config, name)
        try:
            boxes = store.mailboxes()
            has_password = store.credentials() is not None
        finally:
            store.close()
        out.append({"name": name, "domain": account.domain,
                    "addresses": list(account.destinations),
                    "messages": sum(b.messages for b in boxes),
                    "size": sum(b.size for b in boxes), "password": has_password})
    if as_json:
        print_json(out)
        return
    rows = [[o["name"], ", ".join(o["addresses"]), str(o["messages"]), _size(o["size"]),
             "yes" if o["password"] else "no"] for o in out]
    click.echo(table(rows, ["account", "addresses", "messages", "size", "password"]))


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


@account_group.command("setpassword")
@click.argument("name")
@click.pass_context
def account_setpassword(ctx: click.Context, name: str) -> None:
    """Set NAME's password, read from the terminal (asked twice) or from stdin.

    Only derived secrets are stored (SCRAM-SHA-1/-256 keys, CRAM-MD5 digests),
    never the password itself.
    """
    import json

    from kittiwake.sasl import derive_credentials

    config = _load(ctx)
    if name not in config.domains.accounts:
        known = ", ".join(sorted(config.domains.accounts)) or "none"
        raise UserError(f"no account {name!r} in domains.conf (known: {known})")
    if sys.stdin.isatty():
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 8:
        raise UserError("password too short: use at least 8 characters")
    creds = derive_credentials(password)
    store = _open_account(config, name)
    try:
        store.set_credentials(json.dumps(creds.to_dict()))
    finally:
        store.close()
    click.echo(f"password of {name} set")


@account_group.command("check")
@click.argument("name")
@click.option("--repair", is_flag=True, help="Fix what can be fixed.")
@click.pass_context
def account_check(ctx: click.Context, name: str, repair: bool) -> None:
    """Verify counts, files versus rows and modseq order of NAME's store."""
    from kittiwake.store.check import check

    config = _load(ctx)
    store = _open_account(config, name)
    try:
        problems = check(store, repair=repair)
    finally:
        store.close()
    for problem in problems:
        click.echo(problem)
    if not problems:
        click.echo(f"account {name}: no problems found")
    elif repair:
        click.echo(f"account {name}: {len(problems)} problems found, repaired where possible")
    else:
        raise UserError(f"account {name}: {len(problems)} problems found"
                        " (run with --repair to fix)")


@click.group(name="address")
def address_group() -> None:
    """Add and remove addresses of accounts."""


@address_group.command("add")
@click.argument("address")
@click.argument("account")
@click.pass_context
def address_add(ctx: click.Context, address: str, account: str) -> None:
    """Deliver ADDRESS (or @domain for a catch-all) to ACCOUNT."""
    from kittiwake.config import Destination

    config = _load(ctx)
    domains = config.domains.model_copy(deep=True)
    if account not in domains.accounts:
        raise UserError(f"no account {account!r}")
    address, domain = _clean_address(address)
    if domain not in domains.domains:
        raise UserError(f"domain {domain!r} is not configured")
    _check_address_free(domains, address)
    domains.accounts[account].destinations[address] = Destination()
    _save(ctx, domains)
    click.echo(f"address {address} added to account {account}")


@address_group.command("rm")
@click.argument("address")
@click.pass_context
def address_rm(ctx: click.Context, address: str) -> None:
    """Stop delivering ADDRESS."""
    config = _load(ctx)
    domains = config.domains.model_copy(deep=True)
    for name, acc in domains.accounts.items():
        for dest in list(acc.destinations):
            if dest.lower() == address.lower():
                if len(acc.destinations) == 1:
                    raise UserError(f"{address} is the last address of account {name};"
                                    " remove the account instead")
                del acc.destinations[dest]
                _save(ctx, domains)
                click.echo(f"address {address} removed from account {name}")
                return
    raise UserError(f"no account has address {address!r}")


@click.group(name="domain")
def domain_group() -> None:
    """Add, remove and list the domains this server handles."""


@domain_group.command("add")
@click.argument("domain")
@click.pass_context
def domain_add(ctx: click.Context, domain: str) -> None:
    """Handle mail for DOMAIN."""
    from kittiwake.config import Domain
    from kittiwake.publicsuffix import is_public_suffix

    if domain.startswith("["):
        raise UserError(f"{domain!r} is an address literal (RFC 5321 §4.1.3), not a domain"
                        " name; mail to it is never local")
    if "@" in domain:
        raise UserError(f"{domain!r} is an address, not a domain name; give just the part"
                        " after '@'")
    ascii_domain = _domain_arg(domain)
    if is_public_suffix(ascii_domain):
        raise UserError(f"domain {ascii_domain!r} is a public suffix (like com or co.uk),"
                        " where nobody can receive mail; add a name registered under it,"
                        f" e.g. example.{ascii_domain}")
    config = _load(ctx)
    domains = config.domains.model_copy(deep=True)
    if ascii_domain in domains.domains:
        raise UserError(f"domain {ascii_domain} is already configured")
    domains.domains[ascii_domain] = Domain()
    _save(ctx, domains)
    click.echo(f"domain {ascii_domain} added")


@domain_group.command("rm")
@click.argument("domain")
@click.pass_context
def domain_rm(ctx: click.Context, domain: str) -> None:
    """Stop handling DOMAIN (no account may still use it)."""
    config = _load(ctx)
    domains = config.domains.model_copy(deep=True)
    ascii_domain = _domain_arg(domain)
    if ascii_domain not in domains.domains:
        raise UserError(f"domain {ascii_domain} is not configured")
    users = [n for n, a in domains.accounts.items() if a.domain == ascii_domain or any(
        d.lower().endswith("@" + ascii_domain) for d in a.destinations)]
    if users:
        raise UserError(f"domain {ascii_domain} is still used by accounts: {', '.join(users)}")
    del domains.domains[ascii_domain]
    _save(ctx, domains)
    click.echo(f"domain {ascii_domain} removed")


@domain_group.command("list")
@click.pass_context
def domain_list(ctx: click.Context) -> None:
    """List configured domains."""
    config = _load(ctx)
    rows = [[d, str(sum(1 for a in config.domains.accounts.values() if a.domain == d))]
            for d in sorted(config.domains.domains)]
    click.echo(table(rows, ["domain", "accounts"]))


