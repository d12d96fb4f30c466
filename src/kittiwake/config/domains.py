"""The dynamic configuration, ``domains.conf``: reloaded while running.

Domains (DKIM selectors, DMARC/MTA-STS/TLSRPT settings), accounts with their
destinations (addresses, catch-alls, rulesets that pick a mailbox), and
aliases. ``kittiwake account`` and ``kittiwake address`` commands edit this
file atomically; the running server notices and reloads it.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails

from kittiwake.config.base import DomainName, Section
from kittiwake.config.transports import Route


class DKIMSelector(Section):
    """One DKIM key (RFC 6376) published at SELECTOR._domainkey.DOMAIN."""

    private_key_file: str
    """PEM private key, RSA (2048 bits or more) or Ed25519 (RFC 8463)."""

    headers: list[str] = []
    """Header fields to sign; empty means kittiwake's default list (From, To, Subject, ...)."""

    canonicalization: Literal["relaxed/relaxed", "relaxed/simple", "simple/relaxed",
                              "simple/simple"] = "relaxed/relaxed"
    """Header/body canonicalization (RFC 6376 §3.4)."""

    expiration_seconds: int = Field(0, ge=0)
    """Signature lifetime (x= tag); 0 means signatures do not expire."""

    @field_validator("headers")
    @classmethod
    def _signed_headers(cls, value: list[str]) -> list[str]:
        for name in value:
            # RFC 5322 §3.6.8: field-name = 1*ftext, printable US-ASCII except ":".
            if not name or not all("!" <= c <= "~" and c != ":" for c in name):
                raise ValueError(f"{name!r} is not a header field name")
        if value and "from" not in (n.lower() for n in value):
            raise ValueError("the signed header fields must include From (RFC 6376 §5.4);"
                             " leave the list empty for the default")
        return value


class DKIMConfig(Section):
    """DKIM signing for a domain."""

    selectors: dict[str, DKIMSelector] = {}
    """Keys by selector name."""

    sign: list[str] = []
    """Selectors to sign outgoing mail with (e.g. one RSA and one Ed25519)."""


class DMARCReports(Section):
    """Where aggregate DMARC reports for this domain arrive."""

    localpart: str
    """Local part of the rua address, e.g. "dmarc-reports"."""

    account: str
    """Account that receives them."""

    mailbox: str = "DMARC"
    """Mailbox they are stored in."""


class MTASTSPolicy(Section):
    """The MTA-STS policy (RFC 8461) this server publishes for the domain."""

    policy_id: str
    """The id= in the _mta-sts TXT record; change it when the policy changes."""

    mode: Literal["enforce", "testing", "none"] = "testing"
    """enforce, testing or none (RFC 8461 §3.2)."""

    max_age_seconds: int = Field(86400, ge=1, le=31557600)
    """How long senders may cache the policy."""

    mx: list[str] = []
    """Extra MX host patterns besides this host (e.g. "*.example.org")."""


class Domain(Section):
    """A domain this server receives mail for."""

    description: str = ""
    """Free text for administrators."""

    localpart_catchall_separator: str = ""
    """Separator for sub-addressing, e.g. "+" makes user+tag@ deliver to user@."""

    localpart_case_sensitive: bool = False
    """Whether User@ and user@ are different addresses (RFC 5321 allows it; few want it)."""

    dkim: DKIMConfig = DKIMConfig()
    """DKIM signing keys."""

    dmarc_reports: DMARCReports | None = None
    """Receive DMARC aggregate reports."""

    mta_sts: MTASTSPolicy | None = None
    """Publish an MTA-STS policy."""

    routes: list[Route] = []
    """Routes for mail sent from this domain, tried in order after the sending account's
    routes and before the global routes; the first match picks the transport."""


