"""The benchmark's operations and IDLE holder, run against a real Dovecot on a small corpus.

This checks the runner itself (each operation's set-up and checks, the
UID-to-message mapping, the SEARCH comparison, the IDLE connections and the
memory reading) with the peer it compares kittiwake against; Dovecot's
SEARCH answers agreeing with the corpus's expected sets also cross-checks
the planting.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from bench.imap import Bench, hold_idle, raise_nofile, start_dovecot
from bench.imapcorpus import MARKER, Corpus

pytestmark = pytest.mark.integration


def test_every_operation_runs_and_checks_against_dovecot(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)  # Dovecot's mail processes must reach the corpus
    corpus = Corpus(300, seed=5, hits=30)
    corpus.write_maildir(tmp_path / "corpus")
    appends = list(Corpus(20, seed=6, hits=0).messages())
    raise_nofile(4096)
    ep = start_dovecot(tmp_path / "corpus")
    try:
        run = Bench(ep, corpus, rounds=2, appends=appends).all_ops()
        failed = {op: m.error for op, m in run.ops.items() if m.error}
        assert failed == {}
        assert len(run.ops) == 11
        assert all(len(m.seconds) == 2 and all(s > 0 for s in m.seconds)
                   for m in run.ops.values())
        checks = {op: m.check for op, m in run.ops.items()}
        assert checks[f"UID SEARCH TEXT {MARKER}"] == "exact 30/30 hits"
        assert checks[f"UID SEARCH SUBJECT {MARKER}"] == "exact 6/6 hits"
        assert checks[f"UID SEARCH FROM {MARKER}"] == "exact 6/6 hits"
        assert checks["SELECT INBOX (QRESYNC (v m)), 100 changed"] == "100 changed"
        assert checks["UID FETCH 1:* (FLAGS) (CHANGEDSINCE m), 100 changed"] == "100 changed"
        assert checks["APPEND 20 messages"] == "20 appended"

        idle = asyncio.run(hold_idle(ep, 12, settle=0.5))
        assert (idle.held, idle.failed, idle.processes) == (12, 0, 12)
        assert idle.rss_per_conn_kib > 0
    finally:
        ep.stop()
