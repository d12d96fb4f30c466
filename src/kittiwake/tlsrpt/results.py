"""The TLS result of every outgoing connection, stored for TLSRPT (RFC 8460 §4).

One row per attempt: the policy that applied (``sts``, ``tlsa`` or
``no-policy-found``, RFC 8460 §4.3), success or the failure result type,
the receiving MX host and IP, and a reason a person can read. Stored in
``data_dir/tlsrpt.db`` (SQLite, WAL); writes run in a worker thread.
"""

from __future__ import annotations

import asyncio
import enum
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path


class PolicyType(enum.StrEnum):
    """RFC 8460 §4.3 policy-type."""

    STS = "sts"
    TLSA = "tlsa"
    NO_POLICY = "no-policy-found"


class ResultType(enum.StrEnum):
    """RFC 8460 §4.3 result-type values (and "success")."""

    SUCCESS = "success"
    STARTTLS_NOT_SUPPORTED = "starttls-not-supported"
    CERTIFICATE_HOST_MISMATCH = "certificate-host-mismatch"
    CERTIFICATE_EXPIRED = "certificate-expired"
    CERTIFICATE_NOT_TRUSTED = "certificate-not-trusted"
    VALIDATION_FAILURE = "validation-failure"
    TLSA_INVALID = "tlsa-invalid"
    DNSSEC_INVALID = "dnssec-invalid"
    DANE_REQUIRED = "dane-required"
    STS_POLICY_FETCH_ERROR = "sts-policy-fetch-error"
    STS_POLICY_INVALID = "sts-policy-invalid"
    STS_WEBPKI_INVALID = "sts-webpki-invalid"


@dataclass(frozen=True)
class TLSResult:
    """The TLS outcome of one connection attempt."""

    policy_domain: str
    policy_type: PolicyType
    result: ResultType
    mx_host: str = ""
    ip: str = ""
    reason: str = ""
    time: float = 0.0

    @property
    def success(self) -> bool:
        return self.result is ResultType.SUCCESS


SCHEMA = """
CREATE TABLE IF NOT EXISTS result (
  id INTEGER PRIMARY KEY,
  time REAL NOT NULL,
  policy_domain TEXT NOT NULL,
  policy_type TEXT NOT NULL,
  result TEXT NOT NULL,
  mx_host TEXT NOT NULL,
  ip TEXT NOT NULL,
  reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS result_domain_time ON result (policy_domain, time);
"""


class TLSResults:
    """The result database."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(data_dir / "tlsrpt.db", isolation_level=None,
                                  check_same_thread=False)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.executescript(SCHEMA)
        self.lock = threading.Lock()

    def add_sync(self, result: TLSResult) -> None:
        with self.lock:
            self.db.execute(
                "INSERT INTO result (time, policy_domain, policy_type, result, mx_host, ip,"
                " reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (result.time or time.time(), result.policy_domain, result.policy_type.value,
                 result.result.value, result.mx_host, result.ip, result.reason))

    async def add(self, result: TLSResult) -> None:
        await asyncio.to_thread(self.add_sync, result)

    def recent(self, domain: str | None = None, limit: int = 100) -> list[TLSResult]:
        sql = ("SELECT policy_domain, policy_type, result, mx_host, ip, reason, time FROM result")
        args: list[object] = []
        if domain:
            sql += " WHERE policy_domain = ?"
            args.append(domain)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        with self.lock:
            rows = self.db.execute(sql, args).fetchall()
        return [TLSResult(r[0], PolicyType(r[1]), ResultType(r[2]), r[3], r[4], r[5], r[6])
                for r in rows]

    def between(self, start: float, end: float) -> list[TLSResult]:
        """Every result with ``start <= time < end`` (a report's date range, RFC 8460 §4.1)."""
        with self.lock:
            rows = self.db.execute(
                "SELECT policy_domain, policy_type, result, mx_host, ip, reason, time FROM result"
                " WHERE time >= ? AND time < ? ORDER BY id", (start, end)).fetchall()
        return [TLSResult(r[0], PolicyType(r[1]), ResultType(r[2]), r[3], r[4], r[5], r[6])
                for r in rows]

    def prune(self, before: float) -> int:
        """Remove results older than ``before`` (already reported); returns how many."""
        with self.lock:
            return self.db.execute("DELETE FROM result WHERE time < ?", (before,)).rowcount

    def close(self) -> None:
        with self.lock:
            self.db.close()
