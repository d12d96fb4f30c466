"""The DMARC reports database: reports received, and evaluations to report (RFC 7489 §7.2).

One SQLite file, ``<data dir>/reports/dmarc.db`` (WAL, synchronous=FULL,
see :mod:`kittiwake.sqlitedb`). Blocking: callers run its methods in worker
threads.

Received reports (``report``, ``report_row``) are unique per reporting
organization and report id (§7.2.1.1: the id is unique per reporter), so
a report sent twice is stored once. ``collected`` remembers which store
messages the collector has looked at, so that a restart picks up what
arrived while it was not looking, and nothing twice.

Evaluations of incoming mail are counted per UTC day, policy domain and
row key (the fields an aggregate record groups by: source IP, From domain,
envelope domains, disposition, aligned results, raw DKIM/SPF results), with
the policy last seen that day. ``sent`` records, per day and policy domain,
that its report was queued: the daily run skips those, and picks up every
earlier day still unsent, so a restart neither resends nor skips a day.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kittiwake.dmarcrpt import Feedback
from kittiwake.sqlitedb import open_database, transaction

__all__ = ["DMARCDatabase", "EvaluationRow", "StoredReport", "database_path"]

VERSION = 1
DDL = """
CREATE TABLE report (
  id INTEGER PRIMARY KEY,
  org_name TEXT NOT NULL,
  report_id TEXT NOT NULL,
  email TEXT NOT NULL,
  domain TEXT NOT NULL,
  begin INTEGER NOT NULL,
  end INTEGER NOT NULL,
  received INTEGER NOT NULL,
  our_domain TEXT NOT NULL,
  messages INTEGER NOT NULL,
  feedback TEXT NOT NULL,
  UNIQUE (org_name, report_id)
);
CREATE INDEX report_domain ON report (domain, begin);
CREATE TABLE report_row (
  report INTEGER NOT NULL REFERENCES report (id) ON DELETE CASCADE,
  source_ip TEXT NOT NULL,
  count INTEGER NOT NULL,
  disposition TEXT NOT NULL,
  dkim TEXT NOT NULL,
  spf TEXT NOT NULL,
  header_from TEXT NOT NULL
);
CREATE INDEX report_row_report ON report_row (report);
CREATE TABLE collected (
  account TEXT NOT NULL,
  message INTEGER NOT NULL,
  result TEXT NOT NULL,
  PRIMARY KEY (account, message)
);
CREATE TABLE evaluation (
  day INTEGER NOT NULL,
  policy_domain TEXT NOT NULL,
  rowkey TEXT NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY (day, policy_domain, rowkey)
);
CREATE TABLE evaluation_policy (
  day INTEGER NOT NULL,
  policy_domain TEXT NOT NULL,
  policy TEXT NOT NULL,
  PRIMARY KEY (day, policy_domain)
);
CREATE TABLE sent (
  day INTEGER NOT NULL,
  policy_domain TEXT NOT NULL,
  report_id TEXT NOT NULL,
  outcome TEXT NOT NULL,
  detail TEXT NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (day, policy_domain)
);
"""


def database_path(data_dir: Path | str) -> Path:
    return Path(data_dir) / "reports" / "dmarc.db"


@dataclass(frozen=True)
class StoredReport:
    """A received report as stored, with its database id."""

    id: int
    our_domain: str
    received: int
    feedback: dict[str, Any]  # Feedback.to_json()

    @property
    def org_name(self) -> str:
        return str(self.feedback["report_metadata"]["org_name"])

    @property
    def report_id(self) -> str:
        return str(self.feedback["report_metadata"]["report_id"])


@dataclass(frozen=True)
class EvaluationRow:
    """One evaluation key with its policy domain and day (what the recorder batches)."""

    day: int
    policy_domain: str
    rowkey: str  # JSON of the aggregate record's fields
    policy: str  # JSON of the policy published (and its rua URIs)


class DMARCDatabase:
    """Blocking access; one connection, serialised by a lock (worker threads)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = open_database(path, DDL, VERSION, "DMARC reports database")
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding the database's lock."""
        with self._lock, transaction(self._db) as db:
            yield db

    # --- received reports --------------------------------------------------------

    def add_report(self, report: Feedback, our_domain: str, received: int) -> int | None:
        """Store a received report; None when this org's report id is already stored."""
        m = report.report_metadata
        with self._tx() as db:
            try:
                cur = db.execute(
                    "INSERT INTO report (org_name, report_id, email, domain, begin, end,"
                    " received, our_domain, messages, feedback)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (m.org_name, m.report_id, m.email, report.policy_published.domain,
                     m.date_range.begin, m.date_range.end, received, our_domain,
                     report.message_count, json.dumps(report.to_json())))
            except sqlite3.IntegrityError:
                return None
            report_key = cur.lastrowid
            db.executemany(
                "INSERT INTO report_row (report, source_ip, count, disposition, dkim, spf,"
                " header_from) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(report_key, r.row.source_ip, r.row.count,
                  str(r.row.policy_evaluated.disposition), str(r.row.policy_evaluated.dkim),
                  str(r.row.policy_evaluated.spf), r.identifiers.header_from)
                 for r in report.records])
            return report_key

    def collected(self, account: str, message_ids: Iterable[int]) -> set[int]:
        """Which of an account's messages were already looked at by the collector."""
        ids = list(message_ids)
        found: set[int] = set()
        with self._lock:
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                found |= {r[0] for r in self._db.execute(
                    "SELECT message FROM collected WHERE account = ? AND message IN"
                    f" ({','.join('?' * len(chunk))})", [account, *chunk])}
        return found

    def mark_collected(self, account: str, message_id: int, result: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO collected (account, message, result)"
                       " VALUES (?, ?, ?)", (account, message_id, result))

    def reports(self, domain: str | None = None, since: int | None = None) -> list[StoredReport]:
        """Received reports, oldest period first; about ``domain`` and ending after ``since``."""
        query = "SELECT id, our_domain, received, feedback FROM report WHERE 1=1"
        args: list[Any] = []
        if domain:
            query += " AND (domain = ? OR our_domain = ?)"
            args += [domain, domain]
        if since is not None:
            query += " AND end >= ?"
            args.append(since)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY begin, id", args).fetchall()
        return [StoredReport(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    def report(self, key: str) -> StoredReport | None:
        """One report by database id or by its report id."""
        with self._lock:
            row = None
            if key.isdigit():
                row = self._db.execute("SELECT id, our_domain, received, feedback FROM report"
                                       " WHERE id = ?", (int(key),)).fetchone()
            if row is None:
                row = self._db.execute("SELECT id, our_domain, received, feedback FROM report"
                                       " WHERE report_id = ? ORDER BY id LIMIT 1",
                                       (key,)).fetchone()
        return StoredReport(row[0], row[1], row[2], json.loads(row[3])) if row else None

    def sources(self, domain: str | None = None, since: int | None = None
                ) -> list[tuple[str, str, int, int, int, int, int]]:
        """Per source IP and From domain: (ip, header_from, messages, dkim pass, spf pass,
        dmarc pass (either aligned), disposition not none)."""
        query = ("SELECT r.source_ip, r.header_from, SUM(r.count),"
                 " SUM(CASE WHEN r.dkim = 'pass' THEN r.count ELSE 0 END),"
                 " SUM(CASE WHEN r.spf = 'pass' THEN r.count ELSE 0 END),"
                 " SUM(CASE WHEN r.dkim = 'pass' OR r.spf = 'pass' THEN r.count ELSE 0 END),"
                 " SUM(CASE WHEN r.disposition != 'none' THEN r.count ELSE 0 END)"
                 " FROM report_row r JOIN report p ON p.id = r.report WHERE 1=1")
        args: list[Any] = []
        if domain:
            query += " AND (p.domain = ? OR p.our_domain = ?)"
            args += [domain, domain]
        if since is not None:
            query += " AND p.end >= ?"
            args.append(since)
        query += " GROUP BY r.source_ip, r.header_from ORDER BY SUM(r.count) DESC, r.source_ip"
        with self._lock:
            return [tuple(r) for r in self._db.execute(query, args).fetchall()]  # type: ignore[misc]

    # --- evaluations for outgoing reports ------------------------------------------

    def add_evaluations(self, rows: Iterable[EvaluationRow]) -> int:
        """Count a batch of evaluations in one transaction; the number counted."""
        n = 0
        with self._tx() as db:
            for row in rows:
                db.execute("INSERT INTO evaluation (day, policy_domain, rowkey, count)"
                           " VALUES (?, ?, ?, 1) ON CONFLICT (day, policy_domain, rowkey)"
                           " DO UPDATE SET count = count + 1",
                           (row.day, row.policy_domain, row.rowkey))
                db.execute("INSERT INTO evaluation_policy (day, policy_domain, policy)"
                           " VALUES (?, ?, ?) ON CONFLICT (day, policy_domain)"
                           " DO UPDATE SET policy = excluded.policy",
                           (row.day, row.policy_domain, row.policy))
                n += 1
        return n

    def pending(self, before_day: int) -> list[tuple[int, str]]:
        """(day, policy domain) with evaluations before ``before_day`` and no report sent."""
        with self._lock:
            rows = self._db.execute(
                "SELECT p.day, p.policy_domain FROM evaluation_policy p"
                " LEFT JOIN sent s ON s.day = p.day AND s.policy_domain = p.policy_domain"
                " WHERE p.day < ? AND s.day IS NULL ORDER BY p.day, p.policy_domain",
                (before_day,)).fetchall()
        return [(r[0], r[1]) for r in rows]

    def evaluations(self, day: int, policy_domain: str) -> tuple[str, list[tuple[str, int]]]:
        """The policy JSON and the (row key JSON, count) pairs of one day and domain."""
        with self._lock:
            policy = self._db.execute(
                "SELECT policy FROM evaluation_policy WHERE day = ? AND policy_domain = ?",
                (day, policy_domain)).fetchone()
            rows = self._db.execute(
                "SELECT rowkey, count FROM evaluation WHERE day = ? AND policy_domain = ?"
                " ORDER BY count DESC, rowkey", (day, policy_domain)).fetchall()
        return (policy[0] if policy else "{}"), [(r[0], r[1]) for r in rows]

    def mark_sent(self, day: int, policy_domain: str, report_id: str, outcome: str,
                  detail: str, at: int) -> None:
        """Record the day's report as done (queued, or skipped with why)."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO sent (day, policy_domain, report_id, outcome,"
                       " detail, at) VALUES (?, ?, ?, ?, ?, ?)",
                       (day, policy_domain, report_id, outcome, detail, at))

    def sent(self) -> list[tuple[int, str, str, str, str, int]]:
        with self._lock:
            return [tuple(r) for r in self._db.execute(  # type: ignore[misc]
                "SELECT day, policy_domain, report_id, outcome, detail, at FROM sent"
                " ORDER BY day, policy_domain").fetchall()]

    def forget_before(self, day: int) -> None:
        """Drop evaluations (and sent marks) of days before ``day``, once reported."""
        with self._tx() as db:
            db.execute("DELETE FROM evaluation WHERE day < ? AND (day, policy_domain) IN"
                       " (SELECT day, policy_domain FROM sent)", (day,))
            db.execute("DELETE FROM evaluation_policy WHERE day < ? AND (day, policy_domain)"
                       " IN (SELECT day, policy_domain FROM sent)", (day,))
