"""The blocking ACME driver: account, directory and the order loop, with the ``acme`` library.

The ``acme`` library (and ``requests`` beneath it) blocks, so everything
here runs in a worker thread (:class:`kittiwake.acme.manager.CertificateManager`
calls it with ``asyncio.to_thread``). The library signs the requests (JWS,
RFC 8555 §6.2), keeps the nonces (§7.2, with one retry on ``badNonce``),
builds the external account binding (§7.3.4) and fetches renewal
information (RFC 9773). The order itself follows the pure
:class:`kittiwake.acme.order.OrderFlow`; :meth:`ACMEClient.obtain` only
performs the actions it asks for.

Account state: ``<data_dir>/acme/<name>/account.json`` holds the account key
(a JWK, ECDSA P-256, signing with ES256) and, once registered, ``"uri"``
(read by ``config dnsrecords`` for CAA ``accounturi``, RFC 8657). The file
is 0600 in a 0700 directory; the key is written before registration so a
crash in between re-registers with the same key (the server then answers
with the existing account, §7.3.1).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import josepy as jose
import requests
from acme import client as acme_client
from acme import crypto_util, errors, messages
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from kittiwake.acme import paths
from kittiwake.acme.challenges import Challenges
from kittiwake.acme.files import private_dir, write_private
from kittiwake.acme.keys import HostKey
from kittiwake.acme.order import (
    Authorization,
    Challenge,
    CreateOrder,
    Done,
    Download,
    FetchAuthorization,
    FetchOrder,
    Finalize,
    Order,
    OrderFlow,
    Provide,
    Respond,
    Result,
    Step,
    Wait,
)
from kittiwake.acme.tlsalpn import CHALLENGE_TYPE as TLS_ALPN_01
from kittiwake.acme.tlsalpn import challenge_context, key_authorization
from kittiwake.log import get_logger

HTTP_01 = "http-01"
USER_AGENT = "kittiwake"

logger = get_logger("acme")


class ACMEError(Exception):
    """Talking to the authority failed; the message says what and where."""


class Stopped(ACMEError):
    """The manager is stopping; the order was abandoned."""


@dataclass(frozen=True)
class Authority:
    """One ``[acme.NAME]`` section, as plain values."""

    name: str
    directory_url: str
    challenge: str = TLS_ALPN_01
    contact_email: str = ""
    ca_file: Path | None = None
    eab_key_id: str = ""
    eab_hmac_key: str = ""  # base64url, read from eab_hmac_key_file
    issuer_domain_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class RenewalInfo:
    """RFC 9773 §4: when the authority suggests renewing, and when to ask again."""

    suggested: dt.datetime | None
    ask_again: dt.datetime


class _ReadyForValidation(jose.JSONDeSerializable):
    """The empty JSON object POSTed to a challenge URL (RFC 8555 §7.5.1)."""

    def to_partial_json(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_json(cls, jobj: Any) -> _ReadyForValidation:
        return cls()


class _NewOrder(jose.JSONDeSerializable):
    """newOrder (RFC 8555 §7.4) with RFC 9773 §5's ``replaces``, which acme's NewOrder lacks."""

    def __init__(self, names: tuple[str, ...], replaces: str | None) -> None:
        self.names = names
        self.replaces = replaces

    def to_partial_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"identifiers": [{"type": "dns", "value": n}
                                                for n in self.names]}
        if self.replaces:
            body["replaces"] = self.replaces
        return body

    @classmethod
    def from_json(cls, jobj: Any) -> _NewOrder:
        return cls(tuple(i["value"] for i in jobj["identifiers"]), jobj.get("replaces"))


def ari_certificate_id(cert_pem: bytes) -> str | None:
    """RFC 9773 §4.1: base64url(AKI keyIdentifier) "." base64url(DER serial number bytes)."""
    cert = x509.load_pem_x509_certificates(cert_pem)[0]
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        return None
    if aki.key_identifier is None:
        return None
    serial = cert.serial_number
    serial_bytes = serial.to_bytes(serial.bit_length() // 8 + 1, "big")  # DER INTEGER content
    return (f"{jose.b64encode(aki.key_identifier).decode()}."
            f"{jose.b64encode(serial_bytes).decode()}")


def _problem(value: Any) -> str | None:
    """A problem document (RFC 7807 as used by RFC 8555 §6.7) as one line."""
    if not isinstance(value, dict):
        return None
    kind = str(value.get("type", "")).rsplit(":", 1)[-1]
    return f"{kind}: {value.get('detail', '')}".strip(": ") or None


def _order(response: requests.Response, url: str = "") -> Order:
    body = response.json()
    return Order(url=response.headers.get("Location", url), status=str(body["status"]),
                 authorizations=tuple(body.get("authorizations", ())),
                 finalize=str(body.get("finalize", "")), certificate=body.get("certificate"),
                 error=_problem(body.get("error")))


def _authorization(response: requests.Response, url: str) -> Authorization:
    body = response.json()
    challenges = tuple(
        Challenge(type=str(c["type"]), url=str(c["url"]), token=str(c.get("token", "")),
                  status=str(c.get("status", "")), error=_problem(c.get("error")))
        for c in body.get("challenges", ()))
    return Authorization(url=url, name=str(body["identifier"]["value"]),
                         status=str(body["status"]), challenges=challenges)


def _action_fields(action: Any) -> dict[str, str]:
    """What to log of an order action: URLs and names, never key authorizations."""
    match action:
        case Provide(name=name, challenge=challenge):
            return {"name": name, "challenge": challenge.type}
        case Respond(challenge=challenge):
            return {"challenge": challenge.type, "url": challenge.url}
        case FetchAuthorization(url=url) | Finalize(url=url) | FetchOrder(url=url) \
                | Download(url=url):
            return {"url": url}
    return {}


class ACMEClient:
    """Account and orders at one authority. Blocking: call from a worker thread."""

    def __init__(self, authority: Authority, data_dir: Path, challenges: Challenges,
                 sleep: Callable[[float], None] | None = None, timeout: int = 30) -> None:
        self.authority = authority
        self.data_dir = data_dir
        self.challenges = challenges
        self.timeout = timeout
        self._stopping = threading.Event()
        self._sleep = sleep or self._interruptible_sleep
        self._client: acme_client.ClientV2 | None = None
        self._key: jose.JWK | None = None
        self.account_uri: str | None = None
        self.log = logger.with_fields(authority=authority.name)

    def stop(self) -> None:
        """Make a running order give up at its next wait."""
        self._stopping.set()

    def _interruptible_sleep(self, seconds: float) -> None:
        if self._stopping.wait(seconds):
            raise Stopped("stopping")

    # -- account --------------------------------------------------------------------------

    def connect(self) -> acme_client.ClientV2:
        """Fetch the directory (§7.1.1) and load or register the account (§7.3)."""
        if self._client is not None:
            return self._client
        key, uri = self._load_account()
        net = acme_client.ClientNetwork(key, alg=jose.ES256, user_agent=USER_AGENT,
                                        timeout=self.timeout,
                                        verify_ssl=str(self.authority.ca_file)
                                        if self.authority.ca_file else True)  # type: ignore[arg-type]
        try:
            directory = acme_client.ClientV2.get_directory(self.authority.directory_url, net)
        except (requests.RequestException, errors.Error, ValueError) as exc:
            raise ACMEError(f"directory {self.authority.directory_url}: {exc}") from None
        client = acme_client.ClientV2(directory, net)
        if uri is None:
            uri = self._register(client, key)
        net.account = messages.RegistrationResource(body=messages.Registration(), uri=uri)
        self._client, self._key, self.account_uri = client, key, uri
        return client

    def _load_account(self) -> tuple[jose.JWK, str | None]:
        path = paths.account_file(self.data_dir, self.authority.name)
        private_dir(path.parent)
        try:
            data = json.loads(path.read_text())
            return jose.JWK.from_json(data["key"]), data.get("uri") or None
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError, jose.errors.DeserializationError) as exc:
            raise ACMEError(f"{path}: not a kittiwake ACME account file ({exc}); move it"
                            " away to register a new account") from None
        key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
        self._save_account(key, None)
        return key, None

    def _save_account(self, key: jose.JWK, uri: str | None) -> None:
        data: dict[str, Any] = {"key": key.to_json(),
                                "directory_url": self.authority.directory_url}
        if uri:
            data["uri"] = uri
        write_private(paths.account_file(self.data_dir, self.authority.name),
                      json.dumps(data, indent=1).encode())

    def _register(self, client: acme_client.ClientV2, key: jose.JWK) -> str:
        """newAccount (§7.3) with terms agreed and, when configured, EAB (§7.3.4)."""
        eab = None
        if self.authority.eab_key_id:
            eab = messages.ExternalAccountBinding.from_data(
                account_public_key=key.public_key(), kid=self.authority.eab_key_id,
                hmac_key=self.authority.eab_hmac_key, directory=client.directory)
        elif client.external_account_required():
            raise ACMEError(f"{self.authority.directory_url} requires external account"
                            f" binding: set acme.{self.authority.name}.eab_key_id and"
                            " eab_hmac_key_file")
        registration = messages.NewRegistration.from_data(
            email=self.authority.contact_email or None, terms_of_service_agreed=True,
            external_account_binding=eab)
        try:
            regr = client.new_account(registration)
            uri = regr.uri
        except errors.ConflictError as exc:  # the key is registered already (§7.3.1)
            uri = exc.location
        except (requests.RequestException, errors.Error, messages.Error) as exc:
            raise ACMEError(f"registering at {self.authority.directory_url}: {exc}") from None
        if not uri:
            raise ACMEError("the authority answered newAccount without an account URL")
        self._save_account(key, uri)
        self.log.info("account registered", account=uri,
                      eab=bool(self.authority.eab_key_id))
        return uri

    # -- orders ---------------------------------------------------------------------------

    def obtain(self, names: list[str], key: HostKey, replaces: bytes | None = None) -> str:
        """A certificate chain (PEM, leaf first) for ``names`` with the public key of ``key``.

        ``replaces``: the certificate (PEM) this one renews; named in the order (RFC 9773
        §5) when the authority offers renewal information."""
        client = self.connect()
        csr = crypto_util.make_csr(key.pem, names)
        replaced = ari_certificate_id(replaces) if replaces and self.has_renewal_info() \
            else None
        flow = OrderFlow(tuple(names), self.authority.challenge, replaced)
        log = self.log.with_fields(names=",".join(names), key_type=key.key_type.value)
        try:
            while True:
                action = flow.next_action()
                if isinstance(action, Done):
                    log.info("certificate issued", order=flow.order.url if flow.order else "")
                    return action.chain_pem
                # The order's milestones at info, its polling at debug.
                level = "debug" if isinstance(action, Wait | FetchOrder) or \
                    flow.step is Step.VALIDATING else "info"
                log.log(level, "order step", step=flow.step.value,
                        action=type(action).__name__, **_action_fields(action))
                flow.receive(self._perform(client, action, csr))
        except (requests.RequestException, errors.Error, messages.Error, KeyError,
                ValueError) as exc:
            raise ACMEError(f"order for {','.join(names)} ({flow.step.value}): {exc}") from None
        finally:
            for provided in flow.provided:
                self._withdraw(provided)

    def _perform(self, client: acme_client.ClientV2, action: Any, csr: bytes) -> Result:
        match action:
            case CreateOrder(names=names, replaces=replaces):
                return _order(self._post(client, client.directory["newOrder"],
                                         _NewOrder(names, replaces)))
            case FetchAuthorization(url=url):
                return _authorization(self._post(client, url, None), url)
            case Provide():
                self._provide(action)
                return None
            case Respond(challenge=challenge):
                self._post(client, challenge.url, _ReadyForValidation())
                return None
            case Wait(seconds=seconds):
                self._sleep(seconds)
                return None
            case Finalize(url=url):
                request = messages.CertificateRequest(csr=x509.load_pem_x509_csr(csr))
                return _order(self._post(client, url, request))
            case FetchOrder(url=url):
                return _order(self._post(client, url, None), url)
            case Download(url=url):
                return self._post(client, url, None).text
        raise ACMEError(f"unknown order action {action!r}")

    def _post(self, client: acme_client.ClientV2, url: str,
              obj: jose.JSONDeSerializable | None) -> requests.Response:
        """A signed POST (§6.2); ``None``: POST-as-GET (§6.3)."""
        if self._stopping.is_set():
            raise Stopped("stopping")
        return client.net.post(url, obj, new_nonce_url=client.directory["newNonce"])

    def _provide(self, provided: Provide) -> None:
        assert self._key is not None
        challenge = provided.challenge
        key_authz = key_authorization(challenge.token, self._key)
        if challenge.type == HTTP_01:
            self.challenges.set_http01(challenge.token, key_authz)
        elif challenge.type == TLS_ALPN_01:
            self.challenges.set_tls_alpn01(provided.name, challenge_context(provided.name,
                                                                            key_authz))
        else:
            raise ACMEError(f"cannot answer {challenge.type} challenges")
        self.log.debug("challenge provided", name=provided.name, challenge=challenge.type)

    def _withdraw(self, provided: Provide) -> None:
        if provided.challenge.type == HTTP_01:
            self.challenges.remove_http01(provided.challenge.token)
        else:
            self.challenges.remove_tls_alpn01(provided.name)

    # -- renewal information (RFC 9773) -------------------------------------------------

    def has_renewal_info(self) -> bool:
        """Whether the directory offers ``renewalInfo`` (RFC 9773 §3)."""
        try:
            self.connect().directory["renewalInfo"]
        except KeyError:
            return False
        return True

    def renewal_info(self, cert_pem: bytes) -> RenewalInfo | None:
        """The authority's suggested renewal time, or None when it offers no renewalInfo."""
        client = self.connect()
        if not self.has_renewal_info():
            return None
        try:
            suggested, ask_again = client.renewal_time(cert_pem)
        except errors.ARIError as exc:
            self.log.warning("renewal information unavailable", reason=str(exc))
            return None
        return RenewalInfo(_aware(suggested) if suggested else None, _aware(ask_again))


def _aware(value: dt.datetime) -> dt.datetime:
    """The library mixes naive local times and aware UTC times; make them aware."""
    return value if value.tzinfo else value.astimezone(dt.UTC)
