"""The resumable pure-Python MD5 (RFC 1321) against hashlib."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kittiwake.sasl import md5


@pytest.mark.parametrize(
    ("message", "digest"),
    [  # RFC 1321 §A.5 test suite
        (b"", "d41d8cd98f00b204e9800998ecf8427e"),
        (b"a", "0cc175b9c0f1b6a831c399e269772661"),
        (b"abc", "900150983cd24fb0d6963f7d28e17f72"),
        (b"message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
        (b"12345678901234567890" * 4, "57edf4a22be3c955ac49da2e2107b67a"),
    ],
)
def test_rfc1321_test_suite(message: bytes, digest: str) -> None:
    assert md5.digest_from(md5.INITIAL_STATE, 0, message).hex() == digest


@settings(max_examples=150, deadline=None)
@given(
    prefix_blocks=st.integers(0, 3),
    prefix=st.binary(min_size=192, max_size=192),
    tail=st.binary(max_size=300),
)
def test_resume_from_state_matches_hashlib(prefix_blocks: int, prefix: bytes, tail: bytes) -> None:
    head = prefix[: prefix_blocks * 64]
    state = md5.state_after(head)
    # The stored form (16 bytes) round-trips.
    state = md5.state_from_bytes(md5.state_to_bytes(state))
    assert md5.digest_from(state, len(head), tail) == hashlib.md5(head + tail).digest()


def test_state_after_rejects_partial_blocks() -> None:
    with pytest.raises(ValueError):
        md5.state_after(b"x" * 65)
    with pytest.raises(ValueError):
        md5.digest_from(md5.INITIAL_STATE, 10, b"")
