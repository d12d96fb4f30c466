"""Which account (and mailbox) an address delivers to.

Built from domains.conf on every (re)load. Matching follows what users
expect of a mail server: domains compare case-insensitively (as A-labels);
localparts case-insensitively unless the domain says otherwise (RFC 5321
§2.4 allows case-sensitive localparts; almost nobody wants them); UTF-8
localparts (RFC 6531) are NFC-normalised; with a catch-all separator,
``user+tag@`` delivers like ``user@``; then aliases; then ``@domain``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from kittiwake.config.domains import Destination, DomainsConfig, Ruleset


@dataclass(frozen=True)
class AccountRecipient:
    """Mail for an address goes to this account and destination."""

    account: str
    address: str  # the destination key that matched ("user@domain" or "@domain")
    destination: Destination


@dataclass(frozen=True)
class AliasRecipient:
    """An alias: expands to member accounts."""

    alias: str
    members: tuple[AccountRecipient, ...]
    post_public: bool
    member_addresses: tuple[str, ...]


Recipient = AccountRecipient | AliasRecipient


def _fold_local(localpart: str, case_sensitive: bool) -> str:
    local = unicodedata.normalize("NFC", localpart)
    return local if case_sensitive else local.casefold()


def _ascii_domain(domain: str) -> str:
    # The one mail-domain normaliser (UTS #46 mapping, IDNA 2008 refusals):
    # "kw．example" finds kw.example, "\u200bkw.example" finds nothing.
    from kittiwake.dns.names import domain_key

    return domain_key(domain)


class AddressIndex:
    """Fast address lookups for one version of domains.conf."""

    def __init__(self, config: DomainsConfig) -> None:
        self.config = config
        self._exact: dict[tuple[str, str], AccountRecipient] = {}
        self._catchall: dict[str, AccountRecipient] = {}
        self._aliases: dict[tuple[str, str], str] = {}
        for name, account in config.accounts.items():
            for key, destination in account.destinations.items():
                local, _, domain = key.rpartition("@")
                domain = _ascii_domain(domain)
                recipient = AccountRecipient(name, key, destination)
                if not local:
                    self._catchall[domain] = recipient
                else:
                    self._exact[(self._fold(local, domain), domain)] = recipient
        for domain_name, settings in config.domains.items():
            # The TLS report address delivers to its account unless a destination
            # of that address says otherwise.
            tlsrpt = settings.tlsrpt_reports
            if tlsrpt is not None and tlsrpt.account in config.accounts:
                domain = _ascii_domain(domain_name)
                key = f"{tlsrpt.localpart}@{domain}"
                self._exact.setdefault((self._fold(tlsrpt.localpart, domain), domain),
                                       AccountRecipient(tlsrpt.account, key,
                                                        Destination(mailbox=tlsrpt.mailbox)))
        # A domain's DMARC report address (domains.conf dmarc_reports) delivers into the
        # named account and mailbox, unless a destination of that address says otherwise.
        for domain_name, settings in config.domains.items():
            reports = settings.dmarc_reports
            if reports is None or reports.account not in config.accounts:
                continue
            domain = _ascii_domain(domain_name)
            key = (self._fold(reports.localpart, domain), domain)
            if key not in self._exact:
                self._exact[key] = AccountRecipient(
                    reports.account, f"{reports.localpart}@{domain_name}",
                    Destination(mailbox=reports.mailbox))
        for key in config.aliases:
            local, _, domain = key.rpartition("@")
            domain = _ascii_domain(domain)
            self._aliases[(self._fold(local, domain), domain)] = key

    def _fold(self, local: str, domain: str) -> str:
        settings = self.config.domains.get(domain)
        return _fold_local(local, bool(settings and settings.localpart_case_sensitive))

    def is_local_domain(self, domain: str) -> bool:
        return _ascii_domain(domain) in self.config.domains

    def lookup(self, localpart: str, domain: str) -> Recipient | None:
        """The recipient for ``localpart@domain``, or None when unknown (reject at RCPT)."""
        domain = _ascii_domain(domain)
        settings = self.config.domains.get(domain)
        if settings is None:
            return None
        local = self._fold(localpart, domain)
        candidates = [local]
        sep = settings.localpart_catchall_separator
        if sep and sep in local:
            candidates.append(local.split(sep, 1)[0])
        for candidate in candidates:
            found = self._exact.get((candidate, domain))
            if found:
                return found
            alias = self._aliases.get((candidate, domain))
            if alias:
                return self._expand(alias)
        return self._catchall.get(domain)

    def _expand(self, alias: str) -> AliasRecipient:
        spec = self.config.aliases[alias]
        members: list[AccountRecipient] = []
        for address in spec.addresses:
            local, _, domain = address.rpartition("@")
            found = self._exact.get((self._fold(local, _ascii_domain(domain)),
                                     _ascii_domain(domain)))
            if found and found not in members:
                members.append(found)
        return AliasRecipient(alias, tuple(members), spec.post_public, tuple(spec.addresses))

    def account_for_login(self, username: str) -> str | None:
        """The account a login name means: one of its addresses, or the account name.

        Every protocol that logs in (SMTP AUTH, IMAP LOGIN/AUTHENTICATE) uses
        this, so the login limiter counts all names of an account as one.
        """
        if "@" in username:
            local, _, domain = username.rpartition("@")
            try:
                found = self.lookup(local, domain)
            except ValueError:
                return None
            return found.account if isinstance(found, AccountRecipient) else None
        return username if username in self.config.accounts else None

    def addresses_of(self, account: str) -> list[str]:
        """The addresses an account may send as (its destinations; catch-alls excluded)."""
        acc = self.config.accounts.get(account)
        return [] if acc is None else [d for d in acc.destinations if not d.startswith("@")]

    def may_send_as(self, account: str, localpart: str, domain: str) -> bool:
        """Whether ``account`` may use ``localpart@domain`` as From (submission)."""
        found = self.lookup(localpart, domain)
        return isinstance(found, AccountRecipient) and found.account == account


def pick_mailbox(destination: Destination, *, mailfrom: str = "", msg_from: str = "",
                 verified_domains: frozenset[str] = frozenset(),
                 headers: list[tuple[str, str]] | None = None) -> str:
    """The mailbox for a message: the first matching ruleset, else the default."""
    for ruleset in destination.rulesets:
        if _matches(ruleset, mailfrom, msg_from, verified_domains, headers or []):
            return ruleset.mailbox
    return destination.mailbox


def _matches(rule: Ruleset, mailfrom: str, msg_from: str, verified: frozenset[str],
             headers: list[tuple[str, str]]) -> bool:
    if rule.smtp_mailfrom_regexp and not re.search(rule.smtp_mailfrom_regexp, mailfrom, re.I):
        return False
    if rule.msg_from_regexp and not re.search(rule.msg_from_regexp, msg_from, re.I):
        return False
    if rule.verified_domain:
        want = _ascii_domain(rule.verified_domain)
        if not any(d == want or d.endswith("." + want) for d in verified):
            return False
    for name, pattern in rule.header_regexps.items():
        values = [v for k, v in headers if k.lower() == name]
        if not any(re.search(pattern, v, re.I) for v in values):
            return False
    return True
