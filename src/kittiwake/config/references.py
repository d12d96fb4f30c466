"""Cross-checks inside domains.conf: every name one part of the file uses must exist.

Each check returns problems as ``(location, message)``, the location being
the field path (``("aliases", "team@example.org", "addresses", 0)``), so that
``config test`` prints one line per problem with file and field path.
What these checks refuse would otherwise fail at runtime, or worse, be
accepted and lost:

- an account's domain, or a destination's domain, that is not configured;
- the same address on two accounts, an address that is both an alias and an
  account's destination, two catch-alls for one domain (the last one would
  silently win);
- an alias member that is not a destination of an account: mail to the
  alias would be accepted (250) and stored nowhere. Aliases expand to local
  accounts only; forwarding to remote addresses is not supported;
- DKIM ``sign`` naming no selector, DMARC reports for no account;
- account and mailbox names that the store cannot create (an account name is
  a directory name; mailbox names have no empty hierarchy levels and no
  control characters).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kittiwake.config.domains import DomainsConfig

Location = tuple[str | int, ...]
Problem = tuple[Location, str]

MAILBOX_SEPARATOR = "/"


def mailbox_name_problem(name: str) -> str | None:
    """Why the store could not create mailbox ``name``, or None when it can."""
    stripped = name.strip(MAILBOX_SEPARATOR)
    if not stripped.strip():
        return f"mailbox name {name!r} is empty"
    if any(not part.strip() for part in stripped.split(MAILBOX_SEPARATOR)):
        return f"mailbox name {name!r} has an empty hierarchy level (between two '/')"
    if any(ord(c) < 0x20 or c == "\x7f" for c in name):
        return f"mailbox name {name!r} contains control characters"
    return None


def account_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name an account (it is its directory under data/accounts)."""
    if not name or "/" in name or name.startswith(".") or any(ord(c) < 0x20 for c in name):
        return (f"account name {name!r} cannot be used: it names the account's directory, so"
                " no '/', no leading '.', no control characters")
    return None


def _known(names: Iterable[object]) -> str:
    return ", ".join(sorted(str(n) for n in names)) or "none"


class _Addresses:
    """Folds addresses the way lookups compare them (see :mod:`kittiwake.config.lookup`)."""

    def __init__(self, config: DomainsConfig) -> None:
        from kittiwake.config.domains import _ascii

        self.config = config
        self._ascii = _ascii

    def fold(self, address: str) -> tuple[str, str]:
        local, _, domain = address.rpartition("@")
        domain = self._ascii(domain.lower())
        settings = self.config.domains.get(domain)
        local = unicodedata.normalize("NFC", local)
        if not (settings and settings.localpart_case_sensitive):
            local = local.casefold()
        return local, domain


def check(config: DomainsConfig) -> list[Problem]:
    """Every cross-reference problem of ``config``."""
    return [*_accounts(config), *_addresses(config), *_aliases(config), *_domains(config)]


def _accounts(config: DomainsConfig) -> list[Problem]:
    from kittiwake.config.domains import _ascii

    problems: list[Problem] = []
    for name, account in config.accounts.items():
        why = account_name_problem(name)
        if why:
            problems.append((("accounts", name), why))
        if account.domain not in config.domains:
            problems.append((("accounts", name, "domain"), f"domain {account.domain!r} is not in"
                             f" domains (known: {_known(config.domains)})"))
        for i, mailbox in enumerate(account.mailboxes):
            why = mailbox_name_problem(mailbox)
            if why:
                problems.append((("accounts", name, "mailboxes", i), why))
        for address, destination in account.destinations.items():
            where: Location = ("accounts", name, "destinations", address)
            domain = address.rsplit("@", 1)[1].lower()
            if _ascii(domain) not in config.domains:
                problems.append((where, f"domain {domain!r} is not in domains"
                                 f" (known: {_known(config.domains)})"))
            why = mailbox_name_problem(destination.mailbox)
            if why:
                problems.append(((*where, "mailbox"), why))
            for i, ruleset in enumerate(destination.rulesets):
                why = mailbox_name_problem(ruleset.mailbox)
                if why:
                    problems.append(((*where, "rulesets", i, "mailbox"), why))
    return problems


