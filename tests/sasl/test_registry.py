"""Which mechanisms are advertised and chosen, and round trips through the registry."""

from __future__ import annotations

import pytest
from sasl_helpers import PASSWORD, USER, options

from kittiwake.sasl import (
    MECHANISMS,
    Challenge,
    ChannelBinding,
    Failure,
    Success,
    UnknownMechanism,
    choose_client_mechanism,
    new_client,
    new_server,
    server_mechanisms,
)


def test_server_mechanisms_with_tls_and_binding() -> None:
    assert server_mechanisms(tls=True, channel_binding=True) == [
        "SCRAM-SHA-256-PLUS",
        "SCRAM-SHA-256",
        "SCRAM-SHA-1-PLUS",
        "SCRAM-SHA-1",
        "CRAM-MD5",
        "PLAIN",
        "LOGIN",
    ]


def test_server_mechanisms_tls_without_binding() -> None:
    assert server_mechanisms(tls=True, channel_binding=False) == [
        "SCRAM-SHA-256",
        "SCRAM-SHA-1",
        "CRAM-MD5",
        "PLAIN",
        "LOGIN",
    ]


def test_server_mechanisms_without_tls() -> None:
    assert server_mechanisms(tls=False, channel_binding=False) == [
        "SCRAM-SHA-256",
        "SCRAM-SHA-1",
        "CRAM-MD5",
    ]
    assert server_mechanisms(tls=False, channel_binding=False, allow_plaintext=True)[-2:] == [
        "PLAIN",
        "LOGIN",
    ]


def test_server_mechanisms_enabled_subset() -> None:
    assert server_mechanisms(True, True, enabled=["plain", "scram-sha-256-plus"]) == [
        "SCRAM-SHA-256-PLUS",
        "PLAIN",
    ]


@pytest.mark.parametrize(
    ("offered", "tls", "cb", "allowed", "chosen"),
    [
        (MECHANISMS, True, True, None, "SCRAM-SHA-256-PLUS"),
        (MECHANISMS, True, False, None, "SCRAM-SHA-256"),
        (["SCRAM-SHA-1-PLUS", "SCRAM-SHA-1", "PLAIN"], True, True, None, "SCRAM-SHA-1-PLUS"),
        (["SCRAM-SHA-1-PLUS", "SCRAM-SHA-1", "PLAIN"], True, False, None, "SCRAM-SHA-1"),
        (["plain", "login", "cram-md5"], True, False, None, "CRAM-MD5"),
        (["LOGIN", "PLAIN"], True, False, None, "PLAIN"),
        (["LOGIN"], True, False, None, "LOGIN"),
        (["LOGIN", "PLAIN"], False, False, None, None),  # never cleartext without TLS
        (["PLAIN", "CRAM-MD5"], False, False, None, "CRAM-MD5"),
        (["GSSAPI", "XOAUTH2"], True, True, None, None),
        (MECHANISMS, True, True, ["PLAIN"], "PLAIN"),
        ([], True, True, None, None),
    ],
)
def test_choose_client_mechanism(offered, tls, cb, allowed, chosen) -> None:
    assert choose_client_mechanism(offered, tls, cb, allowed) == chosen


def test_unknown_mechanisms() -> None:
    with pytest.raises(UnknownMechanism):
        new_server("GSSAPI", options())
    with pytest.raises(UnknownMechanism):
        new_server("SCRAM-SHA-256-PLUS", options())  # no binding on this connection
    with pytest.raises(UnknownMechanism):
        new_client("SCRAM-SHA-1-PLUS", USER, PASSWORD)
    with pytest.raises(UnknownMechanism):
        new_client("DIGEST-MD5", USER, PASSWORD)


CB = ChannelBinding("tls-server-end-point", b"\x09" * 32)


def run(mech: str, password: str):
    server = new_server(mech.lower(), options(channel_bindings=(CB,)))
    # A client with binding data that picks plain SCRAM while -PLUS is offered
    # would say "y" and be refused as a downgrade; drivers pick -PLUS then.
    client = new_client(
        mech, USER, password, channel_binding=CB if mech.endswith("-PLUS") else None
    )
    step = server.start(client.initial_response())
    while isinstance(step, Challenge):
        step = server.step(client.respond(step.data))
    return server, client, step


@pytest.mark.parametrize("mech", MECHANISMS)
def test_every_mechanism_round_trip(mech: str) -> None:
    server, client, step = run(mech, PASSWORD)
    assert isinstance(step, Success) and step.username == USER and step.mechanism == mech
    assert server.done
    if step.server_final is not None:
        assert client.respond(step.server_final) == b""
    client.finish()


@pytest.mark.parametrize("mech", MECHANISMS)
def test_every_mechanism_wrong_password(mech: str) -> None:
    _, _, step = run(mech, "crayon")
    assert isinstance(step, Failure) and step.reason == "invalid-credentials"
    assert step.username == USER
