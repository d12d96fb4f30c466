"""SASL (RFC 4422), sans-I/O: PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-1/-256 (+PLUS), both sides.

Used by SMTP AUTH (RFC 4954), IMAP AUTHENTICATE and the outgoing SMTP client.
The store keeps :class:`Credentials` from :func:`derive_credentials`; servers
create one mechanism per attempt with :func:`new_server` and feed it decoded
client data; clients use :func:`choose_client_mechanism` and :func:`new_client`.

A server driver (SMTP shown; IMAP is the same with "+ " and OK/NO/BAD)::

    cbs = connection_channel_bindings(ssl_object, server_certificate_der=der)
    opts = ServerOptions(get_credentials=lookup, hostname=host, channel_bindings=cbs)
    offered = server_mechanisms(tls=True, channel_binding=bool(opts.channel_bindings))
    mech = new_server(name, opts)          # after checking name in offered
    step = mech.start(decode_initial_response(ir) if ir else None)
    while isinstance(step, Challenge):
        send(b"334 " + encode_challenge(step.data))
        data = decode_response(read_line())  # ValueError -> 501; CANCEL -> 501
        step = mech.step(data)
    match step:
        case Success(server_final=final): ...  # 334 <final>, empty line back, then 235
        case Failure(reason=FailureReason.MALFORMED): ...   # 501 5.5.2
        case Failure(): ...                                  # 535 5.7.8

PBKDF2 runs inside ``step()`` for PLAIN/LOGIN (one derivation at the stored
count, a few ms) and in SCRAM clients; drivers may call them in a worker thread.
Usernames reach ``get_credentials`` exactly as sent: case folding or other
normalisation is the lookup's job.
"""

from kittiwake.sasl.base import (
    Challenge,
    ChannelBinding,
    ClientError,
    ClientMechanism,
    Failure,
    FailureReason,
    ServerMechanism,
    ServerOptions,
    Step,
    Success,
    random_nonce,
)
from kittiwake.sasl.channelbinding import connection_channel_bindings, tls_server_end_point
from kittiwake.sasl.credentials import (
    DEFAULT_ITERATIONS_SHA1,
    DEFAULT_ITERATIONS_SHA256,
    MIN_ITERATIONS,
    CramMD5Keys,
    Credentials,
    CredentialsFormatError,
    ScramKeys,
    derive_credentials,
    verify_password,
)
from kittiwake.sasl.prep import PrecisError, opaque_string
from kittiwake.sasl.registry import (
    MECHANISMS,
    UnknownMechanism,
    choose_client_mechanism,
    new_client,
    new_server,
    server_mechanisms,
)
from kittiwake.sasl.wire import (
    CANCEL,
    decode_initial_response,
    decode_response,
    encode_challenge,
)

__all__ = [
    "CANCEL",
    "DEFAULT_ITERATIONS_SHA1",
    "DEFAULT_ITERATIONS_SHA256",
    "MECHANISMS",
    "MIN_ITERATIONS",
    "Challenge",
    "ChannelBinding",
    "ClientError",
    "ClientMechanism",
    "CramMD5Keys",
    "Credentials",
    "CredentialsFormatError",
    "Failure",
    "FailureReason",
    "PrecisError",
    "ScramKeys",
    "ServerMechanism",
    "ServerOptions",
    "Step",
    "Success",
    "UnknownMechanism",
    "choose_client_mechanism",
    "connection_channel_bindings",
    "decode_initial_response",
    "decode_response",
    "derive_credentials",
    "encode_challenge",
    "new_client",
    "new_server",
    "opaque_string",
    "random_nonce",
    "server_mechanisms",
    "tls_server_end_point",
    "verify_password",
]
