"""Which SASL mechanisms to offer or pick, strongest first, and their constructors.

Server side: :func:`server_mechanisms` lists what to advertise (SMTP EHLO
``AUTH``, IMAP ``AUTH=``): -PLUS only when channel binding data exists, PLAIN
and LOGIN only over TLS unless explicitly allowed (RFC 4616 §6, RFC 4954 §4).
Client side: :func:`choose_client_mechanism` picks from what a server offers.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable

from kittiwake.sasl.base import (
    ChannelBinding,
    ClientMechanism,
    ServerMechanism,
    ServerOptions,
    random_nonce,
)
from kittiwake.sasl.crammd5 import CramMD5Client, CramMD5Server
from kittiwake.sasl.login import LoginClient, LoginServer
from kittiwake.sasl.plain import PlainClient, PlainServer
from kittiwake.sasl.scram import ScramClient, ScramServer

__all__ = [
    "MECHANISMS",
    "UnknownMechanism",
    "choose_client_mechanism",
    "new_client",
    "new_server",
    "server_mechanisms",
]

# Strongest first.
MECHANISMS = (
    "SCRAM-SHA-256-PLUS",
    "SCRAM-SHA-256",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-1",
    "CRAM-MD5",
    "PLAIN",
    "LOGIN",
)
_CLEARTEXT = frozenset({"PLAIN", "LOGIN"})


class UnknownMechanism(ValueError):
    """The mechanism name is not one we implement, or cannot be used here."""


def _usable(name: str, tls: bool, channel_binding: bool, allow_plaintext: bool) -> bool:
    if name.endswith("-PLUS"):
        return tls and channel_binding
    if name in _CLEARTEXT:
        return tls or allow_plaintext
    return True


def server_mechanisms(
    tls: bool,
    channel_binding: bool,
    allow_plaintext: bool = False,
    enabled: Collection[str] | None = None,
) -> list[str]:
    """Mechanisms to advertise, strongest first.

    ``channel_binding``: the connection has binding data (see
    ``connection_channel_bindings``). ``allow_plaintext``: offer PLAIN/LOGIN
    without TLS. ``enabled`` restricts to a configured subset.
    """
    wanted = None if enabled is None else {n.upper() for n in enabled}
    return [
        n
        for n in MECHANISMS
        if (wanted is None or n in wanted) and _usable(n, tls, channel_binding, allow_plaintext)
    ]


def new_server(name: str, options: ServerOptions) -> ServerMechanism:
    """A fresh server exchange for ``name`` (case-insensitive).

    Raises :class:`UnknownMechanism` for names we do not implement and for
    -PLUS without channel bindings in ``options``. Whether the name was
    advertised on this connection is the driver's check.
    """
    upper = name.upper()
    plus = upper.endswith("-PLUS")
    if upper in ("SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1", "SCRAM-SHA-1-PLUS"):
        if plus and not options.channel_bindings:
            raise UnknownMechanism(f"{upper} needs channel binding, none on this connection")
        return ScramServer(options, "sha256" if "SHA-256" in upper else "sha1", plus)
    if upper == "CRAM-MD5":
        return CramMD5Server(options)
    if upper == "PLAIN":
        return PlainServer(options)
    if upper == "LOGIN":
        return LoginServer(options)
    raise UnknownMechanism(f"unsupported SASL mechanism {name!r}")


def new_client(
    name: str,
    username: str,
    password: str,
    *,
    authzid: str | None = None,
    channel_binding: ChannelBinding | None = None,
    nonce: Callable[[], str] = random_nonce,
) -> ClientMechanism:
    """A client exchange for ``name``; raises :class:`UnknownMechanism`.

    ``channel_binding`` is the connection's best binding (needed for -PLUS; for
    plain SCRAM it makes the gs2 flag "y"). LOGIN and CRAM-MD5 have no authzid.
    Raises ``ValueError`` (PrecisError) if SCRAM/CRAM-MD5 cannot prepare the password.
    """
    upper = name.upper()
    if upper in ("SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1", "SCRAM-SHA-1-PLUS"):
        plus = upper.endswith("-PLUS")
        if plus and channel_binding is None:
            raise UnknownMechanism(f"{upper} needs channel binding data")
        hash_name = "sha256" if "SHA-256" in upper else "sha1"
        return ScramClient(
            hash_name,
            plus,
            username,
            password,
            authzid=authzid,
            channel_binding=channel_binding,
            nonce=nonce,
        )
    if upper == "CRAM-MD5":
        return CramMD5Client(username, password)
    if upper == "PLAIN":
        return PlainClient(username, password, authzid)
    if upper == "LOGIN":
        return LoginClient(username, password)
    raise UnknownMechanism(f"unsupported SASL mechanism {name!r}")


def choose_client_mechanism(
    offered: Iterable[str],
    tls: bool,
    channel_binding_available: bool,
    allowed: Collection[str] | None = None,
) -> str | None:
    """The most secure mechanism both sides support, or None.

    Order: SCRAM-SHA-256-PLUS, SCRAM-SHA-256, SCRAM-SHA-1-PLUS, SCRAM-SHA-1,
    CRAM-MD5, PLAIN, LOGIN. PLAIN and LOGIN only over TLS; -PLUS only with
    binding data. ``allowed`` (e.g. from configuration) restricts the choice.
    """
    offered_set = {o.upper() for o in offered}
    allowed_set = None if allowed is None else {a.upper() for a in allowed}
    for name in MECHANISMS:
        if name not in offered_set or (allowed_set is not None and name not in allowed_set):
            continue
        if _usable(name, tls, channel_binding_available, allow_plaintext=False):
            return name
    return None
