"""What the operator is told at start and by ``config test``: certificates and DNSSEC.

Without a certificate STARTTLS and submission's AUTH are off; both
``kittiwake config test`` and the start-up log say so, with the fix. The
start-up DNSSEC probe tells "no answer", "answers without validation" and
"validates" apart (RFC 4035 §3.2.3: the AD bit).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import dns.flags
import dns.message
import dns.rcode
import pytest
from click.testing import CliRunner
from startup_helpers import remove_created, startup_log, stub, tiny_dns, write_config
from tests.integration.loopback import free_port

from kittiwake.cli.main import cli
from kittiwake.dns import DNSSECSupport, probe_dnssec
from kittiwake.server.tls import make_self_signed


@pytest.fixture(autouse=True)
def _cleanup() -> Iterator[None]:
    yield
    remove_created()


def static_config(tls: str = "") -> str:
    return f"""
hostname = "mail.example.org"
data_dir = "../data"
[listeners.public]
ips = ["127.0.0.1"]
smtp = {{ enabled = true, port = {free_port()} }}
submission = {{ enabled = true, port = {free_port()} }}
{tls}
"""


SMTP_WARNING = ("listeners.public.smtp: warning: no TLS certificate, so STARTTLS is not offered"
                " on port {port}: incoming mail arrives unencrypted, and senders that require"
                " TLS (MTA-STS enforce, DANE) cannot deliver; to fix: set"
                ' listeners.public.tls.certificates = [{{ cert_file = "CERT.pem",'
                ' key_file = "KEY.pem" }}] (PEM certificate chain and its key)')
SUBMISSION_WARNING = ("listeners.public.submission: warning: no TLS certificate, so neither"
                      " STARTTLS nor AUTH is offered on port {port}: mail clients cannot log"
                      " in to submit mail; to fix: set listeners.public.tls.certificates")


def _ports(conf) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    from kittiwake.config import load_static

    listener = load_static(conf).listeners["public"]
    return listener.smtp.port or 25, listener.submission.port or 587


def test_config_test_warns_without_certificate() -> None:
    conf = write_config(static_config())
    smtp_port, sub_port = _ports(conf)
    result = CliRunner().invoke(cli, ["--config", str(conf), "config", "test"])
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    assert lines[0] == f"{conf.resolve()}/kittiwake.conf: " + SMTP_WARNING.format(port=smtp_port)
    assert lines[1].startswith(f"{conf.resolve()}/kittiwake.conf: "
                               + SUBMISSION_WARNING.format(port=sub_port))
    assert result.stdout.startswith("config OK")


def test_config_test_is_quiet_with_certificate() -> None:
    tls = ('[listeners.public.tls]\ncertificates = [{ cert_file = "certs/localserve.crt",'
           ' key_file = "certs/localserve.key" }]\n')
    conf = write_config(static_config(tls))
    make_self_signed(conf / "certs", ["mail.example.org"])
    result = CliRunner().invoke(cli, ["--config", str(conf), "config", "test"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


async def test_startup_log_says_what_is_off_and_the_fix() -> None:
    conf = write_config(static_config())
    smtp_port, sub_port = _ports(conf)
    text = await startup_log(conf, None)
    [smtp_line] = [line for line in text.splitlines() if "where=listeners.public.smtp " in line]
    assert "level=warn" in smtp_line and 'msg="config warning"' in smtp_line
    assert f'off="no TLS certificate, so STARTTLS is not offered on port {smtp_port}"' \
        in smtp_line
    assert 'fix="set listeners.public.tls.certificates = ' in smtp_line
    [sub_line] = [line for line in text.splitlines()
                  if "where=listeners.public.submission " in line]
    assert f"neither STARTTLS nor AUTH is offered on port {sub_port}" in sub_line
    assert 'consequence="mail clients cannot log in to submit mail"' in sub_line


# --- the DNSSEC probe ----------------------------------------------------------

def nxdomain(query: dns.message.Message) -> dns.message.Message:
    """What a small authoritative test server says for `. DNSKEY`: no such name, no AD."""
    response = dns.message.make_response(query)
    response.set_rcode(dns.rcode.NXDOMAIN)
    return response


def validated(query: dns.message.Message) -> dns.message.Message:
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AD
    return response


def servfail(query: dns.message.Message) -> dns.message.Message:
    response = dns.message.make_response(query)
    response.set_rcode(dns.rcode.SERVFAIL)
    return response


@pytest.mark.parametrize(("answer", "support"), [
    (nxdomain, DNSSECSupport.NOT_VALIDATING),
    (validated, DNSSECSupport.VALIDATES),
    (servfail, DNSSECSupport.UNKNOWN),
    (lambda q: None, DNSSECSupport.NO_ANSWER),
])
async def test_probe_tells_the_cases_apart(answer, support: DNSSECSupport) -> None:  # type: ignore[no-untyped-def]
    transport, port = await tiny_dns(answer)
    try:
        result = await probe_dnssec(stub(port), ".", timeout=0.3)
    finally:
        transport.close()
    assert result.support is support, result


async def _log_with(answer) -> str:  # type: ignore[no-untyped-def]
    transport, port = await tiny_dns(answer)
    try:
        conf = write_config('hostname = "mail.example.org"\ndata_dir = "../data"\n'
                            '[dns]\ntimeout_seconds = 0.3\n')
        return await startup_log(conf, stub(port, 0.3))
    finally:
        transport.close()


async def test_startup_log_resolver_answers_without_validation() -> None:
    text = await _log_with(nxdomain)
    [line] = [x for x in text.splitlines() if "DNS resolver" in x]
    assert 'msg="DNS resolver answers but does not validate DNSSEC"' in line
    assert 'answer="127.0.0.1:' in line and 'NXDOMAIN without AD"' in line
    assert "did not answer" not in text and "status unknown" not in text


async def test_startup_log_resolver_silent() -> None:
    text = await _log_with(lambda q: None)
    [line] = [x for x in text.splitlines() if "DNS resolver" in x]
    assert 'msg="DNS resolver did not answer; DNSSEC status unknown"' in line
    assert "timeout" in line


async def test_startup_log_resolver_validates() -> None:
    text = await _log_with(validated)
    [line] = [x for x in text.splitlines() if "DNS resolver" in x]
    assert "level=info" in line and 'msg="DNS resolver validates DNSSEC"' in line


async def test_probe_is_quick_when_nothing_listens() -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    result = await probe_dnssec(stub(free_port()), ".")
    assert result.support is DNSSECSupport.NO_ANSWER
    assert loop.time() - start < 1.0
