"""Abuse limits as a client sees them through the real listener.

Clients bind distinct loopback addresses (127.0.0.2, 127.0.1.3, ...) to act as
different IPs. Time is a fake clock; the login limiter's delays go through a
sleep that records them, so nothing here waits for real.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import smtplib
import subprocess

from kittiwake import metrics
from kittiwake.limits import ConnectionSlots, LoginLimiter, LoginPolicy
from kittiwake.smtpserver.ratelimit import Limiter
from kittiwake.smtpserver.service import SMTPService

PASSWORD = "correct horse battery"


class FakeTime:
    def __init__(self) -> None:
        self.now = 5000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class Client:
    """A raw TCP client from a chosen source address."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 greeting: str) -> None:
        self.reader, self.writer, self.greeting = reader, writer, greeting

    @classmethod
    async def connect(cls, port: int, ip: str) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(ip, 0))
        greeting = (await asyncio.wait_for(reader.readline(), 10)).decode()
        return cls(reader, writer, greeting)

    async def command(self, line: str) -> str:
        self.writer.write(line.encode() + b"\r\n")
        await self.writer.drain()
        return (await asyncio.wait_for(self.reader.readline(), 10)).decode()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


async def greeting_from(port: int, ip: str) -> str:
    client = await Client.connect(port, ip)
    await client.close()
    return client.greeting


async def released(slots: ConnectionSlots, ip: str, want: int = 0) -> None:
    """Wait (bounded) until the server has let go of the connections from ``ip``."""
    async with asyncio.timeout(10):
        while slots.open_from(ip) > want:
            await asyncio.sleep(0.01)


# --- open connections per IP and in all -------------------------------------


async def test_connection_past_the_per_ip_limit_gets_421(smtp_server) -> None:  # type: ignore[no-untyped-def]
    smtp_server.ctx.connections = ConnectionSlots(max_total=1000, max_per_ip=3)
    port = smtp_server.ports["smtp"]
    held = [await Client.connect(port, "127.0.0.2") for _ in range(3)]
    assert all(c.greeting.startswith("220 ") for c in held)
    assert (await greeting_from(port, "127.0.0.2")).startswith("421 4.7.0 ")
    # The first three are still served, and another address is not affected.
    assert [(await c.command("NOOP"))[:3] for c in held] == ["250"] * 3
    assert (await greeting_from(port, "127.0.0.3")).startswith("220 ")
    for c in held:
        await c.close()


async def test_refused_connections_do_not_free_slots(smtp_server) -> None:  # type: ignore[no-untyped-def]
    slots = smtp_server.ctx.connections = ConnectionSlots(max_total=10_000, max_per_ip=20)
    port = smtp_server.ports["smtp"]
    held = [await Client.connect(port, "127.0.0.2") for _ in range(20)]
    assert all(c.greeting.startswith("220 ") for c in held)
    refused: list[str] = []
    for _ in range(40):
        refused += await asyncio.gather(*(greeting_from(port, "127.0.0.2") for _ in range(50)))
    assert len(refused) == 2000
    assert all(g.startswith("421 ") for g in refused), \
        f"{sum(not g.startswith('421 ') for g in refused)} of 2000 were let in"
    assert (await greeting_from(port, "127.0.0.2")).startswith("421 ")
    assert [(await c.command("NOOP"))[:3] for c in held] == ["250"] * 20
    # Once they close, the address gets exactly its 20 again.
    for c in held:
        await c.close()
    await released(slots, "127.0.0.2")
    again = [await Client.connect(port, "127.0.0.2") for _ in range(20)]
    assert all(c.greeting.startswith("220 ") for c in again)
    assert (await greeting_from(port, "127.0.0.2")).startswith("421 ")
    for c in again:
        await c.close()


async def test_server_wide_connection_limit(smtp_server) -> None:  # type: ignore[no-untyped-def]
    slots = smtp_server.ctx.connections = ConnectionSlots(max_total=3, max_per_ip=20)
    # The limit is for all listeners together.
    held = [await Client.connect(smtp_server.ports["smtp"], "127.0.0.2"),
            await Client.connect(smtp_server.ports["submission"], "127.0.0.3"),
            await Client.connect(smtp_server.ports["smtp"], "127.0.0.4")]
    assert all(c.greeting.startswith("220 ") for c in held)
    assert (await greeting_from(smtp_server.ports["submission"], "127.0.0.5")
            ).startswith("421 4.3.2 ")
    await held[0].close()
    await released(slots, "127.0.0.2")
    assert (await greeting_from(smtp_server.ports["submission"], "127.0.0.5")
            ).startswith("220 ")
    for c in held[1:]:
        await c.close()


