"""CRAM-MD5 (RFC 2195): the RFC example, round trips, malformed responses."""

from __future__ import annotations

import hmac

import pytest
from sasl_helpers import PASSWORD, USER, options

from kittiwake.sasl import (
    Challenge,
    Failure,
    ServerOptions,
    Success,
    derive_credentials,
    new_client,
    new_server,
)

RFC_CHALLENGE = b"<1896.697170952@postoffice.reston.mci.net>"
RFC_RESPONSE = b"tim b913a602c7eda7a495b4e6e7334d3890"


def rfc_options() -> ServerOptions:
    creds = derive_credentials("tanstaaftanstaaf")
    return ServerOptions(
        get_credentials=lambda name: creds if name == "tim" else None,
        hostname="postoffice.reston.mci.net",
        nonce=lambda: "1896.697170952",
    )


def test_rfc2195_example_server() -> None:
    server = new_server("CRAM-MD5", rfc_options())
    assert server.start(None) == Challenge(RFC_CHALLENGE)
    assert server.step(RFC_RESPONSE) == Success("CRAM-MD5", "tim")


def test_rfc2195_example_client() -> None:
    client = new_client("CRAM-MD5", "tim", "tanstaaftanstaaf")
    assert client.initial_response() is None
    assert client.respond(RFC_CHALLENGE) == RFC_RESPONSE


def test_uppercase_hex_accepted() -> None:
    server = new_server("CRAM-MD5", rfc_options())
    server.start(None)
    assert isinstance(server.step(RFC_RESPONSE.upper().replace(b"TIM", b"tim")), Success)


def test_round_trip_random_challenge_matches_python_hmac() -> None:
    server = new_server("CRAM-MD5", options(hostname="mx.example.org"))
    challenge = server.start(None)
    assert isinstance(challenge, Challenge)
    assert challenge.data.startswith(b"<") and challenge.data.endswith(b"@mx.example.org>")
    response = new_client("CRAM-MD5", USER, PASSWORD).respond(challenge.data)
    expected = hmac.new(PASSWORD.encode(), challenge.data, "md5").hexdigest()
    assert response == f"{USER} {expected}".encode()
    assert server.step(response) == Success("CRAM-MD5", USER)


def test_challenges_are_unique() -> None:
    a = new_server("CRAM-MD5", options()).start(None)
    b = new_server("CRAM-MD5", options()).start(None)
    assert a != b


@pytest.mark.parametrize(("user", "password"), [(USER, "crayon"), ("nobody", PASSWORD)])
def test_bad_credentials(user: str, password: str) -> None:
    server = new_server("CRAM-MD5", options())
    challenge = server.start(None)
    assert isinstance(challenge, Challenge)
    step = server.step(new_client("CRAM-MD5", user, password).respond(challenge.data))
    assert isinstance(step, Failure) and step.reason == "invalid-credentials"
    assert step.username == user


def test_account_without_cram_keys_fails() -> None:
    creds = derive_credentials(PASSWORD, cram_md5=False)
    server = new_server("CRAM-MD5", ServerOptions(get_credentials=lambda n: creds))
    challenge = server.start(None)
    assert isinstance(challenge, Challenge)
    step = server.step(new_client("CRAM-MD5", USER, PASSWORD).respond(challenge.data))
    assert isinstance(step, Failure) and step.reason == "invalid-credentials"


@pytest.mark.parametrize(
    "response",
    [
        b"",
        b"tim",
        b"tim b913a602",
        b" b913a602c7eda7a495b4e6e7334d3890",
        b"tim z913a602c7eda7a495b4e6e7334d3890",
        b"\xff b913a602c7eda7a495b4e6e7334d3890",
    ],
)
def test_malformed_response(response: bytes) -> None:
    server = new_server("CRAM-MD5", rfc_options())
    server.start(None)
    step = server.step(response)
    assert isinstance(step, Failure) and step.reason == "malformed"


def test_initial_response_not_allowed() -> None:
    step = new_server("CRAM-MD5", rfc_options()).start(b"tim")
    assert isinstance(step, Failure) and step.reason == "malformed"
