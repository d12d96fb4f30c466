"""The TLS reports database, ``data_dir/tlsrptreports.db`` (SQLite, WAL).

Incoming reports (RFC 8460 §4.4) from other organizations about mail to our
domains, stored once per (organization, report-id); and the state of our own
outgoing daily reports, so that a restart neither resends nor skips a day.
Methods are blocking: the server calls them in worker threads.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from kittiwake.sqlitedb import transaction
from kittiwake.tlsrpt.report import Report, compose_json

FILENAME = "tlsrptreports.db"

SCHEMA = """
CREATE TABLE IF NOT EXISTS report (
  id INTEGER PRIMARY KEY,
  organization TEXT NOT NULL,
  report_id TEXT NOT NULL,
  start REAL NOT NULL,
  end REAL NOT NULL,
  contact TEXT NOT NULL,
  received REAL NOT NULL,
  account TEXT NOT NULL,
  json TEXT NOT NULL,
  UNIQUE (organization, report_id)
);
CREATE TABLE IF NOT EXISTS policy (
  id INTEGER PRIMARY KEY,
  report INTEGER NOT NULL REFERENCES report(id) ON DELETE CASCADE,
  policy_type TEXT NOT NULL,
  policy_domain TEXT NOT NULL,
  mx_host TEXT NOT NULL,
  successful INTEGER NOT NULL,
  failed INTEGER NOT NULL,
  failure_types TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS policy_domain ON policy (policy_domain);
CREATE TABLE IF NOT EXISTS seen (
  account TEXT NOT NULL,
  mailbox TEXT NOT NULL,
  last_uid INTEGER NOT NULL,
  PRIMARY KEY (account, mailbox)
);
CREATE TABLE IF NOT EXISTS outgoing_day (
  day TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS outgoing (
  day TEXT NOT NULL,
  kind TEXT NOT NULL,
  policy_domain TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (day, kind, policy_domain)
);
CREATE TABLE IF NOT EXISTS outgoing_uri (
  day TEXT NOT NULL,
  kind TEXT NOT NULL,
  policy_domain TEXT NOT NULL,
  uri TEXT NOT NULL,
  sent REAL NOT NULL,
  PRIMARY KEY (day, kind, policy_domain, uri)
);
"""


@dataclass(frozen=True)
class PolicyRow:
    """One policy of one stored report, as ``kittiwake tlsrpt reports`` shows it."""

    organization: str
    report_id: str
    start: float
    end: float
    policy_type: str
    policy_domain: str
    mx_host: str
    successful: int
    failed: int
    failure_types: dict[str, int]

    def to_json(self) -> dict[str, object]:
        import datetime as dt

        def iso(t: float) -> str:
            return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

        return {"organization": self.organization, "report_id": self.report_id,
                "start": iso(self.start), "end": iso(self.end),
                "policy_type": self.policy_type, "policy_domain": self.policy_domain,
                "mx_host": self.mx_host, "successful": self.successful, "failed": self.failed,
                "failure_types": self.failure_types}


@dataclass(frozen=True)
class Pending:
    """An outgoing report still to send: a day, a kind (domain or host) and a domain."""

    day: str
    kind: str  # "domain": a recipient domain's report; "host": a DANE MX host's
    policy_domain: str
    attempts: int


class TLSRPTDatabase:
    """Incoming reports and the outgoing state."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / FILENAME
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA foreign_keys = ON")
        self.db.executescript(SCHEMA)
        self.lock = threading.Lock()

    def close(self) -> None:
        with self.lock:
            self.db.close()

    # --- incoming ------------------------------------------------------------------

    def add_report(self, report: Report, account: str, received: float | None = None) -> bool:
        """Store a report; False when this organization's report-id is already stored."""
        with self.lock, transaction(self.db):
            try:
                cur = self.db.execute(
                    "INSERT INTO report (organization, report_id, start, end, contact, received,"
                    " account, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (report.organization_name, report.report_id, report.start.timestamp(),
                     report.end.timestamp(), report.contact_info, received or time.time(),
                     account, compose_json(report).decode()))
            except sqlite3.IntegrityError:
                return False
            rowid = cur.lastrowid
            for p in report.policies:
                types: dict[str, int] = {}
                for d in p.failure_details:
                    types[d.result_type] = types.get(d.result_type, 0) + d.failed_session_count
                self.db.execute(
                    "INSERT INTO policy (report, policy_type, policy_domain, mx_host, successful,"
                    " failed, failure_types) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (rowid, p.policy_type, p.policy_domain.lower().rstrip("."),
                     ",".join(p.mx_host), p.total_successful, p.total_failure,
                     json.dumps(types, sort_keys=True)))
        return True

    def policies(self, domain: str | None = None, since: float | None = None) -> list[PolicyRow]:
        """Stored report policies, newest report first; ``domain`` matches the policy
        domain (or, for DANE host policies, a host under it)."""
        sql = ("SELECT r.organization, r.report_id, r.start, r.end, p.policy_type,"
               " p.policy_domain, p.mx_host, p.successful, p.failed, p.failure_types"
               " FROM policy p JOIN report r ON r.id = p.report WHERE 1")
        args: list[object] = []
        if domain:
            d = domain.lower().rstrip(".")
            sql += " AND (p.policy_domain = ? OR p.policy_domain LIKE ?)"
            args += [d, "%." + d]
        if since is not None:
            sql += " AND r.end > ?"
            args.append(since)
        sql += " ORDER BY r.start DESC, r.organization, p.policy_domain, p.policy_type"
        with self.lock:
            rows = self.db.execute(sql, args).fetchall()
        return [PolicyRow(*r[:9], json.loads(r[9])) for r in rows]

    def last_uid(self, account: str, mailbox: str) -> int:
        with self.lock:
            row = self.db.execute("SELECT last_uid FROM seen WHERE account = ? AND mailbox = ?",
                                  (account, mailbox)).fetchone()
        return int(row[0]) if row else 0

    def set_last_uid(self, account: str, mailbox: str, uid: int) -> None:
        with self.lock:
            self.db.execute("INSERT INTO seen (account, mailbox, last_uid) VALUES (?, ?, ?)"
                            " ON CONFLICT (account, mailbox) DO UPDATE SET last_uid ="
                            " max(last_uid, excluded.last_uid)", (account, mailbox, uid))

    # --- outgoing ------------------------------------------------------------------

    def last_planned_day(self) -> str | None:
        with self.lock:
            row = self.db.execute("SELECT max(day) FROM outgoing_day").fetchone()
        return row[0] if row and row[0] else None

    def plan_day(self, day: str, targets: list[tuple[str, str]]) -> None:
        """Record, in one transaction, the reports of ``day`` (kind, policy domain) and
        that the day is planned."""
        with self.lock, transaction(self.db):
            self.db.executemany(
                "INSERT OR IGNORE INTO outgoing (day, kind, policy_domain, state)"
                " VALUES (?, ?, ?, 'pending')", [(day, k, d) for k, d in targets])
            self.db.execute("INSERT OR IGNORE INTO outgoing_day (day) VALUES (?)", (day,))

    def pending(self) -> list[Pending]:
        with self.lock:
            rows = self.db.execute("SELECT day, kind, policy_domain, attempts FROM outgoing"
                                   " WHERE state = 'pending' ORDER BY day, kind,"
                                   " policy_domain").fetchall()
        return [Pending(*r) for r in rows]

    def finish(self, item: Pending, state: str, error: str = "") -> None:
        """``state``: "sent", "no-record", "failed" or (to retry) "pending"."""
        with self.lock:
            self.db.execute("UPDATE outgoing SET state = ?, attempts = attempts + 1, error = ?"
                            " WHERE day = ? AND kind = ? AND policy_domain = ?",
                            (state, error, item.day, item.kind, item.policy_domain))

    def uri_sent(self, item: Pending, uri: str) -> bool:
        with self.lock:
            return self.db.execute(
                "SELECT 1 FROM outgoing_uri WHERE day = ? AND kind = ? AND policy_domain = ?"
                " AND uri = ?", (item.day, item.kind, item.policy_domain, uri)).fetchone() \
                is not None

    def mark_uri_sent(self, item: Pending, uri: str) -> None:
        with self.lock:
            self.db.execute("INSERT OR IGNORE INTO outgoing_uri (day, kind, policy_domain, uri,"
                            " sent) VALUES (?, ?, ?, ?, ?)",
                            (item.day, item.kind, item.policy_domain, uri, time.time()))

    def outgoing_states(self) -> list[tuple[str, str, str, str, int, str]]:
        """(day, kind, policy domain, state, attempts, error) of every outgoing report."""
        with self.lock:
            return self.db.execute("SELECT day, kind, policy_domain, state, attempts, error"
                                   " FROM outgoing ORDER BY day, kind, policy_domain").fetchall()
