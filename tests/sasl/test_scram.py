"""SCRAM-SHA-1/-256 and -PLUS (RFC 5802, RFC 7677): RFC examples, round trips, binding rules."""

from __future__ import annotations

import base64

import pytest
import scramp
from sasl_helpers import PASSWORD, USER, credentials, options

from kittiwake.sasl import (
    Challenge,
    ChannelBinding,
    ClientError,
    Failure,
    ServerOptions,
    Success,
    derive_credentials,
    new_client,
    new_server,
)

# RFC 5802 §5 and RFC 7677 §3: user "user", password "pencil".
RFC_EXCHANGES = {
    "SCRAM-SHA-1": dict(
        salt="QSXCR+Q6sek8bf92",
        c_nonce="fyko+d2lbbFgONRv9qkxdawL",
        s_nonce="3rfcNHYJY1ZVvWVs7j",
        client_first=b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
        server_first=b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
        client_final=b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
        b"p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        server_final=b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
    ),
    "SCRAM-SHA-256": dict(
        salt="W22ZaJ0SNY7soEsUEjb6gQ==",
        c_nonce="rOprNGfwEbeRWgbNEkqO",
        s_nonce="%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        client_first=b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
        server_first=b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        client_final=b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        server_final=b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
    ),
}


def rfc_server(mech: str, **kwargs: object):
    ex = RFC_EXCHANGES[mech]
    salt = base64.b64decode(ex["salt"])
    creds = derive_credentials(
        "pencil",
        iterations_sha1=4096,
        iterations_sha256=4096,
        random_bytes=lambda n: salt,
    )
    opts = ServerOptions(
        get_credentials=lambda name: creds if name == "user" else None,
        nonce=lambda: ex["s_nonce"],
        **kwargs,  # type: ignore[arg-type]
    )
    return new_server(mech, opts)


@pytest.mark.parametrize("mech", RFC_EXCHANGES)
def test_rfc_example_server(mech: str) -> None:
    ex = RFC_EXCHANGES[mech]
    server = rfc_server(mech)
    assert server.start(ex["client_first"]) == Challenge(ex["server_first"])
    result = server.step(ex["client_final"])
    assert result == Success(mech, "user", None, server_final=ex["server_final"])


@pytest.mark.parametrize("mech", RFC_EXCHANGES)
def test_rfc_example_client(mech: str) -> None:
    ex = RFC_EXCHANGES[mech]
    client = new_client(mech, "user", "pencil", nonce=lambda: ex["c_nonce"])
    assert client.initial_response() == ex["client_first"]
    assert client.respond(ex["server_first"]) == ex["client_final"]
    assert client.respond(ex["server_final"]) == b""
    client.finish()


@pytest.mark.parametrize("mech", RFC_EXCHANGES)
def test_rfc_example_server_without_initial_response(mech: str) -> None:
    ex = RFC_EXCHANGES[mech]
    server = rfc_server(mech)
    assert server.start(None) == Challenge(b"")
    assert server.step(ex["client_first"]) == Challenge(ex["server_first"])
    assert isinstance(server.step(ex["client_final"]), Success)


@pytest.mark.parametrize("mech", RFC_EXCHANGES)
def test_rfc_example_tampered_proof(mech: str) -> None:
    ex = RFC_EXCHANGES[mech]
    server = rfc_server(mech)
    server.start(ex["client_first"])
    final = ex["client_final"]
    proof = bytearray(base64.b64decode(final.rsplit(b"p=", 1)[1]))
    proof[0] ^= 1
    forged = final.rsplit(b"p=", 1)[0] + b"p=" + base64.b64encode(bytes(proof))
    result = server.step(forged)
    assert isinstance(result, Failure) and result.reason == "invalid-credentials"
    assert result.username == "user"


