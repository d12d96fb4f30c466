"""GNU SASL's command-line client (Debian gsasl) against our server mechanisms.

gsasl without --connect talks base64 lines on stdin/stdout, so the test is the
driver: it relays gsasl's responses to a ServerMechanism and its challenges back.
"""

from __future__ import annotations

import base64
import shutil
import subprocess

import pytest
from sasl_helpers import PASSWORD, USER, options

from kittiwake.sasl import ChannelBinding, Failure, Success, new_server

pytestmark = pytest.mark.integration  # GNU SASL (Debian gsasl)

GSASL = shutil.which("gsasl")
CB_DATA = b"tls-unique-finished-message-bytes"


def _data(line: str) -> bytes:
    # gsasl prefixes prompts ("Enter ...: ") to the line that carries the data.
    text = line.rstrip("\n").rsplit(": ", 1)[-1].strip()
    return base64.b64decode(text, validate=True)


def run_gsasl(mechanism: str, password: str, cb: bytes | None = None, tamper: bool = False):
    """Run one exchange; returns (our server's final Step, gsasl's exit code)."""
    assert GSASL, "gsasl (Debian package gsasl) is not installed"
    bindings = (ChannelBinding("tls-unique", cb),) if cb else ()
    server = new_server(mechanism, options(channel_bindings=bindings, hostname="mx.example"))
    args = [GSASL, "--client", "--quiet", "-m", mechanism, "-a", USER, "-p", password]
    proc = subprocess.Popen(
        args,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin and proc.stdout
    try:
        if mechanism.startswith("SCRAM"):
            # Prompts for tls-exporter and tls-unique binding data, in that order.
            unique = base64.b64encode(cb).decode() if cb else ""
            proc.stdin.write(f"\n{unique}\n")
            proc.stdin.flush()
        assert proc.stdout.readline().strip() == mechanism
        result = None
        while result is None:
            line = proc.stdout.readline()
            assert line, f"gsasl ended early: {proc.stderr.read() if proc.stderr else ''}"
            data = _data(line)
            if not server._started:
                step = server.start(data if data else None)
            else:
                step = server.step(data)
            match step:
                case Success(server_final=final):
                    result = step
                    if final and tamper:
                        final = final[:-6] + b"AAAAA="
                    # SCRAM: server-final, gsasl answers with empty data, then success
                    # (an empty line) as SMTP does with 334 then 235.
                    reply = base64.b64encode(final).decode() + "\n" if final else ""
                case Failure():
                    result = step
                    reply = None
                case _:
                    reply = base64.b64encode(step.data).decode()
            if reply is not None:
                proc.stdin.write(reply + "\n")
                proc.stdin.flush()
        proc.stdin.close()
        return result, proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


MECHANISMS = ["PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256"]


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_gsasl_client_authenticates(mechanism: str) -> None:
    step, rc = run_gsasl(mechanism, PASSWORD)
    assert isinstance(step, Success), step
    assert step.username == USER
    assert rc == 0  # gsasl accepted the exchange (SCRAM: it verified our signature)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_gsasl_client_wrong_password(mechanism: str) -> None:
    step, rc = run_gsasl(mechanism, "crayon")
    assert isinstance(step, Failure)
    assert step.reason == "invalid-credentials"
    assert rc != 0


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"])
def test_gsasl_client_plus_with_tls_unique(mechanism: str) -> None:
    step, rc = run_gsasl(mechanism, PASSWORD, cb=CB_DATA)
    assert isinstance(step, Success), step
    assert step.channel_binding == "tls-unique"
    assert rc == 0


def test_gsasl_client_rejects_forged_server_signature() -> None:
    # Our server accepted the proof, but gsasl must refuse a wrong "v=".
    step, rc = run_gsasl("SCRAM-SHA-256", PASSWORD, tamper=True)
    assert isinstance(step, Success)
    assert rc != 0
