"""Fetching policies over HTTPS from a loopback server (RFC 8461 §3.3)."""

from __future__ import annotations

import pytest
import trustme

from kittiwake.mtasts import FailureType, Mode, fetch_policy, policy_url

from .conftest import PolicyServer

ENFORCE = "version: STSv1\r\nmode: enforce\r\nmx: *.example.org\r\nmax_age: 86400\r\n"


def test_policy_url() -> None:
    assert policy_url("Example.ORG.") == "https://mta-sts.example.org/.well-known/mta-sts.txt"
    assert policy_url("bücher.example") == (
        "https://mta-sts.xn--bcher-kva.example/.well-known/mta-sts.txt")


@pytest.mark.parametrize("mode", ["enforce", "testing", "none"])
async def test_fetch_modes(policy_server: PolicyServer, mode: str) -> None:
    policy_server.serve("example.org", ENFORCE.replace("enforce", mode))
    async with policy_server.session() as session:
        result = await fetch_policy("example.org", session)
    assert result.ok and result.failure is None
    assert result.policy is not None and result.policy.mode is Mode(mode)
    assert result.policy.allows("mx1.example.org") and not result.policy.allows("example.org")
    assert policy_server.count("example.org") == 1


async def test_charset_parameter_is_fine(policy_server: PolicyServer) -> None:
    policy_server.serve("example.org", ENFORCE, content_type="text/plain; charset=utf-8")
    async with policy_server.session() as session:
        result = await fetch_policy("example.org", session)
    assert result.ok


async def test_wrong_content_type(policy_server: PolicyServer) -> None:
    policy_server.serve("example.org", ENFORCE, content_type="text/html")
    async with policy_server.session() as session:
        result = await fetch_policy("example.org", session)
    assert not result.ok and result.failure is FailureType.STS_POLICY_INVALID
    assert "content type 'text/html'" in result.reason


async def test_redirect_is_not_followed(policy_server: PolicyServer) -> None:
    policy_server.serve("example.net", ENFORCE)
    target = "https://mta-sts.example.net/.well-known/mta-sts.txt"
    policy_server.serve("example.org", "", status=302, headers={"Location": target})
    async with policy_server.session() as session:
        result = await fetch_policy("example.org", session)
    assert not result.ok and result.failure is FailureType.STS_POLICY_FETCH_ERROR
    assert "redirects (HTTP 302)" in result.reason and target in result.reason
    assert policy_server.count("example.net") == 0


async def test_http_error_status(policy_server: PolicyServer) -> None:
    async with policy_server.session() as session:
        result = await fetch_policy("example.com", session)
    assert result.failure is FailureType.STS_POLICY_FETCH_ERROR
    assert "HTTP 404" in result.reason


async def test_oversized_body(policy_server: PolicyServer) -> None:
    big = ENFORCE + "x-padding: " + "a" * 70000 + "\r\n"
    policy_server.serve("example.org", big)
    async with policy_server.session() as session:
        result = await fetch_policy("example.org", session)
        small = await fetch_policy("example.org", session, max_size=len(big))
    assert not result.ok and "larger than 65536 bytes" in result.reason
    assert small.ok  # the limit, not the content, refused it


async def test_invalid_policy_text(policy_server: PolicyServer) -> None:
    policy_server.serve("example.org", "version: STSv1\nmode: enforce\nmax_age: 600\n")
    async with policy_server.session() as session:
        result = await fetch_policy("example.org", session)
    assert result.failure is FailureType.STS_POLICY_INVALID
    assert "needs at least one mx" in result.reason


async def test_untrusted_certificate(policy_server: PolicyServer) -> None:
    policy_server.serve("example.org", ENFORCE)
    async with policy_server.session(trustme.CA()) as session:
        result = await fetch_policy("example.org", session)
    assert not result.ok and result.failure is FailureType.STS_WEBPKI_INVALID
    assert "certificate of mta-sts.example.org is not valid" in result.reason
    assert policy_server.requests == []


async def test_certificate_for_another_name(policy_server: PolicyServer) -> None:
    policy_server.serve("nocert.example", ENFORCE)
    async with policy_server.session() as session:
        result = await fetch_policy("nocert.example", session)
    assert result.failure is FailureType.STS_WEBPKI_INVALID
    assert policy_server.requests == []


async def test_timeout(policy_server: PolicyServer) -> None:
    policy_server.serve("example.org", ENFORCE, delay=1.0)
    async with policy_server.session() as session:
        result = await fetch_policy("example.org", session, timeout=0.1)
    assert result.failure is FailureType.STS_POLICY_FETCH_ERROR
    assert "timed out after 0.1 seconds" in result.reason


async def test_unreachable_host(policy_server: PolicyServer) -> None:
    async with policy_server.session() as session:
        result = await fetch_policy("example.info", session)  # not in the host map
    assert result.failure is FailureType.STS_POLICY_FETCH_ERROR
    assert "fetching https://mta-sts.example.info" in result.reason
