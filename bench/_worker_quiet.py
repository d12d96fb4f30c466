"""The SMTP worker without its periodic metrics snapshots, whose cost grows with wall time
(for :mod:`bench.smtpworker_cpu` under callgrind, where wall time is 50 times longer)."""

from __future__ import annotations

import sys

from kittiwake.server import smtpworker

if __name__ == "__main__":
    smtpworker.METRICS_INTERVAL = 1e9
    sys.exit(smtpworker.main(["smtpworker", sys.argv[1]]))
