"""Running ``kittiwake serve`` as a real process in tests, without port races.

A port picked by binding port 0 and closing the socket may be taken by
another test worker before the server binds it. ``kittiwake serve`` reads
its ports from the config (0 there means the standard port), so the server
cannot be handed a bound socket: :func:`start_serve` retries with a new
port when the start fails with "cannot listen". A resolver that must not
answer is a UDP socket held bound for the whole test (:func:`silent_resolver`),
so no other process can answer in its place.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.integration.loopback import free_port

KITTIWAKE = [sys.executable, "-m", "kittiwake.cli.main"]


@contextmanager
def silent_resolver() -> Iterator[str]:
    """``127.0.0.1:PORT`` of a DNS server that never answers (queries time out)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{udp.getsockname()[1]}"


def _candidate_port() -> int:
    return free_port()


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL: a crash, no clean shutdown."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=15)


def wait_started(proc: subprocess.Popen[bytes], log: Path, timeout: float = 20) -> bool:
    """True once the log says the server started; False when it exited first."""
    deadline = time.monotonic() + timeout
    while "kittiwake started" not in log.read_text(errors="replace"):
        if proc.poll() is not None:
            return False
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise AssertionError(f"serve did not start in {timeout} s:\n{log.read_text()}")
        time.sleep(0.05)
    return True


def start_serve(conf: Path, write_config: Callable[[int], None], log: Path,
                port: int | None = None, attempts: int = 5) -> Served:
    """Start ``kittiwake --config CONF serve`` with a listener port chosen here.

    ``write_config(port)`` writes kittiwake.conf for that port. With ``port``
    given (a restart) that port is tried first. A start that fails because
    the port was taken meanwhile is retried with another one. ``log`` is
    rewritten for each start.
    """
    for attempt in range(attempts):
        chosen = port if (port is not None and attempt == 0) else _candidate_port()
        write_config(chosen)
        with open(log, "wb") as log_file:  # a fresh log for each start
            proc = subprocess.Popen([*KITTIWAKE, "--config", str(conf), "serve"],
                                    stdout=subprocess.DEVNULL, stderr=log_file)
        if wait_started(proc, log):
            return Served(proc, chosen, log)
        if "cannot listen" not in log.read_text(errors="replace"):
            raise AssertionError(f"serve exited {proc.returncode}:\n{log.read_text()}")
    raise AssertionError(f"no free port after {attempts} attempts:\n{log.read_text()}")
