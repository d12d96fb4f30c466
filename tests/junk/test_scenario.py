"""The junk filter as a user meets it: mail over the real MX, rescue over real IMAP."""

from __future__ import annotations

import asyncio
import smtplib

import pytest
from imapclient import IMAPClient
from tests.junk.conftest import PASSWORD, Servers

from kittiwake.store import Flags

SPAM_WORDS = "cheap pills winner casino prize viagra bonus offer click unsubscribe"
HAM_WORDS = "meeting project agenda lunch tomorrow review notes budget minutes"


def message(sender: str, subject: str, body: str, n: int) -> bytes:
    return (f"From: {sender}\r\nTo: alice@example.org\r\nSubject: {subject}\r\n"
            f"Message-ID: <{n}.{sender.replace('@', '.')}>\r\n\r\n{body}\r\n").encode()


async def train(servers: Servers) -> None:
    """Three junk messages in Junk, three read messages in the Inbox: a small training."""
    account = await servers.store.account("alice", default_mailboxes=["Junk"])
    for i in range(3):
        await account.deliver("Junk", message(f"spam{i}@spam.example", "you won",
                                              SPAM_WORDS, 100 + i))
        await account.deliver("Inbox", message(f"colleague{i}@work.example", "project",
                                               HAM_WORDS, 200 + i), flags=Flags.parse(["\\Seen"]))
    await servers.junk.settled()
    stats = await servers.junk.stats("alice")
    assert (stats.ham_messages, stats.junk_messages) == (3, 3)


def sender_dns(servers: Servers) -> None:
    r = servers.resolver
    r.add("TXT", "sender.example", "v=spf1 ip4:127.0.0.1 -all")
    r.add("TXT", "_dmarc.sender.example", "v=DMARC1; p=none")


def imap_headers(port: int, mailbox: str) -> list[str]:
    with IMAPClient("127.0.0.1", port, ssl=False, timeout=10) as c:
        c.login("alice", PASSWORD)
        c.select_folder(mailbox, readonly=True)
        fetched = c.fetch(c.search(["ALL"]), ["BODY.PEEK[HEADER.FIELDS (X-KITTIWAKE-JUNK)]"])
        return [v[b"BODY[HEADER.FIELDS (X-KITTIWAKE-JUNK)]"].decode().strip().replace("\r\n", "")
                for _, v in sorted(fetched.items())]


def imap_rescue(port: int) -> None:
    """The user moves the message out of Junk into the Inbox (RFC 6851 MOVE)."""
    with IMAPClient("127.0.0.1", port, ssl=False, timeout=10) as c:
        c.login("alice", PASSWORD)
        c.select_folder("Junk")
        uids = c.search(["FROM", "carol@sender.example"])
        assert len(uids) == 1
        c.move(uids, "INBOX")


async def test_rescued_sender_goes_to_inbox_next_time(servers: Servers) -> None:
    await train(servers)
    sender_dns(servers)
    spammy = message("carol@sender.example", "you won a prize", SPAM_WORDS, 1)
    await servers.send("bounce@sender.example", spammy)
    [first] = [h for h in await asyncio.to_thread(imap_headers, servers.imap_port, "Junk")
               if "reason=content" in h]
    assert first.startswith("X-Kittiwake-Junk: junk; reason=content; score=")
    assert servers.pauses == [5.0]  # a first-time sender waits before the DATA reply

    await asyncio.to_thread(imap_rescue, servers.imap_port)
    await servers.junk.settled()

    await servers.send("bounce@sender.example",
                       message("carol@sender.example", "you won a prize", SPAM_WORDS, 2))
    inbox = await asyncio.to_thread(imap_headers, servers.imap_port, "INBOX")
    assert inbox[-1] == ("X-Kittiwake-Junk: ham; reason=address-reputation;"
                         " address=carol@sender.example")
    assert servers.pauses == [5.0]  # known now: no second pause
    # The rescue trained the words as ham: 4 ham messages, and 3 junk (the seed).
    stats = await servers.junk.stats("alice")
    assert (stats.ham_messages, stats.junk_messages) == (4, 3)


async def test_junk_flag_from_a_client_makes_the_sender_known_bad(servers: Servers) -> None:
    await train(servers)
    sender_dns(servers)
    await servers.send("bounce@sender.example",
                       message("carol@sender.example", "project", HAM_WORDS, 1))
    assert (await asyncio.to_thread(imap_headers, servers.imap_port, "INBOX"))[-1].startswith(
        "X-Kittiwake-Junk: ham; reason=content; score=0.0")

    def flag_junk() -> None:
        with IMAPClient("127.0.0.1", servers.imap_port, ssl=False, timeout=10) as c:
            c.login("alice", PASSWORD)
            c.select_folder("INBOX")
            c.add_flags(c.search(["FROM", "carol@sender.example"]), ["$Junk"])

    await asyncio.to_thread(flag_junk)
    await servers.junk.settled()
    await servers.send("bounce@sender.example",
                       message("carol@sender.example", "project", HAM_WORDS, 2))
    [header] = (await asyncio.to_thread(imap_headers, servers.imap_port, "Junk"))[-1:]
    assert header == ("X-Kittiwake-Junk: junk; reason=address-reputation;"
                      " address=carol@sender.example")


@pytest.mark.parametrize("servers", [{"min_training_messages": 3, "reject_threshold": 0.95,
                                      "reject_code": 550, "first_time_delay_seconds": 0}],
                         indirect=True)
async def test_rejected_message_is_kept_in_rejects_and_a_rescue_trains(servers: Servers) -> None:
    await train(servers)
    sender_dns(servers)
    with pytest.raises(smtplib.SMTPDataError) as info:
        await servers.send("bounce@sender.example",
                           message("carol@sender.example", "you won", SPAM_WORDS, 1))
    assert info.value.smtp_code == 550 and b"5.7.1" in info.value.smtp_error
    [kept] = await asyncio.to_thread(imap_headers, servers.imap_port, "Rejects")
    assert kept.startswith("X-Kittiwake-Junk: junk; reason=content;")
    assert servers.pauses == []  # delay 0: no pause

    def rescue() -> None:
        with IMAPClient("127.0.0.1", servers.imap_port, ssl=False, timeout=10) as c:
            c.login("alice", PASSWORD)
            c.select_folder("Rejects")
            c.move(c.search(["ALL"]), "INBOX")

    await asyncio.to_thread(rescue)
    await servers.junk.settled()
    stats = await servers.junk.stats("alice")
    assert stats.ham_messages == 4  # the rescued message is ham now
    await servers.send("bounce@sender.example",
                       message("carol@sender.example", "you won", SPAM_WORDS, 2))
    assert (await asyncio.to_thread(imap_headers, servers.imap_port, "INBOX"))[-1] == \
        "X-Kittiwake-Junk: ham; reason=address-reputation; address=carol@sender.example"
