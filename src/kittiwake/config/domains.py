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


class TLSRPTReports(Section):
    """Where TLS reports (RFC 8460) about mail delivered to this domain arrive: the
    address published in _smtp._tls.DOMAIN (rua=mailto:LOCALPART@DOMAIN). Mail to it
    goes to the account's mailbox, and the server reads the reports into its reports
    database (``kittiwake tlsrpt reports``)."""

    localpart: str
    """Local part of the rua address, e.g. "tls-reports"."""

    account: str
    """Account that receives them."""

    mailbox: str = "TLSRPT"
    """Mailbox they are stored in."""


class MTASTSPolicy(Section):
    """The MTA-STS policy (RFC 8461) this server publishes for the domain."""

    policy_id: str = ""
    """The id= in the _mta-sts TXT record (RFC 8461 §3.1: 1 to 32 letters and digits).
    Empty (the default): derived from a hash of the served policy text, so it changes
    exactly when the policy does; ``kittiwake config dnsrecords`` prints the TXT
    record to publish. Set it only to keep an id you published by hand, and change it
    whenever the policy changes."""

    mode: Literal["enforce", "testing", "none"] = "testing"
    """enforce, testing or none (RFC 8461 §3.2)."""

    max_age_seconds: int = Field(86400, ge=1, le=31557600)
    """How long senders may cache the policy."""

    mx: list[str] = []
    """Extra MX host patterns besides this host (e.g. "*.example.org"): the policy's
    mx lines are the host name of the listener that serves smtp, then these."""

    @field_validator("policy_id")
    @classmethod
    def _policy_id(cls, value: str) -> str:
        # RFC 8461 §3.1: sts-id = %s"id=" 1*32(ALPHA / DIGIT)
        if value and not re.fullmatch(r"[A-Za-z0-9]{1,32}", value):
            raise ValueError(f"{value!r} is not an MTA-STS id: 1 to 32 letters and digits"
                             " (RFC 8461 §3.1); leave it empty to derive it from the policy")
        return value

    @field_validator("mx")
    @classmethod
    def _mx_patterns(cls, value: list[str]) -> list[str]:
        from kittiwake.mtasts.policy import PolicyError
        from kittiwake.mtasts.publish import mx_pattern

        try:
            for pattern in value:
                mx_pattern(pattern)
        except PolicyError as exc:
            raise ValueError(f"{exc} (RFC 8461 §3.2: a host name, or *. and a domain)") \
                from None
        return value


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

    tlsrpt_reports: TLSRPTReports | None = None
    """Receive TLS reports (RFC 8460)."""

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


class JunkConfig(Section):
    """The junk filter of an account: sender reputation first, then a content classifier
    trained from the account's Junk and other mailboxes (``kittiwake junk``)."""

    enabled: bool = True
    """Filter incoming (MX) mail for this account."""

    junk_threshold: float = Field(0.9, gt=0.0, lt=1.0)
    """Content score (0 ham .. 1 junk) from which a message goes to the Junk mailbox."""

    reject_threshold: float = Field(0.99, gt=0.0, le=1.0)
    """Content score from which the message is refused in SMTP (kept in Rejects);
    1.0 never rejects on content."""

    reject_code: Literal[451, 550] = 451
    """SMTP reply for a rejected message: 451 (the sender retries, so a rescue from Rejects
    can still let it in) or 550 (refused for good)."""

    known_junk: Literal["junk", "reject"] = "junk"
    """What happens to mail from a sender the user marked as junk before."""

    rejects_days: int = Field(14, ge=1)
    """Days a rejected message stays in the Rejects mailbox before it is removed."""

    first_time_delay_seconds: float = Field(15.0, ge=0.0, le=240.0)
    """Pause before the reply to DATA for a sender never seen before (spam senders often
    give up); 0 turns it off. Not while the account's history holds fewer than
    min_training_messages messages (then every sender is new)."""

    history_days: int = Field(365, ge=1)
    """How far back the sender history counts."""

    min_training_messages: int = Field(25, ge=1)
    """Ham and junk messages each needed in the training before the content classifier
    decides; until then mail from unknown senders is accepted."""

    dnsbl_zones: list[DomainName] = []
    """DNS block lists (RFC 5782) whose listing of the connecting IP counts as a junk
    signal for senders without a good history."""

    junk_mailbox: str = "Junk"
    """Mailbox for junk; moving mail into or out of it trains the filter."""

    rejects_mailbox: str = "Rejects"
    """Mailbox keeping rejected messages for rescue (moving one out trains the filter)."""

    @model_validator(mode="after")
    def _thresholds(self) -> JunkConfig:
        if self.reject_threshold < self.junk_threshold:
            raise ValueError(f"reject_threshold {self.reject_threshold} is below junk_threshold"
                             f" {self.junk_threshold}; expected reject >= junk")
        if self.junk_mailbox.lower() == self.rejects_mailbox.lower():
            raise ValueError("junk_mailbox and rejects_mailbox must be different mailboxes")
        if self.junk_mailbox.lower() == "inbox" or self.rejects_mailbox.lower() == "inbox":
            raise ValueError("the Inbox cannot be the junk or rejects mailbox")
        return self


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

    junk: JunkConfig = JunkConfig()
    """Junk filtering of incoming mail (reputation, content classifier, Rejects)."""

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