def exchange(client, server):
    """Drive a client and server to the end; returns the server's last step."""
    step = server.start(client.initial_response())
    while isinstance(step, Challenge):
        step = server.step(client.respond(step.data))
    if isinstance(step, Success):
        if step.server_final is not None:
            assert client.respond(step.server_final) == b""
        client.finish()
    return step


CB = ChannelBinding("tls-exporter", b"\x01" * 32)
ALL = ["SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"]


@pytest.mark.parametrize("mech", ALL)
def test_round_trip(mech: str) -> None:
    plus = mech.endswith("-PLUS")
    server = new_server(mech, options(channel_bindings=(CB,) if plus else ()))
    client = new_client(mech, USER, PASSWORD, channel_binding=CB if plus else None)
    step = exchange(client, server)
    assert isinstance(step, Success)
    assert step.identity == USER
    assert step.channel_binding == ("tls-exporter" if plus else None)


@pytest.mark.parametrize("mech", ALL)
def test_wrong_password(mech: str) -> None:
    plus = mech.endswith("-PLUS")
    server = new_server(mech, options(channel_bindings=(CB,) if plus else ()))
    client = new_client(mech, USER, "crayon", channel_binding=CB if plus else None)
    step = exchange(client, server)
    assert isinstance(step, Failure) and step.reason == "invalid-credentials"


def test_unknown_user_looks_like_a_known_one() -> None:
    server = new_server("SCRAM-SHA-256", options())
    first = server.start(b"n,,n=nobody,r=abc")
    assert isinstance(first, Challenge)
    fields = dict(f.split("=", 1) for f in first.data.decode().split(","))
    assert fields["i"] == "10000" and len(base64.b64decode(fields["s"])) == 16
    # The same name gets the same salt again, as a stored user would.
    again = new_server("SCRAM-SHA-256", options()).start(b"n,,n=nobody,r=abc")
    assert isinstance(again, Challenge)
    assert dict(f.split("=", 1) for f in again.data.decode().split(","))["s"] == fields["s"]
    client = new_client("SCRAM-SHA-256", "nobody", "pencil", nonce=lambda: "abc")
    client.initial_response()
    step = server.step(client.respond(first.data))
    assert isinstance(step, Failure) and step.reason == "invalid-credentials"


def test_user_without_sha1_keys_fails_sha1() -> None:
    creds = derive_credentials("pencil", scram_sha1=False, cram_md5=False)
    server = new_server("SCRAM-SHA-1", ServerOptions(get_credentials=lambda n: creds))
    step = exchange(new_client("SCRAM-SHA-1", "user", "pencil"), server)
    assert isinstance(step, Failure) and step.reason == "invalid-credentials"


def test_channel_binding_mismatch_fails() -> None:
    server = new_server("SCRAM-SHA-256-PLUS", options(channel_bindings=(CB,)))
    other = ChannelBinding("tls-exporter", b"\x02" * 32)  # e.g. a MITM's TLS session
    step = exchange(new_client("SCRAM-SHA-256-PLUS", USER, PASSWORD, channel_binding=other), server)
    assert isinstance(step, Failure) and step.reason == "channel-binding"


def test_unsupported_channel_binding_type_fails() -> None:
    server = new_server("SCRAM-SHA-256-PLUS", options(channel_bindings=(CB,)))
    unique = ChannelBinding("tls-unique", b"\x01" * 12)
    client = new_client("SCRAM-SHA-256-PLUS", USER, PASSWORD, channel_binding=unique)
    step = server.start(client.initial_response())
    assert isinstance(step, Failure) and step.reason == "channel-binding"


def test_server_picks_binding_by_the_clients_type() -> None:
    unique = ChannelBinding("tls-unique", b"\x07" * 12)
    server = new_server("SCRAM-SHA-1-PLUS", options(channel_bindings=(CB, unique)))
    client = new_client("SCRAM-SHA-1-PLUS", USER, PASSWORD, channel_binding=unique)
    step = exchange(client, server)
    assert isinstance(step, Success) and step.channel_binding == "tls-unique"


