"""The SMTP worker under cProfile by thread CPU time (for :mod:`bench.smtpworker_cpu`).

SIGUSR1 starts the profile, SIGUSR2 stops it and writes it to ``$PROF_OUT``.
"""

from __future__ import annotations

import cProfile
import os
import signal
import sys
import time
from typing import Any

from kittiwake.server import smtpworker

PROFILE = cProfile.Profile(time.thread_time)


def _on(*_: Any) -> None:
    PROFILE.enable()


def _off(*_: Any) -> None:
    PROFILE.disable()
    PROFILE.dump_stats(os.environ.get("PROF_OUT", "worker.prof"))


if __name__ == "__main__":
    signal.signal(signal.SIGUSR1, _on)
    signal.signal(signal.SIGUSR2, _off)
    sys.exit(smtpworker.main(["smtpworker", sys.argv[1]]))
