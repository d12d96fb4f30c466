"""Our served MTA-STS policy, checked by an independent client: ``mta-sts-query``.

``mta-sts-query`` (PyPI ``postfix-mta-sts-resolver``, the policy resolver many
Postfix installations use) looks up ``_mta-sts.DOMAIN`` TXT, fetches
``https://mta-sts.DOMAIN/.well-known/mta-sts.txt`` and validates the policy
(RFC 8461 §3). It takes neither a resolver nor a port, so it runs in a
private network namespace (:mod:`.netns`): there 127.0.0.1:53 leads to the
DNS world's validating unbound (bind9 serving the signed zone with the TXT
record and ``mta-sts.DOMAIN A 127.0.0.1``) and 127.0.0.1:443 to
kittiwake's content application (:func:`kittiwake.http.content_app`) with a
certificate from a trustme CA, which the tool trusts through
``SSL_CERT_FILE``. The TXT id published is :func:`published_policy`'s,
the one ``config dnsrecords`` prints.
"""

from __future__ import annotations

import ast
import asyncio
import os
import re
import shutil
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme
from aiohttp import web

from kittiwake.config import Config, DomainsConfig, StaticConfig
from kittiwake.http import HTTPContext, content_app, published_policy, runner_options

from .dnsworld import DNSWorld, MakeDNSWorld
from .netns import command_line, serve_unix_to_tcp

HOSTNAME = "mail.sts.signed.test"
DOMAINS = {
    "sts.signed.test": {"mode": "enforce", "max_age_seconds": 604800},
    "testing.signed.test": {"mode": "testing", "mx": ["*.backup.signed.test"]},
}
# Has a TXT record but no policy in domains.conf: the HTTPS fetch gets 404.
NO_POLICY = "nopolicy.signed.test"
TOOL = "mta-sts-query"


def mta_sts_query() -> str:
    """The tool, next to this Python (the venv) or on PATH; missing is a failure."""
    beside = Path(sys.executable).parent / TOOL
    found = str(beside) if beside.exists() else shutil.which(TOOL)
    if found is None:
        pytest.fail(f"{TOOL} is missing: pip install postfix-mta-sts-resolver (in the test"
                    " extras: pip install -e '.[test]')")
    return found


def make_config(tmp_path: Path) -> Config:
    static = StaticConfig.model_validate({
        "hostname": HOSTNAME,
        "listeners": {"public": {
            "ips": ["127.0.0.1"],
            "tls": {"certificates": [{"cert_file": "c.pem", "key_file": "k.pem"}]},
            "smtp": {"enabled": True}, "https": {"enabled": True}}}})
    domains = DomainsConfig.model_validate(
        {"domains": {**{name: {"mta_sts": sts} for name, sts in DOMAINS.items()},
                     NO_POLICY: {}}})
    return Config(tmp_path, static, domains)


def parse_output(stdout: str) -> tuple[str, tuple[str, dict[str, object]] | None]:
    """``(<STSFetchResult.VALID: 1>, ('ID', {...}))`` as ("VALID", (id, policy))."""
    line = stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"\(<STSFetchResult\.(\w+): \d+>, (.*)\)", line)
    assert match, f"unexpected {TOOL} output: {stdout!r}"
    return match.group(1), ast.literal_eval(match.group(2))


@pytest.fixture
async def https_socket(tmp_path: Path) -> AsyncIterator[tuple[Path, trustme.CA, Config]]:
    """The content app over TLS on a UNIX socket (what the namespace's port 443 reaches)."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*(f"mta-sts.{d}" for d in (*DOMAINS, NO_POLICY))).configure_cert(context)
    config = make_config(tmp_path)
    runner = web.AppRunner(content_app(HTTPContext.from_config(config, "public")),
                           **runner_options())
    await runner.setup()
    path = tmp_path / "https.sock"
    await web.UnixSite(runner, str(path), ssl_context=context).start()
    try:
        yield path, ca, config
    finally:
        await runner.cleanup()


async def query(world: DNSWorld, https: Path, ca: trustme.CA, tmp_path: Path,
                *args: str) -> tuple[str, tuple[str, dict[str, object]] | None]:
    host, port = world.resolver
    dns_socket = tmp_path / "dns.sock"
    dns_relay = await serve_unix_to_tcp(str(dns_socket), host, port)
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions attempts:2 timeout:2\n")
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["SSL_CERT_FILE"] = str(ca_file)
    try:
        process = await asyncio.create_subprocess_exec(
            *command_line(resolv, str(dns_socket), {443: str(https)},
                          [mta_sts_query(), "-v", "debug", *args]),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    finally:
        dns_relay.close()
    assert process.returncode == 0, f"{TOOL} failed: {stderr.decode()}\n{stdout.decode()}"
    result, found = parse_output(stdout.decode())
    if result not in ("VALID", "NOT_CHANGED"):
        # The tool's debug log says why (DNS, TLS, HTTP or the policy itself).
        print(f"{TOOL} {' '.join(args)}: {result}\n{stderr.decode()}")
    return result, found


async def test_mta_sts_query_accepts_the_served_policies(
        make_dns_world: MakeDNSWorld, https_socket: tuple[Path, trustme.CA, Config],
        tmp_path: Path) -> None:
    https, ca, config = https_socket
    ids = {}
    records: list[tuple[str, ...]] = []
    for domain in DOMAINS:
        settings = config.domains.domains[domain].mta_sts
        assert settings is not None
        published = published_policy(settings, [HOSTNAME])
        ids[domain] = published.id
        records += [(f"_mta-sts.{domain}", "TXT", published.txt_record),
                    (f"mta-sts.{domain}", "A", "127.0.0.1"),
                    (domain, "MX", f"10 {HOSTNAME}.")]
    records += [(f"_mta-sts.{NO_POLICY}", "TXT", "v=STSv1; id=1"),
                (f"mta-sts.{NO_POLICY}", "A", "127.0.0.1")]
    world = make_dns_world(records)

    result, found = await query(world, https, ca, tmp_path, "sts.signed.test")
    assert result == "VALID" and found is not None
    assert found == (ids["sts.signed.test"], {"version": "STSv1", "mode": "enforce",
                                               "mx": [HOSTNAME], "max_age": 604800})

    result, found = await query(world, https, ca, tmp_path, "testing.signed.test")
    assert result == "VALID" and found is not None
    assert found[0] == ids["testing.signed.test"]
    assert found[1]["mode"] == "testing"
    assert found[1]["mx"] == [HOSTNAME, "*.backup.signed.test"]

    # The tool refetches only when the id changes: with the id it knows it stops there.
    result, found = await query(world, https, ca, tmp_path, "sts.signed.test",
                                ids["sts.signed.test"])
    assert (result, found) == ("NOT_CHANGED", None)

    # The control: the same path to the same server, but a domain without a policy.
    result, found = await query(world, https, ca, tmp_path, NO_POLICY)
    assert (result, found) == ("FETCH_ERROR", None)
