"""A wrong relay password is retried, not bounced (issue 13 item 3).

The relay is kittiwake's own submission server (real SASL, real TLS); the
queue runs with its scheduler, a controllable clock and DSNs into the
sender's Inbox; ``kittiwake queue list`` is the real CLI over the control
socket.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import random
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from kittiwake.cli.main import cli
from kittiwake.config import DomainsConfig
from kittiwake.config.lookup import AddressIndex
from kittiwake.queue import Envelope, NewRecipient, Queue, Scheduler, Status
from kittiwake.queue.deliver import Deliverer, Relay
from kittiwake.queue.notices import DSNSender
from kittiwake.queue.schedule import MAX_ATTEMPTS
from kittiwake.server.control import ControlServer
from kittiwake.server.queuecontrol import register_control
from kittiwake.smtpclient import TLSMode
from kittiwake.store import Store

PASSWORD = "correct horse battery"  # alice's password on the relay (smtp_server fixture)
MESSAGE = b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\nHi Bob\r\n"
# The sending server's own view: alice is its user (DSNs go to her Inbox there).
SENDER = DomainsConfig.model_validate({
    "domains": {"example.org": {}},
    "accounts": {"alice": {"domain": "example.org",
                           "destinations": {"alice@example.org": {}}}},
})


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


class Outgoing:
    """The sending side: queue, scheduler through the relay, DSNs, control socket, CLI."""

    def __init__(self, relay_server: Any, password: str) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="kwr"))  # short: Unix socket path limit
        self.config_dir = self.root / "config"
        self.config_dir.mkdir()
        (self.config_dir / "kittiwake.conf").write_text(
            'hostname = "mail.sender.example"\ndata_dir = "../data"\n')
        self.clock = Clock()
        self.queue = Queue(self.root / "data", clock=self.clock, rng=random.Random(1))
        self.store = Store(self.root / "store")
        self.dsn = DSNSender(hostname="mail.sender.example", store=self.store,
                             queue=self.queue, index=AddressIndex(SENDER))
        tls = relay_server.client_tls
        tls.check_hostname = False  # connecting by IP; the chain is still verified
        self.relay = Relay("127.0.0.1", relay_server.ports["submission"], TLSMode.STARTTLS,
                           tls, "alice@example.org", password, ["PLAIN"])
        self.deliverer = Deliverer(resolver=relay_server.resolver,
                                   hostname="mail.sender.example",
                                   select=lambda batch: self.relay)
        self.scheduler = Scheduler(self.queue, self.deliverer, clock=self.clock,
                                   on_recorded=self.dsn.on_recorded)
        self.control = ControlServer(self.root / "data" / "ctl")
        register_control(self.control, self.queue)

    async def attempt(self) -> None:
        """One delivery attempt of what is due now, then move the clock a day on."""
        await self.scheduler.dispatch()
        await self.scheduler.wait_idle()
        self.clock.now += timedelta(days=1)

    async def queue_list(self) -> str:
        result = await asyncio.to_thread(
            CliRunner().invoke, cli, ["--config", str(self.config_dir), "queue", "list"])
        assert result.exit_code == 0, result.output
        return result.output

    async def dsns(self) -> list[email.message.EmailMessage]:
        account = await self.store.account("alice")
        return [email.message_from_bytes(await account.read(m.id), policy=email.policy.default)
                for m in await account.messages("Inbox")]  # type: ignore[misc]

    async def close(self) -> None:
        await self.scheduler.close()
        await self.deliverer.close()
        await self.control.close()
        self.queue.close()
        self.store.close()
        shutil.rmtree(self.root, ignore_errors=True)


async def outgoing(smtp_server: Any, password: str) -> Outgoing:
    out = Outgoing(smtp_server, password)
    await out.control.start()
    await out.queue.enqueue(Envelope(mail_from="alice@example.org", account="alice",
                                     recipients=(NewRecipient("bob@example.org"),)), MESSAGE)
    return out


async def test_wrong_relay_password_is_retried_and_shown(smtp_server: Any) -> None:
    out = await outgoing(smtp_server, "typo in the password file")
    try:
        await out.attempt()
        [(_msg, rcpt)] = await out.queue.list()
        assert rcpt.status is Status.QUEUED and rcpt.attempts == 1
        assert rcpt.last_error is not None
        assert rcpt.last_error.text.startswith(
            "relay authentication failed: 535 5.7.8"), rcpt.last_error
        listing = await out.queue_list()
        assert "relay authentication failed: 535" in listing, listing
        assert await out.dsns() == []  # nothing bounced
        assert smtp_server.messages("bob") == []

        out.relay.password = PASSWORD  # the admin fixes the password file
        await out.attempt()
        assert await out.queue.list() == []
        [delivered] = smtp_server.messages("bob")
        assert b"Hi Bob" in delivered
        assert await out.dsns() == []
    finally:
        await out.close()


async def test_the_dsn_goes_out_only_after_the_last_attempt(smtp_server: Any) -> None:
    out = await outgoing(smtp_server, "still wrong")
    try:
        for _ in range(MAX_ATTEMPTS - 1):
            await out.attempt()
        [(_msg, rcpt)] = await out.queue.list()
        assert rcpt.attempts == MAX_ATTEMPTS - 1
        notices = await out.dsns()
        assert [n["Subject"] for n in notices] == ["Delayed Mail (still being retried)"]

        await out.attempt()  # the last one
        assert await out.queue.list() == []
        notices = await out.dsns()
        assert [n["Subject"] for n in notices][-1] == "Undelivered Mail Returned to Sender"
        text = " ".join(next(iter(notices[-1].iter_parts())).get_content().split())
        assert "relay authentication failed: 535 5.7.8" in text
        assert "This mail system (kittiwake) decided this itself" in text
    finally:
        await out.close()