class Ruleset(Section):
    """Picks a mailbox for incoming mail; every given condition must match."""

    smtp_mailfrom_regexp: str = ""
    """Regular expression on the SMTP MAIL FROM address."""

    msg_from_regexp: str = ""
    """Regular expression on the message From address."""

    verified_domain: str = ""
    """Match only when mail from this domain is verified (SPF pass or aligned DKIM pass)."""

    header_regexps: dict[str, str] = {}
    """Header field name (lower case) to a regular expression on its value."""

    mailbox: str
    """Mailbox to deliver to when the ruleset matches."""

    @field_validator("verified_domain")
    @classmethod
    def _verified_domain(cls, value: str) -> str:
        from kittiwake.config.base import _check_domain

        return _check_domain(value) if value else value

    @field_validator("smtp_mailfrom_regexp", "msg_from_regexp")
    @classmethod
    def _regexp(cls, value: str) -> str:
        _compile(value)
        return value

    @field_validator("header_regexps")
    @classmethod
    def _regexps(cls, value: dict[str, str]) -> dict[str, str]:
        for pattern in value.values():
            _compile(pattern)
        return {k.lower(): v for k, v in value.items()}


def _compile(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"bad regular expression {pattern!r}: {exc}") from None


class Destination(Section):
    """Where mail for one address (or "@domain" catch-all) goes."""

    mailbox: str = "Inbox"
    """Default mailbox."""

    rulesets: list[Ruleset] = []
    """Evaluated in order; the first match picks the mailbox."""

    full_name: str = ""
    """Display name used when sending from this address."""


class Account(Section):
    """A user's account: one mail store, one password, many addresses."""

    domain: DomainName
    """Default domain of the account."""

    full_name: str = ""
    """Display name."""

    destinations: dict[str, Destination] = {}
    """Addresses delivered to this account: "user@example.org", or "@example.org" for
    a catch-all of the domain."""

    quota_bytes: int = Field(0, ge=0)
    """Total size of stored messages allowed; 0 means no limit."""

    quota_messages: int = Field(0, ge=0)
    """Number of stored messages allowed, all mailboxes together (IMAP QUOTA
    resource MESSAGE, RFC 9208 §5.2; enforced on IMAP APPEND and COPY); 0 means
    no limit."""

    mailboxes: list[str] = ["Inbox", "Sent", "Drafts", "Trash", "Archive", "Junk"]
    """Mailboxes created for a new account (special-use flags by name, RFC 6154)."""

    routes: list[Route] = []
    """Routes for mail this account sends, tried in order before the sender domain's
    routes and the global routes; the first match picks the transport."""

    @field_validator("destinations")
    @classmethod
    def _destination_keys(cls, value: dict[str, Destination]) -> dict[str, Destination]:
        for address in value:
            if "@" not in address:
                raise ValueError(f"destination {address!r}: expected user@domain or @domain")
        return value


class Alias(Section):
    """An address that expands to local addresses (a small list).

    Members are delivered to locally; forwarding to other servers is not
    supported, so a member must be an address (not a catch-all) of an account
    here: ``config test`` refuses any other member, as mail to it would be lost."""

    addresses: list[str]
    """Member addresses; each must be an address of some account (not a remote address)."""

    post_public: bool = False
    """Whether anyone may send to it; otherwise only members."""

    list_members: bool = False
    """Whether members may see who the other members are."""


class DomainsConfig(Section):
    """domains.conf: domains, accounts and aliases; reloaded on change."""

    domains: dict[DomainName, Domain] = {}
    """Domains handled by this server."""

    accounts: dict[str, Account] = {}
    """Accounts by name."""

    aliases: dict[str, Alias] = {}
    """Aliases by address, e.g. "team@example.org"."""

    routes: list[Route] = []
    """Global routes for outgoing mail, tried after account and domain routes; the first
    match picks the transport; no match means direct delivery to the MX hosts."""

    @model_validator(mode="after")
    def _references(self) -> DomainsConfig:
        from kittiwake.config.references import check

        problems = check(self)
        if problems:
            raise ValidationError.from_exception_data("DomainsConfig", [
                InitErrorDetails(type="value_error", loc=loc, input=None,
                                 ctx={"error": ValueError(message)})
                for loc, message in problems])
        return self


def _ascii(domain: str) -> str:
    from kittiwake.dns.names import domain_key

    return domain_key(domain)