def test_downgrade_y_flag_fails_when_server_supports_binding() -> None:
    # RFC 5802 §6: a client with binding support that says "y" saw no -PLUS offer;
    # the server did offer it, so someone removed it from the list.
    client = new_client("SCRAM-SHA-256", USER, PASSWORD, channel_binding=CB)
    first = client.initial_response()
    assert first is not None and first.startswith(b"y,,")
    server = new_server("SCRAM-SHA-256", options(channel_bindings=(CB,)))
    step = server.start(first)
    assert isinstance(step, Failure) and step.reason == "channel-binding"


def test_y_flag_accepted_without_server_binding() -> None:
    client = new_client("SCRAM-SHA-256", USER, PASSWORD, channel_binding=CB)
    step = exchange(client, new_server("SCRAM-SHA-256", options()))
    assert isinstance(step, Success)


def test_p_flag_on_non_plus_mechanism_fails() -> None:
    server = new_server("SCRAM-SHA-256", options(channel_bindings=(CB,)))
    step = server.start(b"p=tls-exporter,,n=user,r=abcdef")
    assert isinstance(step, Failure) and step.reason == "channel-binding"


def test_n_flag_on_plus_mechanism_fails() -> None:
    server = new_server("SCRAM-SHA-256-PLUS", options(channel_bindings=(CB,)))
    step = server.start(b"n,,n=user,r=abcdef")
    assert isinstance(step, Failure) and step.reason == "channel-binding"


def test_plus_server_needs_bindings() -> None:
    with pytest.raises(ValueError):
        new_server("SCRAM-SHA-256-PLUS", options())


def test_authzid_equal_to_user_and_other_denied_or_authorized() -> None:
    same = exchange(
        new_client("SCRAM-SHA-256", USER, PASSWORD, authzid=USER),
        new_server("SCRAM-SHA-256", options()),
    )
    assert isinstance(same, Success) and same.authzid == USER
    denied = exchange(
        new_client("SCRAM-SHA-256", USER, PASSWORD, authzid="admin"),
        new_server("SCRAM-SHA-256", options()),
    )
    assert isinstance(denied, Failure) and denied.reason == "authorization-failed"
    allowed = exchange(
        new_client("SCRAM-SHA-256", USER, PASSWORD, authzid="ad,m=in"),
        new_server("SCRAM-SHA-256", options(authorize=lambda u, a: a == "ad,m=in")),
    )
    assert isinstance(allowed, Success) and allowed.identity == "ad,m=in"


def test_username_with_comma_and_equals_is_escaped() -> None:
    name = "a,b=c"
    creds = credentials()
    opts = ServerOptions(get_credentials=lambda n: creds if n == name else None)
    client = new_client("SCRAM-SHA-1", name, PASSWORD)
    first = client.initial_response()
    assert first is not None and b"n=a=2Cb=3Dc," in first
    step = exchange(client, new_server("SCRAM-SHA-1", opts))
    assert isinstance(step, Success) and step.username == name


def test_mandatory_extension_and_bad_escape_are_malformed() -> None:
    for first in (b"n,,m=ext,n=user,r=abc", b"n,,n=us=41r,r=abc", b"n,,n=user", b"x,,n=u,r=a"):
        step = new_server("SCRAM-SHA-256", options()).start(first)
        assert isinstance(step, Failure) and step.reason == "malformed", first


def test_client_final_with_wrong_nonce_is_malformed() -> None:
    server = new_server("SCRAM-SHA-256", options())
    server.start(b"n,,n=user,r=abc")
    step = server.step(b"c=biws,r=abcXYZ,p=" + base64.b64encode(b"\x00" * 32))
    assert isinstance(step, Failure) and step.reason == "malformed"