async def test_connection_rate_per_network(smtp_server) -> None:  # type: ignore[no-untyped-def]
    t = FakeTime()
    # Per minute: 100 per address, 3 per /26, 1000 per /21.
    smtp_server.ctx.connection_rate = Limiter(60.0, (100, 3, 1000), t.clock)
    port = smtp_server.ports["smtp"]
    for ip in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
        assert (await greeting_from(port, ip)).startswith("220 ")
    # A fourth address in 127.0.0.0/26 is refused: the network has used its share.
    assert (await greeting_from(port, "127.0.0.5")).startswith("421 4.7.0 ")
    assert (await greeting_from(port, "127.0.0.100")).startswith("220 ")  # another /26
    t.now += 121  # two windows later
    assert (await greeting_from(port, "127.0.0.5")).startswith("220 ")


def listen_backlog(port: int) -> int:
    """The backlog of the listening socket on ``port``, as ss(8) shows it (Send-Q)."""
    # iproute2 is installed by scripts/install-peers.sh: missing, the test fails.
    assert shutil.which("ss"), "ss (iproute2) is not installed: run scripts/install-peers.sh"
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True,
                         check=True).stdout.split()
    return int(out[2])


async def test_listen_backlog_is_configurable(smtp_server) -> None:  # type: ignore[no-untyped-def]
    assert listen_backlog(smtp_server.ports["smtp"]) == 1024  # the default
    smtp_server.ctx.limits.listen_backlog = 300
    service = SMTPService(smtp_server.ctx, "smtp", ["127.0.0.1"], 0)
    await service.start()
    try:
        assert listen_backlog(int(service.addresses()[0].rsplit(":", 1)[1])) == 300
    finally:
        await service.close(1)


# --- failed logins --------------------------------------------------------------


def login(server, ip: str, user: str, password: str) -> tuple[int, bytes]:  # type: ignore[no-untyped-def]
    """One AUTH PLAIN attempt on the submission port from ``ip``: (code, text)."""
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=10,
                      source_address=(ip, 0)) as client:
        client.starttls(context=server.client_tls)
        client.ehlo("laptop.example")
        client.user, client.password = user, password
        try:
            return client.auth("PLAIN", client.auth_plain)
        except smtplib.SMTPAuthenticationError as exc:
            return exc.smtp_code, exc.smtp_error


def limit_logins(server, **policy: float) -> FakeTime:  # type: ignore[no-untyped-def]
    t = FakeTime()
    server.ctx.login_limiter = LoginLimiter(LoginPolicy(**policy), clock=t.clock, sleep=t.sleep)
    return t


async def attempt(server, ip: str, user: str, password: str = PASSWORD) -> tuple[int, bytes]:  # type: ignore[no-untyped-def]
    return await asyncio.to_thread(login, server, ip, user, password)


WRONG = (535, b"5.7.8 authentication failed")


def limited(result: str) -> float:
    """kittiwake_smtpserver_logins_limited_total{result} as the metrics listener shows it."""
    value = metrics.REGISTRY.get_sample_value("kittiwake_smtpserver_logins_limited_total",
                                              {"result": result})
    assert value is not None
    return value


async def test_a_guessing_address_is_refused_while_the_owner_logs_in(smtp_server) -> None:  # type: ignore[no-untyped-def]
    t = limit_logins(smtp_server, ip_failures_before_delay=2, ip_max_failures=5,
                     account_failures_before_delay=10, max_delay=4.0)
    refused_before = limited("refused")
    for _ in range(5):
        assert await attempt(smtp_server, "127.0.0.2", "alice@example.org", "guess") == WRONG
    # Its attempts were slowed down, more and more: 0.5 s, then 1 s, then 2 s.
    assert t.slept == [0.5, 1.0, 2.0]
    # Now even the right password from there gets the wrong-password answer, as late
    # as the slowest wrong one ...
    assert await attempt(smtp_server, "127.0.0.2", "alice@example.org") == WRONG
    assert t.slept[3:] == [4.0]
    assert limited("refused") == refused_before + 1
    # ... while the owner, elsewhere, logs in at once.
    slept = len(t.slept)
    assert (await attempt(smtp_server, "127.0.1.3", "alice@example.org"))[0] == 235
    assert len(t.slept) == slept


