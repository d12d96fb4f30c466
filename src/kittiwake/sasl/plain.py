"""The PLAIN mechanism (RFC 4616), server and client, and cleartext password checks.

``message = [authzid] NUL authcid NUL passwd`` in UTF-8 (RFC 4616 §2). The server
verifies the password against the stored SCRAM-SHA-256 keys
(:func:`~kittiwake.sasl.credentials.verify_password`); PLAIN belongs on TLS
connections only, which the registry enforces when advertising.
"""

from __future__ import annotations

import functools

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
from kittiwake.sasl.credentials import Credentials, derive_credentials, verify_password

__all__ = ["PlainClient", "PlainServer", "check_cleartext"]

# RFC 4616 §2: authcid and passwd are 1 to 255 octets.
_MAX_FIELD = 255


@functools.cache
def _dummy_credentials() -> Credentials:
    # Verified against for unknown users so that they cost as much as known ones.
    return derive_credentials("unknown user placeholder", scram_sha1=False, cram_md5=False)


def check_cleartext(mech: ServerMechanism, username: str, password: str) -> None:
    """Verify a cleartext password for ``username``; raise the mechanism's failure."""
    creds = mech.options.get_credentials(username)
    ok = verify_password(creds or _dummy_credentials(), password)
    if creds is None:
        raise mech._fail(FailureReason.INVALID_CREDENTIALS, f"unknown user {username!r}")
    if not ok:
        raise mech._fail(FailureReason.INVALID_CREDENTIALS, f"wrong password for {username!r}")


def check_authzid(mech: ServerMechanism, username: str, authzid: str | None) -> None:
    """RFC 4422 §3.4.1: an authzid other than the username needs the driver's consent."""
    if authzid and authzid != username and not mech.options.authorize(username, authzid):
        raise mech._fail(
            FailureReason.AUTHORIZATION_FAILED, f"{username!r} may not act as {authzid!r}"
        )


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Malformed(f"{what} is not UTF-8") from exc


class PlainServer(ServerMechanism):
    """RFC 4616 server: one message, optionally as the initial response."""

    name = "PLAIN"

    def _start(self, initial_response: bytes | None) -> Step:
        if initial_response is None:
            # RFC 4422 §5: the server sends an empty challenge and the client responds.
            return Challenge(b"")
        return self._step(initial_response)

    def _step(self, client_data: bytes) -> Step:
        parts = client_data.split(b"\x00")
        if len(parts) != 3:
            raise Malformed("PLAIN message needs exactly two NUL separators")
        raw_authzid, raw_authcid, raw_passwd = parts
        if not 1 <= len(raw_authcid) <= _MAX_FIELD or not 1 <= len(raw_passwd) <= _MAX_FIELD:
            raise Malformed("PLAIN authcid and passwd must be 1 to 255 octets")
        authzid = _utf8(raw_authzid, "authzid") or None
        username = _utf8(raw_authcid, "authcid")
        password = _utf8(raw_passwd, "passwd")
        self.username = username
        check_cleartext(self, username, password)
        check_authzid(self, username, authzid)
        return Success(self.name, username, authzid)


class PlainClient(ClientMechanism):
    """RFC 4616 client. Sends its message as initial response or on the first challenge."""

    name = "PLAIN"

    def __init__(self, username: str, password: str, authzid: str | None = None) -> None:
        self._message = f"{authzid or ''}\x00{username}\x00{password}".encode()
        self._sent = False

    def initial_response(self) -> bytes | None:
        self._sent = True
        return self._message

    def respond(self, challenge: bytes) -> bytes:
        if self._sent:
            raise ClientError("PLAIN: unexpected challenge after the message was sent")
        if challenge:
            raise ClientError("PLAIN: server challenge must be empty")
        self._sent = True
        return self._message
