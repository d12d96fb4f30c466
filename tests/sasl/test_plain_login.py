"""PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login) servers and clients."""

from __future__ import annotations

import pytest
from sasl_helpers import PASSWORD, USER, options

from kittiwake.sasl import Challenge, ClientError, Failure, Success, new_client, new_server


def test_plain_initial_response() -> None:
    step = new_server("PLAIN", options()).start(b"\x00user\x00pencil")
    assert step == Success("PLAIN", "user", None)


def test_plain_without_initial_response() -> None:
    server = new_server("PLAIN", options())
    assert server.start(None) == Challenge(b"")
    assert server.step(b"\x00user\x00pencil") == Success("PLAIN", "user", None)


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"\x00user\x00crayon", "invalid-credentials"),
        (b"\x00nobody\x00pencil", "invalid-credentials"),
        (b"\x00USER\x00pencil", "invalid-credentials"),  # normalising is the lookup's job
        (b"admin\x00user\x00pencil", "authorization-failed"),
        (b"admin\x00user\x00crayon", "invalid-credentials"),  # no authz hint on a bad password
        (b"user\x00pencil", "malformed"),  # one NUL
        (b"\x00user\x00pen\x00cil", "malformed"),
        (b"\x00\x00pencil", "malformed"),  # empty authcid
        (b"\x00user\x00", "malformed"),  # empty passwd
        (b"\x00us\xffer\x00pencil", "malformed"),  # not UTF-8
        (b"\x00user\x00" + b"p" * 256, "malformed"),  # RFC 4616: at most 255 octets
        (b"", "malformed"),  # "AUTH PLAIN =" is an empty message
    ],
)
def test_plain_failures(message: bytes, reason: str) -> None:
    step = new_server("PLAIN", options()).start(message)
    assert isinstance(step, Failure)
    assert step.reason == reason


def test_plain_authzid_same_as_user_or_authorized() -> None:
    assert new_server("PLAIN", options()).start(b"user\x00user\x00pencil") == Success(
        "PLAIN", "user", "user"
    )
    opts = options(authorize=lambda user, authzid: (user, authzid) == ("user", "postmaster"))
    step = new_server("PLAIN", opts).start(b"postmaster\x00user\x00pencil")
    assert isinstance(step, Success) and step.identity == "postmaster"


def test_plain_client_message() -> None:
    client = new_client("PLAIN", "user", "pencil", authzid="admin")
    assert client.initial_response() == b"admin\x00user\x00pencil"
    with pytest.raises(ClientError):
        client.respond(b"")


def test_plain_client_without_initial_response() -> None:
    client = new_client("PLAIN", USER, PASSWORD)
    server = new_server("PLAIN", options())
    step = server.start(None)
    assert isinstance(step, Challenge)
    assert isinstance(server.step(client.respond(step.data)), Success)
    client.finish()


def test_login_exchange() -> None:
    server = new_server("LOGIN", options())
    client = new_client("LOGIN", USER, PASSWORD)
    assert client.initial_response() is None
    step = server.start(None)
    assert step == Challenge(b"Username:")
    step = server.step(client.respond(step.data))
    assert step == Challenge(b"Password:")
    assert server.step(client.respond(step.data)) == Success("LOGIN", USER)
    with pytest.raises(ClientError):
        client.respond(b"Something:")


def test_login_username_as_initial_response() -> None:
    server = new_server("LOGIN", options())
    assert server.start(b"user") == Challenge(b"Password:")
    assert server.step(b"pencil") == Success("LOGIN", "user")


@pytest.mark.parametrize(
    ("username", "password", "reason"),
    [
        (b"user", b"crayon", "invalid-credentials"),
        (b"nobody", b"pencil", "invalid-credentials"),
        (b"us\xff", b"pencil", "malformed"),
        (b"user", b"pen\xffcil", "malformed"),
        (b"user", b"pen\x00cil", "malformed"),
    ],
)
def test_login_failures(username: bytes, password: bytes, reason: str) -> None:
    server = new_server("LOGIN", options())
    server.start(None)
    step = server.step(username)
    if isinstance(step, Challenge):
        step = server.step(password)
    assert isinstance(step, Failure) and step.reason == reason


def test_step_after_the_end_is_a_failure_not_an_exception() -> None:
    server = new_server("PLAIN", options())
    assert isinstance(server.start(b"\x00user\x00pencil"), Success)
    assert server.done
    step = server.step(b"more")
    assert isinstance(step, Failure) and step.reason == "malformed"
