"""The LOGIN mechanism (draft-murchison-sasl-login-00), server and client.

The server prompts "Username:" then "Password:"; the client answers each with
the bare value. Some clients send the username as initial response, which the
draft allows. There is no authorization identity. Like PLAIN, only over TLS.
"""

from __future__ import annotations

from kittiwake.sasl.base import (
    Challenge,
    ClientError,
    ClientMechanism,
    Malformed,
    ServerMechanism,
    Step,
    Success,
)
from kittiwake.sasl.plain import check_cleartext

__all__ = ["LoginClient", "LoginServer"]

USERNAME_PROMPT = b"Username:"
PASSWORD_PROMPT = b"Password:"


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Malformed(f"LOGIN {what} is not UTF-8") from exc


class LoginServer(ServerMechanism):
    name = "LOGIN"

    def _start(self, initial_response: bytes | None) -> Step:
        if not initial_response:  # None, or "=" (empty) which carries no username
            return Challenge(USERNAME_PROMPT)
        return self._step(initial_response)

    def _step(self, client_data: bytes) -> Step:
        if b"\x00" in client_data:
            raise Malformed("LOGIN value contains NUL")
        if self.username is None:
            self.username = _utf8(client_data, "username")
            return Challenge(PASSWORD_PROMPT)
        password = _utf8(client_data, "password")
        check_cleartext(self, self.username, password)
        return Success(self.name, self.username)


class LoginClient(ClientMechanism):
    """Answers the first challenge with the username and the second with the password."""

    name = "LOGIN"

    def __init__(self, username: str, password: str) -> None:
        self._answers = [username.encode(), password.encode()]

    def initial_response(self) -> bytes | None:
        return None

    def respond(self, challenge: bytes) -> bytes:
        if not self._answers:
            raise ClientError("LOGIN: unexpected third challenge")
        return self._answers.pop(0)
