"""The CRAM-MD5 mechanism (RFC 2195), server and client.

The server sends a unique challenge ``<nonce@hostname>``; the client answers
``username SP hex(HMAC-MD5(password, challenge))``. The server finishes the
HMAC from the stored MD5 states (``credentials.cram_md5_digest``), so it needs
no password. No initial response is allowed: the server speaks first.
"""

from __future__ import annotations

import hmac

from kittiwake.sasl.base import (
    Challenge,
    ClientError,
    ClientMechanism,
    FailureReason,
    Malformed,
    ServerMechanism,
    Step,
    Success,
)
from kittiwake.sasl.credentials import cram_md5_digest
from kittiwake.sasl.prep import opaque_string

__all__ = ["CramMD5Client", "CramMD5Server"]

_HEX = frozenset(b"0123456789abcdefABCDEF")


class CramMD5Server(ServerMechanism):
    name = "CRAM-MD5"

    _challenge: bytes = b""

    def _start(self, initial_response: bytes | None) -> Step:
        if initial_response is not None:
            raise Malformed("CRAM-MD5 does not allow an initial response")
        # RFC 2195 §2: a presumptively arbitrary and unique challenge in msg-id form.
        self._challenge = f"<{self.options.nonce()}@{self.options.hostname}>".encode()
        return Challenge(self._challenge)

    def _step(self, client_data: bytes) -> Step:
        # RFC 2195 §2: the user name, a space, and the digest as 32 lowercase hex digits.
        raw_user, sep, digest_hex = client_data.rpartition(b" ")
        if not sep or not raw_user or len(digest_hex) != 32 or not set(digest_hex) <= _HEX:
            raise Malformed("CRAM-MD5 response is not 'username SP 32-hex-digest'")
        try:
            username = raw_user.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Malformed("CRAM-MD5 username is not UTF-8") from exc
        self.username = username
        creds = self.options.get_credentials(username)
        if creds is None:
            raise self._fail(FailureReason.INVALID_CREDENTIALS, f"unknown user {username!r}")
        if creds.cram_md5 is None:
            raise self._fail(
                FailureReason.INVALID_CREDENTIALS, f"no CRAM-MD5 keys stored for {username!r}"
            )
        expected = cram_md5_digest(creds.cram_md5, self._challenge).hex().encode()
        if not hmac.compare_digest(expected, digest_hex.lower()):
            raise self._fail(FailureReason.INVALID_CREDENTIALS, f"wrong digest for {username!r}")
        return Success(self.name, username)


class CramMD5Client(ClientMechanism):
    """RFC 2195 client; the password is prepared as when credentials are derived."""

    name = "CRAM-MD5"

    def __init__(self, username: str, password: str) -> None:
        self._username = username
        self._password = opaque_string(password).encode("utf-8")
        self._answered = False

    def initial_response(self) -> bytes | None:
        return None

    def respond(self, challenge: bytes) -> bytes:
        if self._answered:
            raise ClientError("CRAM-MD5: unexpected second challenge")
        if not challenge:
            raise ClientError("CRAM-MD5: empty challenge")
        self._answered = True
        digest = hmac.new(self._password, challenge, "md5").hexdigest()
        return f"{self._username} {digest}".encode()
