"""kittiwake.conf ``[limits]``: connection and failed-login limits.

The login limits feed :class:`kittiwake.limits.LoginPolicy`, whose docstring
explains the policy: an address pays for its own failures (delay, then
refusal), a network is refused past its own count, and an account's count
only slows strangers down, so nobody can lock the owner out.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from kittiwake.config.base import Section


class LoginLimits(Section):
    """Failed logins (SMTP AUTH; IMAP uses the same limits)."""

    window_minutes: float = Field(15.0, gt=0, le=24 * 60)
    """How long a failed login counts, in minutes."""

    ip_failures_before_delay: int = Field(3, ge=0, le=1000)
    """Failures from one address (IPv4, or IPv6 /64) before its attempts are slowed: each
    further attempt waits, doubling from 0.5 seconds up to max_delay_seconds."""

    ip_max_failures: int = Field(10, ge=1, le=10_000)
    """Failures from one address after which it is refused until they age out of the
    window. A refusal looks like a wrong password."""

    network_max_failures: int = Field(30, ge=1, le=100_000)
    """Failures from one network (IPv4 /24, IPv6 /48) after which the network is refused,
    except for an account someone logged in to from that network before (see trust_days)."""

    account_failures_before_delay: int = Field(5, ge=0, le=10_000)
    """Failures on one account (counted over all its login names, from anywhere) before
    logins to it from unfamiliar places are slowed, up to max_delay_seconds. This count
    only slows, it never refuses: strangers cannot lock the owner out."""

    max_delay_seconds: float = Field(5.0, ge=0, le=60)
    """Longest delay before a login attempt is answered."""

    trust_days: float = Field(30.0, ge=0, le=365)
    """How long a successful login is remembered for that account: its address is then
    not slowed by the account's failures, and its network not refused for the network's."""

    @model_validator(mode="after")
    def _ordered(self) -> LoginLimits:
        if self.ip_failures_before_delay > self.ip_max_failures:
            raise ValueError(f"ip_failures_before_delay ({self.ip_failures_before_delay}) is "
                             f"more than ip_max_failures ({self.ip_max_failures}): expected at"
                             " most as many")
        return self


class LimitsConfig(Section):
    """Limits against abuse, for every listener of the process."""

    max_connections: int = Field(1000, ge=1, le=1_000_000)
    """Open connections in all (SMTP, submission, IMAP); more are refused with 421."""

    max_connections_per_ip: int = Field(20, ge=1, le=100_000)
    """Open connections from one IP address; more are refused with 421."""

    max_imap_sessions_per_account: int = Field(100, ge=1, le=1_000_000)
    """Open IMAP sessions of one account (clients open a few per device); more get NO [LIMIT]."""

    imap_fetch_cache_mib: int = Field(96, ge=0, le=65536)
    """Memory of the IMAP FETCH caches, in MiB, shared by all sessions: ENVELOPE,
    BODYSTRUCTURE and header offsets (two thirds) and HEADER.FIELDS answers (one
    third) of recently fetched messages. 0 keeps none: each FETCH then reads them
    from the account's database, which costs a query per batch of messages."""

    listen_backlog: int = Field(1024, ge=1, le=65535)
    """Connections the kernel queues before kittiwake accepts them (listen(2) backlog;
    capped by net.core.somaxconn). Too small a queue costs clients a retransmission
    (about a second) during a burst."""

    smtp_connections_per_minute: list[int] = [120, 600, 3000]
    """New SMTP connections per minute from one IPv4 /32, /26 and /21 (IPv6 /64, /48,
    /32); more get 421 and retry later. Raise them for a server that takes much mail
    from few networks."""

    smtp_messages_per_minute: list[int] = [60, 300, 1500]
    """Messages per minute from one IPv4 /32, /26 and /21 (IPv6 /64, /48, /32)."""

    login: LoginLimits = LoginLimits()
    """Failed-login limits."""

    @model_validator(mode="after")
    def _rates_widen(self) -> LimitsConfig:
        for name in ("smtp_connections_per_minute", "smtp_messages_per_minute"):
            rates = getattr(self, name)
            if len(rates) != 3 or any(r < 1 for r in rates) or list(rates) != sorted(rates):
                raise ValueError(f"{name}: {list(rates)}: expected three positive numbers,"
                                 " for the address and its two wider networks, each at least"
                                 " the one before")
        return self
