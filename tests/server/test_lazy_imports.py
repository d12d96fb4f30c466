"""A server that uses neither ACME nor HTTP does not load their libraries.

The ACME client (``acme``, ``requests``, ``josepy``) and aiohttp add about
16 MiB to the server's resident memory; they are imported when a listener
uses ACME or serves HTTP, or when a policy is first fetched over HTTPS.
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("aiohttp", "acme", "requests", "josepy")

IMPORTS = """
import sys
import kittiwake.mtasts, kittiwake.queue.deliver, kittiwake.reports.tlsrpt_outgoing
import kittiwake.server.acmewiring, kittiwake.server.app, kittiwake.smtpserver.service
import kittiwake.imapserver.service
print(" ".join(sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[1:]))))
"""


def _loaded(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code, *HEAVY], check=True,
                         capture_output=True, text=True).stdout
    return set(out.split())


def test_server_modules_do_not_load_acme_or_aiohttp() -> None:
    assert _loaded(IMPORTS) == set()


def test_https_client_is_there_when_asked_for() -> None:
    code = IMPORTS.replace("print(", "from kittiwake.mtasts import make_session\nprint(")
    assert "aiohttp" in _loaded(code)
