"""A 250 is a promise: every accepted recipient ends in a mailbox, the queue, or a DSN.

The invariant is checked with hypothesis over random domains.conf contents
(accounts, addresses, catch-alls, aliases with good and bad members,
mailboxes, quotas, postmaster settings) and random recipient lists, against
the real SMTP server in-process: after each transaction every recipient that
got 250 to RCPT and to DATA is looked for in the accounts it may belong to,
in the outgoing queue, and in a DSN to the sender. Configs that `config
test` refuses are also served (built without the cross-checks), so the
delivery path's own refusals are tested too: it must never answer 250 for
mail it then drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from tests.recording_outbox import RecordingOutbox

from kittiwake.config import Account, Alias, Destination, Domain, DomainsConfig
from kittiwake.config.domains import Ruleset
from kittiwake.dns import MockResolver
from kittiwake.smtpserver.context import ServerContext
from kittiwake.smtpserver.service import SMTPService
from kittiwake.store import AccountStore, Store
from kittiwake.store.store import account_dir

SENDER = "carol@sender.example"
DOMAINS = ("a.example", "b.example")
LOCALS = ("x", "y", "team", "postmaster")
ACCOUNTS = ("u1", "u2", "u3")
MAILBOXES = ("Inbox", "Work", "Deep/Sub", "inbox")



# --- a small SMTP client on asyncio streams ----------------------------------------------

class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def reply(self) -> tuple[int, str]:
        lines = []
        while True:
            line = (await asyncio.wait_for(self.reader.readline(), 10)).decode()
            lines.append(line[4:].strip())
            if line[3:4] != "-":
                return int(line[:3]), " ".join(lines)

    async def command(self, line: str) -> tuple[int, str]:
        self.writer.write(line.encode() + b"\r\n")
        await self.writer.drain()
        return await self.reply()


@contextlib.asynccontextmanager
async def client(port: int) -> AsyncIterator[Client]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    c = Client(reader, writer)
    try:
        assert (await c.reply())[0] == 220
        assert (await c.command("EHLO mail.sender.example"))[0] == 250
        yield c
        await c.command("QUIT")
    finally:
        writer.close()


@dataclass
class Outcome:
    rcpt_replies: dict[str, int]
    data_reply: int | None
    token: str


async def transaction(port: int, rcpts: list[str], token: str,
                      mailfrom: str = SENDER) -> Outcome:
    message = (f"From: {mailfrom}\r\nTo: list@example\r\nSubject: {token}\r\n"
               f"Message-ID: <{token}@sender.example>\r\n\r\nbody {token}\r\n")
    async with client(port) as c:
        assert (await c.command(f"MAIL FROM:<{mailfrom}>"))[0] == 250
        replies = {}
        for rcpt in rcpts:
            replies[rcpt] = (await c.command(f"RCPT TO:<{rcpt}>"))[0]
        data_reply = None
        if any(code == 250 for code in replies.values()):
            assert (await c.command("DATA"))[0] == 354
            data_reply = (await c.command(message + "."))[0]
        else:
            await c.command("RSET")
    return Outcome(replies, data_reply, token)


@contextlib.asynccontextmanager
async def server(data_dir: Path, domains: DomainsConfig,
                 postmaster: str = "") -> AsyncIterator[tuple[int, ServerContext, list]]:
    outbox: list[dict[str, object]] = []
    ctx = ServerContext(hostname="mx.example.org", store=Store(data_dir), domains=domains,
                        resolver=MockResolver(), outbox=RecordingOutbox(outbox),
                        postmaster_account=postmaster)
    ctx.limits.command_timeout = 10
    service = SMTPService(ctx, "smtp", ["127.0.0.1"], 0)
    await service.start()
    try:
        yield int(service.addresses()[0].rsplit(":", 1)[1]), ctx, outbox
    finally:
        await service.close(1)
        ctx.store.close()


def stored(data_dir: Path, account: str) -> list[bytes]:
    root = account_dir(data_dir, account)
    if not root.exists():
        return []
    store = AccountStore(account, root)
    try:
        return [store.read(m.id) for box in store.mailboxes() for m in store.messages(box.name)]
    finally:
        store.close()


# --- the oracle: where may a recipient's mail go? ----------------------------------------

def _fold(address: str) -> tuple[str, str]:
    local, at, domain = address.rpartition("@")
    if not at:
        local, domain = address, ""
    return unicodedata.normalize("NFC", local).casefold(), domain.lower()


def candidates(config: DomainsConfig, rcpt: str, postmaster: str) -> set[str]:
    """Accounts that may rightly hold mail for ``rcpt`` (independent of the lookup code)."""
    local, domain = _fold(rcpt)
    found: set[str] = set()
    if local == "postmaster" and (not domain or domain in config.domains):
        if postmaster in config.accounts:
            found.add(postmaster)
        elif not postmaster and config.accounts:
            found.add(next(iter(config.accounts)))
    if domain not in config.domains:
        return found
    sep = config.domains[domain].localpart_catchall_separator
    locals_ = {local, local.split(sep, 1)[0]} if sep else {local}
    for name, account in config.accounts.items():
        for address in account.destinations:
            if _fold(address) in {(lp, domain) for lp in locals_}:
                found.add(name)
    for alias, spec in config.aliases.items():
        if _fold(alias) in {(lp, domain) for lp in locals_}:
            for member in spec.addresses:
                for name, account in config.accounts.items():
                    if any(_fold(a) == _fold(member) for a in account.destinations):
                        found.add(name)
    for name, account in config.accounts.items():
        if any(a.lower() == "@" + domain for a in account.destinations):
            found.add(name)
    return found


def check_invariant(data_dir: Path, config: DomainsConfig, postmaster: str,
                    outcome: Outcome, outbox: list[dict[str, object]]) -> None:
    if outcome.data_reply != 250:
        return  # the sender was told the message was not taken
    token = outcome.token.encode()
    dsns = [bytes(e["data"]) for e in outbox  # type: ignore[call-overload]
            if e["mailfrom"] == "" and e["recipients"] == [SENDER] and token in bytes(
                e["data"])]  # type: ignore[call-overload]
    for rcpt, code in outcome.rcpt_replies.items():
        if code != 250:
            continue
        homes = candidates(config, rcpt, postmaster)
        in_mailbox = any(token in m for name in homes for m in stored(data_dir, name))
        # A DSN names the recipient as given (the domain in lower case: it is one).
        local, at, domain = rcpt.rpartition("@")
        final = f"Final-Recipient: rfc822; {local}{at}{domain.lower()}".encode()
        in_dsn = any(final in d for d in dsns)
        assert in_mailbox or in_dsn, (
            f"{rcpt} got 250 but is in no mailbox of {sorted(homes) or 'no account'}"
            f" and in no DSN; config: {config!r}")


# --- random configs ------------------------------------------------------------------------

addresses = st.sampled_from([f"{lp}@{d}" for lp in LOCALS for d in DOMAINS])
members = st.one_of(addresses, st.sampled_from(["r@remote.example", "nobody@a.example",
                                                "X@A.example"]))


@st.composite
def destinations(draw: st.DrawFn) -> dict[str, Destination]:
    keys = draw(st.lists(st.one_of(addresses, st.sampled_from([f"@{d}" for d in DOMAINS])),
                         min_size=0, max_size=3, unique=True))
    out = {}
    for key in keys:
        rulesets = []
        if draw(st.booleans()):
            rulesets = [Ruleset(smtp_mailfrom_regexp="sender", mailbox=draw(
                st.sampled_from(MAILBOXES)))]
        out[key] = Destination(mailbox=draw(st.sampled_from(MAILBOXES)), rulesets=rulesets)
    return out


@st.composite
def configs(draw: st.DrawFn) -> tuple[DomainsConfig, bool, str]:
    """(config, whether it passes the cross-checks, postmaster_account)."""
    domains = {d: Domain(localpart_catchall_separator=draw(st.sampled_from(["", "+"])))
               for d in DOMAINS}
    accounts = {}
    for name in draw(st.lists(st.sampled_from(ACCOUNTS), min_size=1, max_size=3, unique=True)):
        accounts[name] = Account(domain=draw(st.sampled_from(DOMAINS)),
                                 destinations=draw(destinations()),
                                 quota_bytes=draw(st.sampled_from([0, 0, 0, 1])))
    aliases = {}
    for key in draw(st.lists(addresses, max_size=2, unique=True)):
        aliases[key] = Alias(addresses=draw(st.lists(members, max_size=3)),
                             post_public=draw(st.booleans()))
    postmaster = draw(st.sampled_from(["", "u1", "ghost"]))
    raw = {"domains": domains, "accounts": accounts, "aliases": aliases}
    try:
        config = DomainsConfig.model_validate(
            {k: {n: v.model_dump() for n, v in d.items()} for k, d in raw.items()})
        valid = True
    except ValidationError:
        config = DomainsConfig.model_construct(domains=domains, accounts=accounts,
                                               aliases=aliases, routes=[])
        valid = False
    return config, valid, postmaster


recipients = st.lists(st.one_of(
    addresses, members, st.sampled_from(["postmaster", "Postmaster@B.example", "x+tag@a.example",
                                         "Y@a.example", "carol@elsewhere.example"])),
    min_size=1, max_size=4)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=configs(), rcpts=recipients)
def test_every_accepted_recipient_ends_somewhere(case: tuple[DomainsConfig, bool, str],
                                                 rcpts: list[str]) -> None:
    config, _valid, postmaster = case
    data_dir = Path(tempfile.mkdtemp(prefix="kw-fate-"))

    async def run() -> None:
        async with server(data_dir, config, postmaster) as (port, _ctx, outbox):
            outcome = await transaction(port, rcpts, f"tok{id(rcpts)}")
            check_invariant(data_dir, config, postmaster, outcome, outbox)

    try:
        asyncio.run(run())
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


# --- the instances from the issue, each as a user sees it ----------------------------------

def _config(**extra: object) -> DomainsConfig:
    base: dict[str, object] = {
        "domains": {"kw.example": {}},
        "accounts": {"alice": {"domain": "kw.example",
                               "destinations": {"alice@kw.example": {}}},
                     "bob": {"domain": "kw.example", "destinations": {"bob@kw.example": {}}}},
    }
    base.update(extra)
    return DomainsConfig.model_validate(base)


async def test_alias_without_local_members_is_refused_at_rcpt(tmp_path: Path) -> None:
    """Defence in depth: a config that skipped `config test` still gives no 250."""
    good = _config()
    config = DomainsConfig.model_construct(
        domains=good.domains, accounts=good.accounts, routes=[],
        aliases={"fwd@kw.example": Alias(addresses=["victim@remote.example"],
                                         post_public=True)})
    async with server(tmp_path, config) as (port, _ctx, outbox), client(port) as c:
        assert (await c.command(f"MAIL FROM:<{SENDER}>"))[0] == 250
        assert await c.command("RCPT TO:<fwd@kw.example>") == (
            550, "5.1.1 no such user here: fwd@kw.example")
    assert outbox == []


async def test_postmaster_reaches_the_first_account_by_default(tmp_path: Path) -> None:
    """RFC 5321 §4.5.1, with postmaster_account left empty (the default)."""
    config = _config()
    async with server(tmp_path, config) as (port, _ctx, _outbox):
        outcome = await transaction(port, ["postmaster@kw.example", "postmaster"], "pm1")
    assert outcome.rcpt_replies == {"postmaster@kw.example": 250, "postmaster": 250}
    assert outcome.data_reply == 250
    [message] = stored(tmp_path, "alice")
    assert b"Subject: pm1" in message
    assert stored(tmp_path, "bob") == []


async def test_postmaster_account_setting_is_used(tmp_path: Path) -> None:
    async with server(tmp_path, _config(), postmaster="bob") as (port, _ctx, _outbox):
        outcome = await transaction(port, ["POSTMASTER@kw.example"], "pm2")
    assert outcome.data_reply == 250
    assert [b"Subject: pm2" in m for m in stored(tmp_path, "bob")] == [True]


async def test_recipient_over_quota_gets_a_dsn_when_others_are_delivered(
        tmp_path: Path) -> None:
    config = _config()
    config.accounts["bob"].quota_bytes = 1
    async with server(tmp_path, config) as (port, _ctx, outbox):
        outcome = await transaction(port, ["alice@kw.example", "bob@kw.example"], "quota")
    assert outcome.data_reply == 250
    assert len(stored(tmp_path, "alice")) == 1 and stored(tmp_path, "bob") == []
    [dsn] = outbox
    assert dsn["mailfrom"] == "" and dsn["recipients"] == [SENDER]
    data = bytes(dsn["data"])  # type: ignore[call-overload]
    assert b"Final-Recipient: rfc822; bob@kw.example" in data
    assert b"Action: failed" in data and b"Status: 5.2.2" in data


async def test_recipient_over_its_message_quota_gets_a_dsn(tmp_path: Path) -> None:
    """quota_messages (RFC 9208 §5.2 MESSAGE) holds for SMTP deliveries as for APPEND:
    bob may hold 2 messages; the third is refused with a DSN, alice still gets hers."""
    config = _config()
    config.accounts["bob"].quota_messages = 2
    async with server(tmp_path, config) as (port, _ctx, outbox):
        for i in range(2):
            assert (await transaction(port, ["bob@kw.example"], f"q{i}")).data_reply == 250
        outcome = await transaction(port, ["alice@kw.example", "bob@kw.example"], "third")
    assert outcome.data_reply == 250
    assert len(stored(tmp_path, "alice")) == 1 and len(stored(tmp_path, "bob")) == 2
    [dsn] = outbox
    data = bytes(dsn["data"])  # type: ignore[call-overload]
    assert b"Final-Recipient: rfc822; bob@kw.example" in data
    assert b"Action: failed" in data and b"Status: 5.2.2" in data
    assert b"would hold 3 messages, more than its quota of 2" in data


async def test_destination_mailbox_that_does_not_exist_is_created(tmp_path: Path) -> None:
    config = _config()
    config.accounts["alice"].destinations["alice@kw.example"].mailbox = "Nonexistent"
    async with server(tmp_path, config) as (port, _ctx, _outbox):
        outcome = await transaction(port, ["alice@kw.example"], "newbox")
    assert outcome.data_reply == 250
    store = AccountStore("alice", account_dir(tmp_path, "alice"))
    try:
        [message] = store.messages("Nonexistent")
        assert b"Subject: newbox" in store.read(message.id)
        assert store.messages("Inbox") == []
    finally:
        store.close()


@pytest.mark.parametrize("member", ["victim@remote.example", "bbo@kw.example"])
def test_config_refuses_alias_members_that_are_not_local(member: str) -> None:
    with pytest.raises(ValidationError) as info:
        _config(aliases={"fwd@kw.example": {"addresses": [member]}})
    [error] = info.value.errors()
    assert error["loc"] == ("aliases", "fwd@kw.example", "addresses", 0)


async def test_every_recipients_fate_is_logged(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    config = _config(aliases={"team@kw.example": {"addresses": ["alice@kw.example",
                                                                "bob@kw.example"],
                                                  "post_public": True}})
    config.accounts["bob"].quota_bytes = 1
    with caplog.at_level(logging.INFO, logger="kittiwake.smtpserver"):
        async with server(tmp_path, config) as (port, _ctx, _outbox):
            outcome = await transaction(port, ["alice@kw.example", "nobody@kw.example",
                                               "team@kw.example"], "fates")
    assert outcome.data_reply == 250
    fates = [(r.getMessage(), r.kw_fields) for r in caplog.records  # type: ignore[attr-defined]
             if r.getMessage() in ("rcpt accepted", "rcpt refused", "delivered",
                                   "delivery failed", "failure notice queued")]
    uid = next(f["uid"] for m, f in fates if m == "delivered")
    assert fates == [
        ("rcpt accepted", {"rcpt": "alice@kw.example", "to": "account alice"}),
        ("rcpt refused", {"rcpt": "nobody@kw.example", "code": 550,
                          "reason": "5.1.1 no such user here: nobody@kw.example"}),
        ("rcpt accepted", {"rcpt": "team@kw.example", "to": "alias alice,bob"}),
        ("delivered", {"rcpt": "alice@kw.example", "account": "alice", "mailbox": "Inbox",
                       "uid": uid, "size": fates[3][1]["size"]}),
        ("delivered", {"rcpt": "team@kw.example", "account": "alice", "mailbox": "Inbox",
                       "uid": uid, "copy": "shared"}),
        ("delivery failed", {"rcpt": "team@kw.example", "account": "bob",
                             "reason": fates[5][1]["reason"]}),
        ("failure notice queued", {"to": SENDER, "ids": "1"}),
    ]
    assert "quota" in fates[5][1]["reason"]


async def test_failure_notice_to_a_local_sender_goes_to_its_mailbox(tmp_path: Path) -> None:
    config = _config()
    config.accounts["bob"].quota_bytes = 1
    async with server(tmp_path, config) as (port, _ctx, outbox):
        outcome = await transaction(port, ["alice@kw.example", "bob@kw.example"], "local",
                                    mailfrom="alice@kw.example")
    assert outcome.data_reply == 250
    assert outbox == []
    original, notice = sorted(stored(tmp_path, "alice"), key=lambda m: b"Return-Path: <>" in m)
    assert b"Subject: local" in original
    assert notice.startswith(b"Return-Path: <>\r\n")
    assert b"Final-Recipient: rfc822; bob@kw.example" in notice
