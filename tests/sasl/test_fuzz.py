"""Arbitrary client data never raises out of a server mechanism: it gives a Step."""

from __future__ import annotations

import base64

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sasl_helpers import options

from kittiwake.sasl import (
    MECHANISMS,
    Challenge,
    ChannelBinding,
    ClientError,
    Failure,
    Success,
    new_client,
    new_server,
)

CB = ChannelBinding("tls-exporter", b"\x01" * 32)
OPTIONS = options(channel_bindings=(CB,), nonce=lambda: "srvnonce")

# Pieces that get SCRAM parsers further than random bytes do.
_TOKENS = [
    b"n",
    b"y",
    b"p=tls-exporter",
    b"p=tls-unique",
    b"a=user",
    b"n=user",
    b"r=abc",
    b"r=abcsrvnonce",
    b"c=biws",
    b"c=" + base64.b64encode(b"p=tls-exporter,,"),
    b"p=" + base64.b64encode(b"\x00" * 32),
    b"p=" + base64.b64encode(b"\x00" * 20),
    b"m=x",
    b"x=y",
    b"=2C",
    b"=3D",
    b"=",
    b"",
    b"\x00",
    b"\xff",
    b"user",
    b"pencil",
]
_client_data = st.one_of(
    st.binary(max_size=120),
    st.lists(st.sampled_from(_TOKENS), max_size=8).map(b",".join),
    st.lists(st.sampled_from(_TOKENS), max_size=4).map(b"\x00".join),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mech=st.sampled_from(MECHANISMS),
    initial=st.one_of(st.none(), _client_data),
    steps=st.lists(_client_data, max_size=4),
)
def test_server_mechanisms_never_raise(mech, initial, steps) -> None:
    server = new_server(mech, OPTIONS)
    step = server.start(initial)
    for data in steps:
        assert isinstance(step, Challenge | Success | Failure)
        step = server.step(data)
    assert isinstance(step, Challenge | Success | Failure)
    if not isinstance(step, Challenge):
        assert server.done


CLIENT_NONCE = "abc"


@settings(max_examples=300, deadline=None)
@given(
    mech=st.sampled_from(MECHANISMS),
    challenges=st.lists(
        st.one_of(
            _client_data,
            st.sampled_from([b"r=abcdef,s=QSXCR+Q6sek8bf92,i=4096", b"v=AAAA", b"e=x"]),
        ),
        max_size=4,
    ),
    success_data=st.one_of(st.none(), _client_data),
)
def test_client_mechanisms_raise_only_client_error(mech, challenges, success_data) -> None:
    client = new_client(
        mech,
        "user",
        "pencil",
        channel_binding=CB if mech.endswith("-PLUS") else None,
        nonce=lambda: CLIENT_NONCE,
    )
    try:
        client.initial_response()
        for challenge in challenges:
            assert isinstance(client.respond(challenge), bytes)
        client.finish(success_data)
    except ClientError:
        pass
