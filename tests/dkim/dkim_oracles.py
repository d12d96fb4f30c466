"""Test oracles: dkimpy and opendkim, run as separate programs.

dkimpy needs PyNaCl for ed25519. The project venv has dkimpy without it, so
the oracle runs in whichever interpreter has both: the venv's, else Debian's
``/usr/bin/python3`` (python3-dkim + python3-nacl, see PEERS.md). A missing
oracle fails the test loudly.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

_DKIMPY_SCRIPT = r"""
import base64, json, sys
import dkim

def handle(req):
    records = {k.encode(): v.encode() for k, v in req.get("records", {}).items()}
    def dnsfunc(name, timeout=5):
        return records.get(name if name.endswith(b".") else name + b".")
    message = base64.b64decode(req["message"])
    if req["op"] == "verify":
        out = []
        d = dkim.DKIM(message)
        n = sum(1 for h in d.headers if h[0].lower() == b"dkim-signature")
        for i in range(n):
            try:
                out.append(bool(d.verify(idx=i, dnsfunc=dnsfunc)))
            except Exception as exc:
                out.append(repr(exc))
        return out
    sig = dkim.sign(message, req["selector"].encode(), req["domain"].encode(),
                    req["key"].encode(), canonicalize=tuple(c.encode() for c in req["canon"]),
                    signature_algorithm=req["algorithm"].encode(),
                    include_headers=[h.encode() for h in req["headers"]],
                    length=req.get("length", False))
    return base64.b64encode(sig).decode()

for line in sys.stdin:
    try:
        reply = {"ok": handle(json.loads(line))}
    except Exception as exc:
        reply = {"error": repr(exc)}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
"""


@functools.cache
def dkimpy_python() -> str:
    """An interpreter with dkimpy and PyNaCl; AssertionError when there is none."""
    for python in (sys.executable, "/usr/bin/python3"):
        if os.path.exists(python) and subprocess.run(
                [python, "-c", "import dkim, nacl"], capture_output=True).returncode == 0:
            return python
    raise AssertionError("dkimpy with PyNaCl not found: install Debian python3-dkim "
                         "and python3-nacl (or dkimpy + pynacl in the venv)")


class DkimPy:
    """One dkimpy worker process for a whole test module (one start-up, not one a call)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([dkimpy_python(), "-c", _DKIMPY_SCRIPT],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)

    def _call(self, request: dict[str, object]) -> object:
        import base64

        assert self.proc.stdin is not None and self.proc.stdout is not None
        request = dict(request)
        request["message"] = base64.b64encode(request["message"]).decode()  # type: ignore[arg-type]
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "dkimpy worker died"
        reply = json.loads(line)
        assert "ok" in reply, f"dkimpy failed: {reply.get('error')}"
        return reply["ok"]

    def verify(self, message: bytes, records: dict[str, str]) -> list[object]:
        """dkimpy's verdict on each DKIM-Signature (True, False, or the exception text)."""
        fqdn = {k.rstrip(".") + ".": v for k, v in records.items()}
        return self._call({"op": "verify", "message": message,  # type: ignore[return-value]
                           "records": fqdn})

    def sign(self, message: bytes, domain: str, selector: str, key: str, algorithm: str,
             canon: tuple[str, str], headers: list[str], length: bool = False) -> bytes:
        """The DKIM-Signature field dkimpy makes. ``key``: PEM for RSA, base64 seed for
        ed25519; ``length`` adds l= with the body's length."""
        import base64

        out = self._call({"op": "sign", "message": message, "domain": domain,
                          "selector": selector, "key": key, "algorithm": algorithm,
                          "canon": list(canon), "headers": headers, "length": length})
        return base64.b64decode(out)  # type: ignore[arg-type]


class OpenDKIM:
    """Runs ``opendkim -t`` (test mode, no daemon) in a private directory.

    opendkim refuses configs and keys under world-writable directories such
    as /tmp, so the directory is made under $HOME with mode 0700.
    """

    def __init__(self) -> None:
        self.binary = shutil.which("opendkim") or (
            "/usr/sbin/opendkim" if os.path.exists("/usr/sbin/opendkim") else None)
        assert self.binary, "opendkim not found: install the Debian package opendkim"
        self.dir = Path(tempfile.mkdtemp(prefix="kittiwake-opendkim-", dir=Path.home()))
        self.dir.chmod(0o700)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def _write(self, name: str, data: bytes | str) -> Path:
        path = self.dir / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        path.chmod(0o600)
        return path

    def _run(self, conf: str, message: bytes, verbose: bool) -> str:
        config = self._write("opendkim.conf", conf)
        msg = self._write("message.eml", message)
        args = [self.binary, "-x", str(config), "-t", str(msg)] + (["-vvv"] if verbose else [])
        proc = subprocess.run(args, capture_output=True, timeout=60)  # type: ignore[arg-type]
        out = proc.stdout.decode("utf-8", "replace")
        err = proc.stderr.decode("utf-8", "replace")
        assert proc.returncode == 0, f"opendkim exit {proc.returncode}: {err}{out}"
        return out

    def verify(self, message: bytes, records: dict[str, str]) -> str:
        """The dkim= results opendkim's Authentication-Results reports, e.g. "pass"."""
        keys = self._write("keys", "".join(f"{n} {v}\n" for n, v in records.items()))
        out = self._run(f"Mode v\nTestPublicKeys {keys}\n", message, verbose=True)
        found = re.findall(r"dkim=(\w+)", out)
        assert found, f"opendkim gave no dkim result: {out}"
        return " ".join(found)

    def sign(self, message: bytes, domain: str, selector: str, key_pem: bytes,
             algorithm: str, canon: str) -> bytes:
        """The DKIM-Signature field opendkim makes (CRLF line ends)."""
        key = self._write("key.pem", key_pem)
        conf = (f"Mode s\nDomain {domain}\nSelector {selector}\nKeyFile {key}\n"
                f"Canonicalization {canon}\nSignatureAlgorithm {algorithm}\n")
        out = self._run(conf, message, verbose=False).encode()
        start = out.find(b"DKIM-Signature:")
        assert start >= 0, f"opendkim did not sign: {out!r}"
        field = out[start:].rstrip(b"\r\n").replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        return field + b"\r\n"
