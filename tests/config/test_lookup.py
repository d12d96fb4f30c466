"""Address lookups: catch-alls, separators, case, aliases, rulesets."""

from __future__ import annotations

from kittiwake.config import DomainsConfig
from kittiwake.config.lookup import AccountRecipient, AddressIndex, AliasRecipient, pick_mailbox

CONFIG = DomainsConfig.model_validate({
    "domains": {
        "example.org": {"localpart_catchall_separator": "+"},
        "strict.example": {"localpart_case_sensitive": True},
        "bücher.example": {},
    },
    "accounts": {
        "alice": {"domain": "example.org", "destinations": {
            "alice@example.org": {"rulesets": [
                {"smtp_mailfrom_regexp": "@lists\\.example\\.net$", "mailbox": "Lists"},
                {"header_regexps": {"list-id": "announce"}, "mailbox": "Announce"},
                {"verified_domain": "bank.example", "mailbox": "Bank"},
            ]},
            "Jörg@bücher.example": {},
        }},
        "bob": {"domain": "example.org", "destinations": {
            "bob@example.org": {}, "@example.org": {"mailbox": "Catchall"},
            "Bob@strict.example": {}}},
    },
    "aliases": {"team@example.org": {"addresses": ["alice@example.org", "bob@example.org"]}},
})


def test_exact_case_insensitive_and_separator() -> None:
    index = AddressIndex(CONFIG)
    for local in ("alice", "ALICE", "alice+news"):
        found = index.lookup(local, "Example.ORG")
        assert isinstance(found, AccountRecipient) and found.account == "alice"


def test_case_sensitive_domain() -> None:
    index = AddressIndex(CONFIG)
    assert index.lookup("Bob", "strict.example") is not None
    assert index.lookup("bob", "strict.example") is None


def test_catchall_and_unknown_domain() -> None:
    index = AddressIndex(CONFIG)
    found = index.lookup("nobody", "example.org")
    assert isinstance(found, AccountRecipient) and found.destination.mailbox == "Catchall"
    assert index.lookup("alice", "example.net") is None
    assert not index.is_local_domain("example.net")


def test_utf8_localpart_and_idna_domain() -> None:
    index = AddressIndex(CONFIG)
    found = index.lookup("jörg", "xn--bcher-kva.example")
    assert isinstance(found, AccountRecipient) and found.account == "alice"
    # NFD input (o + combining diaeresis) matches the NFC configured address.
    assert index.lookup("jo\u0308rg", "bücher.example") is not None


def test_alias_expands_to_members() -> None:
    found = AddressIndex(CONFIG).lookup("Team", "example.org")
    assert isinstance(found, AliasRecipient)
    assert [m.account for m in found.members] == ["alice", "bob"]


def test_rulesets_pick_mailbox() -> None:
    dest = CONFIG.accounts["alice"].destinations["alice@example.org"]
    assert pick_mailbox(dest, mailfrom="owner@lists.example.net") == "Lists"
    assert pick_mailbox(dest, headers=[("List-Id", "<announce.example.net>")]) == "Announce"
    assert pick_mailbox(dest, verified_domains=frozenset({"mail.bank.example"})) == "Bank"
    assert pick_mailbox(dest, mailfrom="x@elsewhere.example") == "Inbox"


def test_may_send_as() -> None:
    index = AddressIndex(CONFIG)
    assert index.may_send_as("alice", "alice", "example.org")
    assert not index.may_send_as("alice", "bob", "example.org")
