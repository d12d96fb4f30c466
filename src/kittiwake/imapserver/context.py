"""What every IMAP session of one listener shares: store, accounts, TLS, limits."""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from kittiwake.config.domains import DomainsConfig
from kittiwake.config.lookup import AddressIndex
from kittiwake.limits import ConnectionSlots, LoginLimiter
from kittiwake.sasl import Credentials
from kittiwake.store import Store

# SASL mechanisms offered, strongest first (the SMTP server offers the same).
AUTH_MECHANISMS = ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-1",
                   "CRAM-MD5", "PLAIN", "LOGIN")


@dataclass
class IMAPLimits:
    """Timeouts and sizes of IMAP sessions (RFC 9051 §5.4: at least 30 minutes idle)."""

    preauth_timeout: float = 60.0  # before login
    idle_timeout: float = 30 * 60.0  # authenticated, between commands and in IDLE
    max_per_account: int = 100  # open sessions of one account
    max_append: int = 100 * 1024 * 1024  # APPENDLIMIT (RFC 7889), also capped by quota
    bad_commands: int = 20  # BAD replies in a row before BYE
    # NOTIFY (RFC 5465 §5.8): more changes waiting than this, or more octets unread
    # by the client, and the session gets [NOTIFICATIONOVERFLOW] and NOTIFY NONE.
    notify_max_backlog: int = 10_000
    notify_max_unsent: int = 4 * 1024 * 1024
    # Changes of the account waiting for a session that has not read them for
    # unread_changes_seconds (its client stopped reading): above this, the session
    # ends with BYE (kittiwake.store.changes), so a stuck client cannot grow memory.
    max_unread_changes: int = 50_000
    unread_changes_seconds: float = 120.0


@dataclass
class IMAPContext:
    """Shared state for the IMAP services of one listener."""

    hostname: str
    store: Store
    domains: DomainsConfig
    tls_context: ssl.SSLContext | None = None
    # Whether tls_context has a certificate yet (an ACME listener before its first
    # certificate has none): STARTTLS is offered only then.
    tls_ready: Callable[[], bool] = lambda: True
    # DER of the certificate a connection was served, for tls-server-end-point (RFC 5929).
    served_certificate: Callable[[ssl.SSLObject], bytes | None] | None = None
    localserve: bool = False
    # Plain-text LOGIN/AUTHENTICATE without TLS (localserve, or a listener that says so).
    plaintext_login: bool = False
    connections: ConnectionSlots | None = None
    login_limiter: LoginLimiter | None = None
    limits: IMAPLimits = field(default_factory=IMAPLimits)
    sessions_per_account: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index = AddressIndex(self.domains)

    def reload(self, domains: DomainsConfig) -> None:
        """domains.conf changed: new accounts and addresses apply to the next login."""
        self.domains = domains
        self.index = AddressIndex(domains)

    def account_for_login(self, username: str) -> str | None:
        if self.localserve and username not in self.domains.accounts:
            found = self.index.account_for_login(username)
            # localserve: any login name (or kittiwake) means its one account.
            return found or next(iter(self.domains.accounts), None)
        return self.index.account_for_login(username)

    def credentials(self, username: str) -> Credentials | None:
        """Stored SCRAM/CRAM keys of the account a login name means (a worker thread)."""
        account = self.account_for_login(username)
        if account is None:
            return None
        stored = self.store.credentials(account)
        return Credentials.from_dict(json.loads(stored)) if stored else None

    def quota_of(self, account: str) -> int:
        conf = self.domains.accounts.get(account)
        return conf.quota_bytes if conf else 0

    def message_quota_of(self, account: str) -> int:
        """The account's limit on stored messages (RFC 9208 §5.2), 0 for none."""
        conf = self.domains.accounts.get(account)
        return conf.quota_messages if conf else 0

    def inboxes_of(self, account: str) -> set[str]:
        """Mailboxes mail is delivered to (NOTIFY "inboxes", RFC 5465 §6.3): Inbox, each
        destination's mailbox and its rulesets' mailboxes."""
        found = {"Inbox"}
        conf = self.domains.accounts.get(account)
        for dest in conf.destinations.values() if conf else ():
            found.add(dest.mailbox)
            found.update(rs.mailbox for rs in dest.rulesets)
        return found

    def mailboxes_of(self, account: str) -> list[str]:
        conf = self.domains.accounts.get(account)
        return list(conf.mailboxes) if conf else []