def _addresses(config: DomainsConfig) -> list[Problem]:
    """The same address (as lookups compare them) given to two places."""
    fold = _Addresses(config).fold
    owner: dict[tuple[str, str], str] = {}
    problems: list[Problem] = []
    for name, account in config.accounts.items():
        for address in account.destinations:
            key = fold(address)
            where: Location = ("accounts", name, "destinations", address)
            if key in owner:
                what = "catch-all of the domain" if not key[0] else "address"
                problems.append((where, f"{what} {address!r} is already a destination of"
                                 f" account {owner[key]}: an address belongs to one account"
                                 " (use an alias for several)"))
            else:
                owner[key] = name
    for alias in config.aliases:
        key = fold(alias)
        if key in owner:
            problems.append((("aliases", alias), f"{alias!r} is also a destination of account"
                             f" {owner[key]}: an address cannot be both an alias and an"
                             " account's address"))
    return problems


def _aliases(config: DomainsConfig) -> list[Problem]:
    from kittiwake.config.domains import _ascii

    fold = _Addresses(config).fold
    exact = {fold(a): name for name, acc in config.accounts.items()
             for a in acc.destinations if not a.startswith("@")}
    aliases = {fold(a) for a in config.aliases}
    problems: list[Problem] = []
    for alias, spec in config.aliases.items():
        local, _, domain = alias.rpartition("@")
        if not local or not domain:
            problems.append((("aliases", alias), f"alias {alias!r}: expected user@domain"))
            continue
        if _ascii(domain.lower()) not in config.domains:
            problems.append((("aliases", alias), f"domain {domain.lower()!r} of alias {alias!r}"
                             f" is not in domains (known: {_known(config.domains)})"))
        if not spec.addresses:
            problems.append((("aliases", alias, "addresses"),
                             f"alias {alias!r} has no members: mail to it would go nowhere"))
        for i, member in enumerate(spec.addresses):
            where: Location = ("aliases", alias, "addresses", i)
            m_local, _, m_domain = member.rpartition("@")
            if not m_local or not m_domain:
                problems.append((where, f"alias {alias!r}: member {member!r} is not an address"
                                 " like user@example.org"))
            elif _ascii(m_domain.lower()) not in config.domains:
                problems.append((where, f"alias {alias!r}: member {member!r} is not a local"
                                 " address (its domain is not in domains); aliases deliver"
                                 " to local accounts only, remote members are not supported"))
            elif fold(member) in aliases:
                problems.append((where, f"alias {alias!r}: member {member!r} is an alias;"
                                 " aliases cannot contain aliases"))
            elif fold(member) not in exact:
                problems.append((where, f"alias {alias!r}: member {member!r} is not a"
                                 " destination of any account (add it with"
                                 f" `kittiwake address add {member} ACCOUNT`)"))
    return problems


def _domains(config: DomainsConfig) -> list[Problem]:
    problems: list[Problem] = []
    for name, domain in config.domains.items():
        for i, selector in enumerate(domain.dkim.sign):
            if selector not in domain.dkim.selectors:
                problems.append((("domains", name, "dkim", "sign", i),
                                 f"selector {selector!r} is not in dkim.selectors"
                                 f" (known: {_known(domain.dkim.selectors)})"))
        reports = domain.dmarc_reports
        if reports:
            if reports.account not in config.accounts:
                problems.append((("domains", name, "dmarc_reports", "account"),
                                 f"no account {reports.account!r}"
                                 f" (known: {_known(config.accounts)})"))
            why = mailbox_name_problem(reports.mailbox)
            if why:
                problems.append((("domains", name, "dmarc_reports", "mailbox"), why))
        tlsrpt = domain.tlsrpt_reports
        if tlsrpt:
            where = ("domains", name, "tlsrpt_reports")
            if tlsrpt.account not in config.accounts:
                problems.append(((*where, "account"), f"no account {tlsrpt.account!r}"
                                 f" (known: {_known(config.accounts)})"))
            why = mailbox_name_problem(tlsrpt.mailbox)
            if why:
                problems.append(((*where, "mailbox"), why))
            if not tlsrpt.localpart or "@" in tlsrpt.localpart or \
                    any(c.isspace() for c in tlsrpt.localpart):
                problems.append(((*where, "localpart"), f"{tlsrpt.localpart!r} is not a"
                                 " local part (expected e.g. \"tls-reports\")"))
    return problems