async def test_the_owner_gets_in_while_strangers_hammer_the_account(smtp_server) -> None:  # type: ignore[no-untyped-def]
    t = limit_logins(smtp_server, ip_failures_before_delay=3, ip_max_failures=10,
                     network_max_failures=8, account_failures_before_delay=5,
                     max_delay=5.0)
    assert (await attempt(smtp_server, "127.0.0.3", "alice@example.org"))[0] == 235
    # Strangers: ten addresses in the owner's /24, and ten elsewhere, 2 wrong passwords each.
    strangers = [f"127.0.0.{10 + i}" for i in range(10)] + [f"127.0.{10 + i}.1" for i in range(10)]
    for ip in strangers:
        for _ in range(2):
            assert await attempt(smtp_server, ip, "alice@example.org", "guess") == WRONG
    # The owner's right password still works from the usual address, without delay ...
    slept = len(t.slept)
    assert (await attempt(smtp_server, "127.0.0.3", "alice@example.org"))[0] == 235
    assert len(t.slept) == slept
    # ... and from an unfamiliar network, after a delay but not refused.
    assert (await attempt(smtp_server, "127.0.99.7", "alice"))[0] == 235
    assert t.slept[slept:] == [5.0]
    # The strangers' network is refused for an account nobody logged in to from there.
    assert await attempt(smtp_server, "127.0.0.200", "bob@example.org") == WRONG


async def test_every_login_name_of_an_account_counts_for_it(smtp_server) -> None:  # type: ignore[no-untyped-def]
    t = limit_logins(smtp_server, ip_failures_before_delay=5, ip_max_failures=10,
                     account_failures_before_delay=2, max_delay=5.0)
    assert await attempt(smtp_server, "127.0.2.1", "alice", "guess") == WRONG
    assert await attempt(smtp_server, "127.0.3.1", "alice@example.org", "guess") == WRONG
    assert t.slept == []
    # Two failures on the account, under two of its names: the next login to it from a
    # new place is slowed, whichever name it uses; bob is not.
    assert (await attempt(smtp_server, "127.0.4.1", "alice"))[0] == 235
    assert (await attempt(smtp_server, "127.0.5.1", "bob"))[0] == 235
    assert t.slept == [0.5]


async def test_limits_do_not_reveal_which_accounts_exist(smtp_server) -> None:  # type: ignore[no-untyped-def]
    t = limit_logins(smtp_server, ip_failures_before_delay=5, ip_max_failures=10,
                     account_failures_before_delay=2, max_delay=5.0)
    answers = {}
    for user in ("alice@example.org", "nobody@example.org"):
        for i in range(2):
            assert await attempt(smtp_server, f"127.0.{20 + i}.1", user, "guess") == WRONG
        before = len(t.slept)
        answers[user] = (await attempt(smtp_server, "127.0.30.1", user, "guess"),
                         t.slept[before:])
    assert answers["alice@example.org"] == answers["nobody@example.org"] == (WRONG, [0.5])


def refusals(kind: str) -> float:
    """kittiwake_smtpserver_ratelimit_refusals_total{kind}."""
    value = metrics.REGISTRY.get_sample_value("kittiwake_smtpserver_ratelimit_refusals_total",
                                              {"kind": kind})
    assert value is not None
    return value


async def test_refusals_are_counted_by_kind(smtp_server) -> None:  # type: ignore[no-untyped-def]
    slots = smtp_server.ctx.connections = ConnectionSlots(max_total=2, max_per_ip=1)
    t = FakeTime()
    smtp_server.ctx.connection_rate = Limiter(60.0, (100, 2, 1000), t.clock)
    port = smtp_server.ports["smtp"]
    kinds = ("per-ip-connections", "total-connections", "connection-rate")
    before = {k: refusals(k) for k in kinds}

    def open_now() -> float | None:
        return metrics.REGISTRY.get_sample_value("kittiwake_smtpserver_open_connections",
                                                 {"service": "smtp"})

    open_before = open_now() or 0.0
    held = [await Client.connect(port, "127.0.0.2")]
    assert (await greeting_from(port, "127.0.0.2")).startswith("421 4.7.0 ")  # per IP
    held.append(await Client.connect(port, "127.0.0.3"))
    assert open_now() == open_before + 2  # greeted sessions; refused ones never count
    assert (await greeting_from(port, "127.0.0.4")).startswith("421 4.3.2 ")  # in all
    for c in held:
        await c.close()
    await released(slots, "127.0.0.2")
    await released(slots, "127.0.0.3")
    # 127.0.0.2 and .3 used the /26's two new connections this minute.
    assert (await greeting_from(port, "127.0.0.5")).startswith("421 4.7.0 ")
    assert {k: refusals(k) - before[k] for k in kinds} == dict.fromkeys(kinds, 1)
