"""SCRAM-SHA-1 and SCRAM-SHA-256, with -PLUS channel binding (RFC 5802, RFC 7677).

Server and client sides of the exchange of RFC 5802 §5, with the message
syntax of §7 and the channel-binding rules of §6. The server verifies from the
stored StoredKey/ServerKey only (``credentials.ScramKeys``).

Written here rather than on scramp because the server must: tell malformed
messages from bad proofs (SMTP 501 vs 535), keep going with a fake salt for
unknown users (no user enumeration), report the authzid, refuse "p" on a
non-PLUS mechanism instead of upgrading, and take tls-exporter or
tls-server-end-point data as plain bytes. scramp serves as a test oracle.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Callable

from kittiwake.sasl.base import (
    Challenge,
    ChannelBinding,
    ClientError,
    ClientMechanism,
    FailureReason,
    Malformed,
    ServerMechanism,
    ServerOptions,
    Step,
    Success,
    random_nonce,
)
from kittiwake.sasl.credentials import (
    DEFAULT_ITERATIONS_SHA1,
    DEFAULT_ITERATIONS_SHA256,
    MIN_ITERATIONS,
    ScramHash,
    scram_keys,
    scram_salted_password,
)
from kittiwake.sasl.plain import check_authzid
from kittiwake.sasl.prep import opaque_string

__all__ = ["ScramClient", "ScramServer", "mechanism_name"]

# RFC 5802 §7: cb-name = 1*(ALPHA / DIGIT / "." / "-")
_CB_NAME = re.compile(r"[A-Za-z0-9.-]+\Z")
# RFC 5802 §7: printable = %x21-2B / %x2D-7E (no ",").
_PRINTABLE = re.compile(r"[\x21-\x2b\x2d-\x7e]+\Z")
_POSINT = re.compile(r"[1-9][0-9]{0,9}\Z")
# Key of extension attributes: attr-val = ALPHA "=" value.
_ALPHA = re.compile(r"[A-Za-z]\Z")

# Unknown users get a salt derived from this per-process secret, so the same
# name gets the same salt within a run and nothing tells it from a real user.
_FAKE_SALT_SECRET = os.urandom(32)

_DEFAULT_ITERATIONS = {"sha1": DEFAULT_ITERATIONS_SHA1, "sha256": DEFAULT_ITERATIONS_SHA256}


def mechanism_name(hash_name: ScramHash, plus: bool) -> str:
    base = "SCRAM-SHA-1" if hash_name == "sha1" else "SCRAM-SHA-256"
    return base + ("-PLUS" if plus else "")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeError) as exc:
        raise Malformed(f"{what} is not base64") from exc


def _escape(name: str) -> str:
    """RFC 5802 §5.1: "," -> "=2C" and "=" -> "=3D" in saslname."""
    return name.replace("=", "=3D").replace(",", "=2C")


def _unescape(value: str, what: str) -> str:
    """RFC 5802 §7 saslname: "=" only as "=2C" or "=3D"; must not be empty."""
    if not value:
        raise Malformed(f"empty {what}")
    out: list[str] = []
    i = 0
    while i < len(value):
        if value[i] == "=":
            code = value[i + 1 : i + 3]
            if code == "2C":
                out.append(",")
            elif code == "3D":
                out.append("=")
            else:
                raise Malformed(f"bad escape in {what}")
            i += 3
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def _attr(part: str, key: str, what: str) -> str:
    if not part.startswith(key + "="):
        raise Malformed(f"{what}: expected attribute {key!r}")
    return part[len(key) + 1 :]


def _check_extensions(parts: list[str], what: str) -> None:
    # RFC 5802 §7: extensions = attr-val *("," attr-val); unknown ones are ignored.
    for part in parts:
        if len(part) < 2 or part[1] != "=" or not _ALPHA.match(part[0]):
            raise Malformed(f"{what}: malformed attribute")


def _utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Malformed("invalid-encoding: message is not UTF-8") from exc


class ScramServer(ServerMechanism):
    """Server side of RFC 5802 §5 for one hash, with or without -PLUS."""

    def __init__(self, options: ServerOptions, hash_name: ScramHash, plus: bool) -> None:
        super().__init__(options)
        if plus and not options.channel_bindings:
            raise ValueError(f"{mechanism_name(hash_name, plus)} needs channel binding data")
        self.hash_name: ScramHash = hash_name
        self.plus = plus
        self.name = mechanism_name(hash_name, plus)
        self._state = "first"
        self._gs2_header = b""
        self._cb: ChannelBinding | None = None
        self._authzid: str | None = None
        self._bare = ""
        self._server_first = ""
        self._nonce = ""
        self._stored_key = b""
        self._server_key = b""
        self._known = False

    def _start(self, initial_response: bytes | None) -> Step:
        if initial_response is None or initial_response == b"":
            # Client-first comes in the next response (RFC 4422 §5 empty challenge).
            return Challenge(b"")
        return self._client_first(initial_response)

    def _step(self, client_data: bytes) -> Step:
        if self._state == "first":
            return self._client_first(client_data)
        return self._client_final(client_data)

    def _client_first(self, data: bytes) -> Step:
        msg = _utf8(data)
        parts = msg.split(",", 2)
        if len(parts) != 3:
            raise Malformed("client-first-message: missing gs2-header")
        flag, raw_authzid, bare = parts
        # RFC 5802 §7: gs2-header = gs2-cbind-flag "," [ authzid ] ","
        if flag in ("n", "y"):
            cb_name = None
        elif flag.startswith("p=") and _CB_NAME.match(flag[2:]):
            cb_name = flag[2:]
        else:
            raise Malformed("client-first-message: bad gs2-cbind-flag")
        authzid = _unescape(_attr(raw_authzid, "a", "authzid"), "authzid") if raw_authzid else None

        fields = bare.split(",")
        if fields[0].startswith("m="):
            # RFC 5802 §5.1: mandatory extensions we do not know fail the exchange.
            raise Malformed("extensions-not-supported")
        if len(fields) < 2:
            raise Malformed("client-first-message-bare: needs n= and r=")
        username = _unescape(_attr(fields[0], "n", "username"), "username")
        c_nonce = _attr(fields[1], "r", "nonce")
        if not _PRINTABLE.match(c_nonce):
            raise Malformed("client nonce is empty or not printable")
        _check_extensions(fields[2:], "client-first-message")
        self.username = username
        self._authzid = authzid

        # RFC 5802 §6: channel binding negotiation.
        if flag == "y" and self.options.channel_bindings:
            raise self._fail(
                FailureReason.CHANNEL_BINDING,
                "server-does-support-channel-binding: client said 'y' (downgrade?)",
            )
        if self.plus and cb_name is None:
            raise self._fail(FailureReason.CHANNEL_BINDING, f"{self.name} requires 'p=' flag")
        if not self.plus and cb_name is not None:
            raise self._fail(
                FailureReason.CHANNEL_BINDING, f"'p=' channel binding needs {self.name}-PLUS"
            )
        if cb_name is not None:
            self._cb = self.options.binding(cb_name)
            if self._cb is None:
                raise self._fail(
                    FailureReason.CHANNEL_BINDING,
                    f"unsupported-channel-binding-type {cb_name!r}",
                )
        self._gs2_header = f"{flag},{raw_authzid},".encode()

        creds = self.options.get_credentials(username)
        keys = creds.scram(self.hash_name) if creds is not None else None
        if keys is not None:
            salt, iterations = keys.salt, keys.iterations
            self._stored_key, self._server_key = keys.stored_key, keys.server_key
            self._known = True
        else:
            # Unknown user (or no keys for this hash): answer like for a real one.
            salt = hmac.digest(
                _FAKE_SALT_SECRET, f"{self.hash_name}\x00{username}".encode(), "sha256"
            )[:16]
            iterations = _DEFAULT_ITERATIONS[self.hash_name]
        self._nonce = c_nonce + self.options.nonce()
        self._bare = bare
        # RFC 5802 §7: server-first-message = nonce "," salt "," iteration-count
        self._server_first = f"r={self._nonce},s={_b64(salt)},i={iterations}"
        self._state = "final"
        return Challenge(self._server_first.encode("ascii"))

    def _client_final(self, data: bytes) -> Step:
        msg = _utf8(data)
        # RFC 5802 §7: client-final-message = without-proof "," proof; proof is last.
        without_proof, sep, proof_part = msg.rpartition(",")
        if not sep:
            raise Malformed("client-final-message: missing proof")
        proof = _unb64(_attr(proof_part, "p", "proof"), "proof")
        fields = without_proof.split(",")
        if len(fields) < 2:
            raise Malformed("client-final-message: needs c= and r=")
        cbind_input = _unb64(_attr(fields[0], "c", "channel-binding"), "channel-binding")
        nonce = _attr(fields[1], "r", "nonce")
        _check_extensions(fields[2:], "client-final-message")
        if len(proof) != hashlib.new(self.hash_name).digest_size:
            raise Malformed("proof has the wrong length")
        if not hmac.compare_digest(nonce.encode(), self._nonce.encode()):
            raise Malformed("client-final-message: nonce does not match")
        # RFC 5802 §6/§7: cbind-input = gs2-header [ cbind-data ]
        expected_cb = self._gs2_header + (self._cb.data if self._cb else b"")
        if not hmac.compare_digest(cbind_input, expected_cb):
            raise self._fail(FailureReason.CHANNEL_BINDING, "channel-bindings-dont-match")

        # RFC 5802 §3: AuthMessage, ClientSignature, ClientKey = proof XOR signature.
        auth_message = f"{self._bare},{self._server_first},{without_proof}".encode()
        if not self._known:
            raise self._fail(FailureReason.INVALID_CREDENTIALS, f"unknown user {self.username!r}")
        signature = hmac.digest(self._stored_key, auth_message, self.hash_name)
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        if not hmac.compare_digest(
            hashlib.new(self.hash_name, client_key).digest(), self._stored_key
        ):
            raise self._fail(FailureReason.INVALID_CREDENTIALS, "invalid-proof")
        assert self.username is not None
        check_authzid(self, self.username, self._authzid)
        server_signature = hmac.digest(self._server_key, auth_message, self.hash_name)
        return Success(
            self.name,
            self.username,
            self._authzid,
            server_final=f"v={_b64(server_signature)}".encode("ascii"),
            channel_binding=self._cb.type if self._cb else None,
        )


# A client refuses more work than this from a server (a malicious i= would
# otherwise keep it busy); RFC 7677 §4 sets the floor at 4096.
MAX_CLIENT_ITERATIONS = 1_000_000


class ScramClient(ClientMechanism):
    """Client side of RFC 5802 §5.

    ``channel_binding`` is the connection's binding, if the client has one: with
    ``plus`` it is used ("p="); without, its presence makes the gs2 flag "y"
    (we support binding but the server did not offer -PLUS), else "n".
    """

    def __init__(
        self,
        hash_name: ScramHash,
        plus: bool,
        username: str,
        password: str,
        *,
        authzid: str | None = None,
        channel_binding: ChannelBinding | None = None,
        nonce: Callable[[], str] = random_nonce,
        min_iterations: int = MIN_ITERATIONS,
        max_iterations: int = MAX_CLIENT_ITERATIONS,
    ) -> None:
        if plus and channel_binding is None:
            raise ValueError("-PLUS needs channel binding data")
        self.hash_name: ScramHash = hash_name
        self.name = mechanism_name(hash_name, plus)
        self._password = opaque_string(password).encode("utf-8")
        self._cb = channel_binding if plus else None
        if plus:
            assert channel_binding is not None
            flag = f"p={channel_binding.type}"
        else:
            flag = "y" if channel_binding is not None else "n"
        authz = f"a={_escape(authzid)}" if authzid else ""
        self._gs2_header = f"{flag},{authz},".encode()
        self._c_nonce = nonce()
        self._bare = f"n={_escape(username)},r={self._c_nonce}"
        self._min_iterations = min_iterations
        self._max_iterations = max_iterations
        self._state = "initial"
        self._server_signature = b""
        self.verified = False

    def initial_response(self) -> bytes | None:
        if self._state not in ("initial", "first-sent"):
            raise ClientError(f"{self.name}: exchange already past the first message")
        self._state = "first-sent"
        return self._gs2_header + self._bare.encode()

    def respond(self, challenge: bytes) -> bytes:
        try:
            if self._state == "initial" and challenge == b"":
                return self.initial_response() or b""
            if self._state == "first-sent":
                return self._server_first(challenge)
            if self._state == "final-sent":
                self._server_final(challenge)
                return b""
        except Malformed as exc:
            raise ClientError(f"{self.name}: {exc}") from exc
        raise ClientError(f"{self.name}: unexpected challenge")

    def finish(self, additional_data: bytes | None = None) -> None:
        if additional_data and self._state == "final-sent":
            try:
                self._server_final(additional_data)
            except Malformed as exc:
                raise ClientError(f"{self.name}: {exc}") from exc
        elif additional_data:
            raise ClientError(f"{self.name}: unexpected data with success")
        if not self.verified:
            raise ClientError(f"{self.name}: server reported success without proving its key")

    def _server_first(self, data: bytes) -> bytes:
        msg = _utf8(data)
        fields = msg.split(",")
        if fields[0].startswith("e="):
            raise ClientError(f"{self.name}: server error {fields[0][2:]!r}")
        if fields[0].startswith("m="):
            raise ClientError(f"{self.name}: server sent a mandatory extension")
        if len(fields) < 3:
            raise Malformed("server-first-message needs r=, s= and i=")
        nonce = _attr(fields[0], "r", "nonce")
        salt = _unb64(_attr(fields[1], "s", "salt"), "salt")
        raw_i = _attr(fields[2], "i", "iteration-count")
        _check_extensions(fields[3:], "server-first-message")
        if not _PRINTABLE.match(nonce) or not nonce.startswith(self._c_nonce):
            raise Malformed("server nonce does not extend the client nonce")
        if len(nonce) == len(self._c_nonce):
            raise Malformed("server added no nonce of its own")
        if not salt:
            raise Malformed("empty salt")
        if not _POSINT.match(raw_i):
            raise Malformed("bad iteration count")
        iterations = int(raw_i)
        if not self._min_iterations <= iterations <= self._max_iterations:
            raise ClientError(f"{self.name}: iteration count {iterations} not accepted")

        channel_binding = _b64(self._gs2_header + (self._cb.data if self._cb else b""))
        without_proof = f"c={channel_binding},r={nonce}"
        auth_message = f"{self._bare},{msg},{without_proof}".encode()
        salted = scram_salted_password(self.hash_name, self._password, salt, iterations)
        client_key, stored_key, server_key = scram_keys(self.hash_name, salted)
        signature = hmac.digest(stored_key, auth_message, self.hash_name)
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        self._server_signature = hmac.digest(server_key, auth_message, self.hash_name)
        self._state = "final-sent"
        return f"{without_proof},p={_b64(proof)}".encode("ascii")

    def _server_final(self, data: bytes) -> None:
        msg = _utf8(data)
        fields = msg.split(",")
        if fields[0].startswith("e="):
            raise ClientError(f"{self.name}: server error {fields[0][2:]!r}")
        verifier = _unb64(_attr(fields[0], "v", "verifier"), "verifier")
        _check_extensions(fields[1:], "server-final-message")
        if not hmac.compare_digest(verifier, self._server_signature):
            raise ClientError(f"{self.name}: server signature does not match (not our server?)")
        self.verified = True
        self._state = "done"