def test_client_rejects_forged_server_signature() -> None:
    server = new_server("SCRAM-SHA-256", options())
    client = new_client("SCRAM-SHA-256", USER, PASSWORD)
    step = server.start(client.initial_response())
    assert isinstance(step, Challenge)
    result = server.step(client.respond(step.data))
    assert isinstance(result, Success)
    with pytest.raises(ClientError):
        client.respond(b"v=" + base64.b64encode(b"\x00" * 32))
    with pytest.raises(ClientError):
        client.finish()


def test_client_refuses_success_without_server_final() -> None:
    client = new_client("SCRAM-SHA-256", USER, PASSWORD)
    client.initial_response()
    with pytest.raises(ClientError):
        client.finish()


def test_client_accepts_server_final_as_success_data() -> None:
    server = new_server("SCRAM-SHA-1", options())
    client = new_client("SCRAM-SHA-1", USER, PASSWORD)
    step = server.start(client.initial_response())
    assert isinstance(step, Challenge)
    result = server.step(client.respond(step.data))
    assert isinstance(result, Success)
    client.finish(result.server_final)  # IMAP-style: data with the success


@pytest.mark.parametrize(
    "server_first",
    [
        b"r=OTHERNONCE123,s=QSXCR+Q6sek8bf92,i=4096",  # does not extend our nonce
        b"r=abc,s=QSXCR+Q6sek8bf92,i=4096",  # adds nothing
        b"r=abcdef,s=QSXCR+Q6sek8bf92,i=1",  # too few iterations
        b"r=abcdef,s=QSXCR+Q6sek8bf92,i=99999999",  # too much work
        b"r=abcdef,s=!!!,i=4096",
        b"r=abcdef,i=4096",
        b"e=other-error",
        b"\xff\xfe",
    ],
)
def test_client_rejects_bad_server_first(server_first: bytes) -> None:
    client = new_client("SCRAM-SHA-1", USER, PASSWORD, nonce=lambda: "abc")
    client.initial_response()
    with pytest.raises(ClientError):
        client.respond(server_first)


@pytest.mark.parametrize("mech", ["SCRAM-SHA-1", "SCRAM-SHA-256"])
def test_scramp_client_against_our_server(mech: str) -> None:
    server = new_server(mech, options())
    client = scramp.ScramClient([mech], USER, PASSWORD)
    step = server.start(client.get_client_first().encode())
    assert isinstance(step, Challenge)
    client.set_server_first(step.data.decode())
    result = server.step(client.get_client_final().encode())
    assert isinstance(result, Success) and result.server_final is not None
    client.set_server_final(result.server_final.decode())  # raises if the signature is wrong


@pytest.mark.parametrize("mech", ["SCRAM-SHA-1", "SCRAM-SHA-256"])
def test_our_client_against_scramp_server(mech: str) -> None:
    m = scramp.ScramMechanism(mech)
    salt, stored, server_key, iterations = m.make_auth_info(PASSWORD, iteration_count=4096)
    server = m.make_server(lambda name: (salt, stored, server_key, iterations))
    client = new_client(mech, USER, PASSWORD)
    server.set_client_first(client.initial_response().decode())
    final = client.respond(server.get_server_first().encode())
    server.set_client_final(final.decode())
    assert client.respond(server.get_server_final().encode()) == b""
    client.finish()


def test_scramp_plus_client_against_our_server() -> None:
    data = b"\x05" * 12
    server = new_server(
        "SCRAM-SHA-256-PLUS", options(channel_bindings=(ChannelBinding("tls-unique", data),))
    )
    client = scramp.ScramClient(
        ["SCRAM-SHA-256-PLUS"], USER, PASSWORD, channel_binding=("tls-unique", data)
    )
    step = server.start(client.get_client_first().encode())
    assert isinstance(step, Challenge)
    client.set_server_first(step.data.decode())
    result = server.step(client.get_client_final().encode())
    assert isinstance(result, Success) and result.channel_binding == "tls-unique"
    client.set_server_final(result.server_final.decode())
