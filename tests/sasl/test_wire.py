"""Base64 framing helpers for SMTP AUTH / IMAP AUTHENTICATE drivers."""

from __future__ import annotations

import pytest

from kittiwake.sasl.wire import (
    CANCEL,
    decode_initial_response,
    decode_response,
    encode_challenge,
)


def test_initial_response() -> None:
    assert decode_initial_response("=") == b""
    assert decode_initial_response(b"AHVzZXIAcGVuY2ls") == b"\x00user\x00pencil"
    for bad in ("", "not base64!", "AHVzZXIAcGVuY2l"):
        with pytest.raises(ValueError):
            decode_initial_response(bad)


def test_response_lines() -> None:
    assert decode_response(b"*") is CANCEL
    assert decode_response(b"") == b""
    assert decode_response("dXNlcg==\r\n") == b"user"
    for bad in (b"dXNlcg=", b"d\xffXN", "ü"):
        with pytest.raises(ValueError):
            decode_response(bad)


def test_encode_challenge() -> None:
    assert encode_challenge(b"") == b""
    assert encode_challenge(b"Username:") == b"VXNlcm5hbWU6"
