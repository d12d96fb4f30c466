"""The MTA-STS policy served at https://mta-sts.DOMAIN/.well-known/mta-sts.txt (RFC 8461 §3.3)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme
from httphelpers import HOSTNAME, ServeFactory, domains_config, make_config, static_config

from kittiwake.config import DomainsConfig, load, write_domains, write_static
from kittiwake.config.load import cross_checks
from kittiwake.config.reload import DomainsWatcher
from kittiwake.http import HTTPContext, published_policy
from kittiwake.mtasts import parse_policy, parse_record, policy_id_for

POLICY_PATH = "/.well-known/mta-sts.txt"
STS_HOST = "mta-sts.example.org"


async def test_policy_is_served_over_https_as_text_plain(serve: ServeFactory,
                                                         ctx: HTTPContext) -> None:
    async with serve(ctx) as served:
        reply = await served.get(STS_HOST, POLICY_PATH)
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/plain")
    policy = parse_policy(reply.text)
    assert policy.mode == "enforce" and policy.max_age == 604800
    # Our smtp listener's host name first, then the configured extra pattern.
    assert policy.mx == (HOSTNAME, "backup.example.net")
    assert reply.text == ("version: STSv1\r\nmode: enforce\r\nmx: mail.example.org\r\n"
                          "mx: backup.example.net\r\nmax_age: 604800\r\n")
    assert reply.headers["ETag"] == f'"{policy_id_for(reply.text)}"'
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_policy_id_changes_exactly_when_the_policy_does() -> None:
    def published(**mta_sts: object) -> tuple[str, str]:
        settings = domains_config(dict(mta_sts)).domains["example.org"].mta_sts
        assert settings is not None
        p = published_policy(settings, [HOSTNAME])
        return p.text, p.id

    text, ident = published(mode="testing")
    assert published(mode="testing") == (text, ident)  # stable across calls/restarts
    assert published(mode="enforce")[1] != ident
    assert published(mode="testing", max_age_seconds=3600)[1] != ident
    assert published(mode="testing", mx=["*.example.net"])[1] != ident
    # RFC 8461 §3.1: id is 1*32(ALPHA / DIGIT); our own record parser accepts it.
    assert parse_record(f"v=STSv1; id={ident}").id == ident and len(ident) == 32
    # Our own host listed again (in any case) is one mx line, not two.
    assert published(mode="testing", mx=[HOSTNAME.upper()])[0].count("mx: ") == 1
    # A configured id is kept as it is.
    assert published(mode="testing", policy_id="2026a")[1] == "2026a"


async def test_reloaded_domains_conf_is_served_by_the_next_request(
        serve: ServeFactory, tmp_path: Path) -> None:
    current = [domains_config({"mode": "testing"})]
    ctx = HTTPContext.from_config(make_config(tmp_path, domains=current[0]), "public",
                                  domains=lambda: current[0])
    async with serve(ctx) as served:
        first = await served.get(STS_HOST, POLICY_PATH)
        current[0] = domains_config({"mode": "enforce"})
        second = await served.get(STS_HOST, POLICY_PATH)
        current[0] = DomainsConfig.model_validate({"domains": {"example.org": {}}})
        third = await served.get(STS_HOST, POLICY_PATH)
    assert "mode: testing" in first.text and "mode: enforce" in second.text
    assert first.headers["ETag"] != second.headers["ETag"]
    assert third.status == 404


async def test_domains_conf_edited_on_disk_changes_policy_and_id(
        serve: ServeFactory, tmp_path: Path, ca: trustme.CA) -> None:
    """The server's wiring: the reload watcher's current config, read per request."""
    leaf = ca.issue_cert(HOSTNAME)
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    leaf.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    write_static(tmp_path, static_config())
    write_domains(tmp_path, domains_config({"mode": "testing"}))
    config = load(tmp_path)
    watcher = DomainsWatcher(tmp_path, config.domains, static=config.static)
    ctx = HTTPContext.from_config(config, "public", domains=lambda: watcher.current)
    async with serve(ctx) as served:
        before = await served.get(STS_HOST, POLICY_PATH)
        write_domains(tmp_path, domains_config({"mode": "enforce", "mx": ["*.example.net"]}))
        assert watcher.check()
        after = await served.get(STS_HOST, POLICY_PATH)
    assert parse_policy(before.text).mode == "testing"
    assert parse_policy(after.text).mx == (HOSTNAME, "*.example.net")
    settings = watcher.current.domains["example.org"].mta_sts
    assert settings is not None
    assert after.headers["ETag"] == f'"{published_policy(settings, [HOSTNAME]).id}"' \
        != before.headers["ETag"]


async def test_only_mta_sts_hosts_of_our_domains_serve_a_policy(serve: ServeFactory,
                                                                ctx: HTTPContext) -> None:
    async with serve(ctx) as served:
        for host in ("mta-sts.example.net",  # ours, no policy configured
                     "mta-sts.other.example",  # not a domain of ours
                     "example.org",  # the path is only on mta-sts.
                     HOSTNAME):
            assert (await served.get(host, POLICY_PATH)).status == 404, host
        # An IP address as Host names no site.
        by_ip = await served.get("127.0.0.1", POLICY_PATH, ssl=False)
    assert by_ip.status == 404 and "unknown host" in by_ip.text


async def test_head_and_other_methods(serve: ServeFactory, ctx: HTTPContext) -> None:
    async with serve(ctx) as served:
        got = await served.get(STS_HOST, POLICY_PATH)
        head = await served.request("HEAD", STS_HOST, POLICY_PATH)
        post = await served.request("POST", STS_HOST, POLICY_PATH, data=b"x")
    assert head.status == 200 and head.body == b""
    assert int(head.headers["Content-Length"]) == len(got.body)
    assert post.status == 405 and post.headers["Allow"] == "GET, HEAD"


async def test_plain_http_when_reverse_proxied(serve: ServeFactory, tmp_path: Path) -> None:
    static = static_config(http={"enabled": True, "reverse_proxied": True})
    ctx = HTTPContext.from_config(make_config(tmp_path, static=static), "public")
    assert ctx.reverse_proxied
    async with serve(ctx, tls=False) as served:
        reply = await served.get(STS_HOST, POLICY_PATH)
    assert reply.status == 200  # served, not redirected
    assert "Strict-Transport-Security" not in reply.headers  # RFC 6797 §7.2
    assert parse_policy(reply.text).mode == "enforce"


def test_policy_id_must_be_an_rfc_8461_id() -> None:
    with pytest.raises(ValueError, match="not an MTA-STS id"):
        domains_config({"policy_id": "2026-01-01"})
    with pytest.raises(ValueError, match="not a domain name"):
        domains_config({"mx": ["bad name"]})


def test_config_test_refuses_a_policy_without_any_mx(tmp_path: Path) -> None:
    static = static_config(smtp={"enabled": False})
    problems = cross_checks(tmp_path, static, domains_config({"mode": "enforce"}))
    assert len(problems) == 1
    assert 'domains."example.org".mta_sts.mx: mode enforce needs an MX host' in problems[0]
    assert cross_checks(tmp_path, static, domains_config({"mode": "none"})) == []
    assert cross_checks(tmp_path, static, domains_config(
        {"mode": "enforce", "mx": ["mx.example.net"]})) == []
