"""Shared helpers for the SASL tests: one user with credentials derived once."""

from __future__ import annotations

from kittiwake.sasl import Credentials, ServerOptions, derive_credentials

USER = "user"
PASSWORD = "pencil"

_CREDS: dict[str, Credentials] = {}


def credentials(password: str = PASSWORD) -> Credentials:
    """Credentials for ``password``, derived once per test run (PBKDF2 is slow)."""
    if password not in _CREDS:
        _CREDS[password] = derive_credentials(password)
    return _CREDS[password]


def options(**kwargs: object) -> ServerOptions:
    """Server options knowing USER with PASSWORD."""
    creds = credentials()
    kwargs.setdefault("get_credentials", lambda name: creds if name == USER else None)
    return ServerOptions(**kwargs)  # type: ignore[arg-type]
