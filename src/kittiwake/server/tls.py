"""Server TLS: one hardened, reloadable context per listener; self-signed certificates.

What every TLS service (SMTP 25/587 STARTTLS, submissions 465, IMAP 143
STARTTLS, IMAPS 993, HTTPS 443) gets, following the NCSC-NL "IT Security
Guidelines for Transport Layer Security" that internet.nl tests against
(v2.1 of 2021, updated 2025; internet.nl passes "good" and "sufficient"):

- **Versions**: TLS 1.3 (good) and TLS 1.2 (sufficient); TLS 1.0/1.1 are
  "phase out" and SSL insufficient (also RFC 8996). ``min_version`` may
  raise the floor to 1.3.
- **Ciphers**: only AEAD suites with forward secrecy. TLS 1.2: ECDHE key
  exchange, ECDSA or RSA authentication, AES-256-GCM, CHACHA20-POLY1305 or
  AES-128-GCM (all "good"); no DHE (Python cannot set the TLS 1.2 DH
  parameters, and FFDHE is at best "sufficient"), no CBC, no static RSA.
  TLS 1.3: OpenSSL's default suites (AES-256-GCM, CHACHA20-POLY1305,
  AES-128-GCM; all good). The server's order is used
  (``OP_CIPHER_SERVER_PREFERENCE``), ECDSA suites first, so that a client
  that can use the ECDSA certificate gets it.
- **Key exchange groups**: x25519, secp256r1, x448, secp384r1, the curves
  rated "good"; nothing else. OpenSSL 3.0's default list also has
  secp521r1 (not in the guideline's list, so internet.nl does not rate it
  good) and, for TLS 1.3, ffdhe2048 ("phase out") to ffdhe8192.
- **No compression** (CRIME; "insufficient"), **no renegotiation**
  (``OP_NO_RENEGOTIATION``: neither client- nor server-initiated, the
  guideline's "good"), no 0-RTT (Python's ssl never enables early data).

Setting the groups: Python 3.11's ``ssl`` has no call for a group list;
``set_ecdh_curve`` sets exactly one group (OpenSSL 3: ``SSL_CTX_set1_groups``
with one entry), which would lose either x25519 or the NIST curves some
clients need. An OpenSSL configuration file (``OPENSSL_CONF``) would apply
to every context of the process, clients included, and only if set before
``_ssl`` loads. So :func:`_set_groups` calls ``SSL_CTX_set1_groups_list``
(the ``SSL_CTX_ctrl`` macro, command 92) through ctypes on the context's
``SSL_CTX *``, which CPython keeps as the first field after the object
header of its ``PySSLContext`` (unchanged from 3.7 to 3.13). The pointer is
checked before use: ``SSL_CTX_get_options`` through it must return what
``context.options`` says. If anything does not match (another Python, a
static OpenSSL), the context falls back to ``set_ecdh_curve("prime256v1")``
(one group, still "good") and a warning is logged once.

**Several certificates.** OpenSSL keeps one certificate per key type in a
context, and picks the one the handshake can use (TLS 1.2: the negotiated
suite's authentication; TLS 1.3: the client's signature algorithms). So
certificates whose names are the same (an ECDSA and an RSA certificate for
the same host names, as ACME issues them) share one context; certificates
with other names form further sets, chosen by the client's SNI name, the
first set being the default.

**Reloading without restart.** Listeners hold a :class:`ServerTLS` and use
its :attr:`ServerTLS.context`, which never changes. That context has no
certificate of its own: its SNI callback (called by OpenSSL for every
ClientHello, with or without a server name) moves each new connection to
the context of the current certificate set. :meth:`ServerTLS.update`
builds new contexts from files and swaps them in with one assignment; a
handshake that has begun keeps the context it was given, so open
connections are unaffected and the next handshake sees the new
certificates. A failed update (unreadable file, key not matching) raises
:class:`TLSConfigError` and keeps the previous certificates.

API for the ACME client (``kittiwake.acme``) and the HTTPS listener::

    tls = server.listener_tls("public")        # ServerTLS of [listeners.public]
    tls.update([CertificateFiles(cert, key), ...])   # after each renewal
    ssl_context = tls.context                  # for asyncio.start_server(ssl=...)

``update`` replaces the whole list (pass configured files and ACME ones
together); ``reload()`` reads the files of the last update again (SIGHUP).

``localserve`` makes a self-signed certificate once and reuses it.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import ipaddress
import os
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kittiwake import certinfo
from kittiwake.log import get_logger

logger = get_logger("server")

# NCSC-NL "good" ECDHE groups, in our order of preference (OpenSSL names).
GROUPS = "X25519:P-256:X448:P-384"

# TLS 1.2: ECDHE + AEAD only, ECDSA authentication first (see the module docstring).
TLS12_CIPHERS = ":".join([
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-RSA-AES128-GCM-SHA256",
])

_OPTIONS = (ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
            | ssl.OP_NO_RENEGOTIATION | ssl.OP_SINGLE_ECDH_USE)

_SSL_CTRL_SET_GROUPS_LIST = 92  # openssl/ssl.h: SSL_CTX_set1_groups_list is SSL_CTX_ctrl(92)


class TLSConfigError(Exception):
    """A certificate or key could not be loaded; the message names the file."""


@dataclass
class CertificateFiles:
    cert_file: Path
    key_file: Path


class _OpenSSL:
    """``SSL_CTX_ctrl`` and ``SSL_CTX_get_options`` of the libssl that ``_ssl`` uses."""

    def __init__(self) -> None:
        import _ssl

        lib = ctypes.CDLL(_ssl.__file__)  # dlsym on it also finds its libssl's symbols
        self.ctrl = lib.SSL_CTX_ctrl
        self.ctrl.restype = ctypes.c_long
        self.ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
        self.get_options = lib.SSL_CTX_get_options
        self.get_options.restype = ctypes.c_uint64
        self.get_options.argtypes = [ctypes.c_void_p]


_openssl: _OpenSSL | None = None
_openssl_failed = False
_fallback_warned = False
_openssl_lock = threading.Lock()


def _ssl_ctx_pointer(context: ssl.SSLContext, lib: _OpenSSL) -> int | None:
    """The ``SSL_CTX *`` of ``context``, or None when the layout is not the expected one."""
    # PySSLContext: PyObject_HEAD (refcount, type pointer), then SSL_CTX *ctx.
    offset = ctypes.sizeof(ctypes.c_ssize_t) + ctypes.sizeof(ctypes.c_void_p)
    pointer = ctypes.c_void_p.from_address(id(context) + offset).value
    if not pointer:
        return None
    if lib.get_options(pointer) != int(context.options):
        return None
    return pointer


def _set_groups(context: ssl.SSLContext) -> bool:
    """Limit the key exchange groups to :data:`GROUPS`; False if it fell back to P-256 only."""
    global _openssl, _openssl_failed
    with _openssl_lock:
        if _openssl is None and not _openssl_failed:
            try:
                _openssl = _OpenSSL()
            except (OSError, AttributeError):
                _openssl_failed = True
        lib = _openssl
    pointer = _ssl_ctx_pointer(context, lib) if lib is not None else None
    if lib is not None and pointer is not None and \
            lib.ctrl(pointer, _SSL_CTRL_SET_GROUPS_LIST, 0, GROUPS.encode()) == 1:
        return True
    global _fallback_warned
    context.set_ecdh_curve("prime256v1")
    if not _fallback_warned:
        _fallback_warned = True
        logger.warning("cannot set the TLS key exchange groups; using P-256 only",
                       groups=GROUPS, openssl=ssl.OPENSSL_VERSION)
    return False


def hardened_context(min_version: str = "TLSv1.2",
                     kind: type[ssl.SSLContext] = ssl.SSLContext) -> ssl.SSLContext:
    """A server context with the settings of the module docstring and no certificate."""
    context = kind(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = (ssl.TLSVersion.TLSv1_3 if min_version == "TLSv1.3"
                               else ssl.TLSVersion.TLSv1_2)
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.options |= _OPTIONS
    context.set_ciphers(TLS12_CIPHERS)
    _set_groups(context)
    return context


class _SetContext(ssl.SSLContext):
    """The context of one certificate set, knowing its certificates (for channel binding)."""

    certificates: dict[str, bytes]  # "ecdsa"/"rsa" -> DER of the leaf


@dataclass(frozen=True)
class _CertificateSet:
    names: tuple[str, ...]
    context: _SetContext


def _load_leaf(cert_file: Path) -> certinfo.CertificateInfo:
    try:
        return certinfo.read_pem(cert_file.read_bytes())
    except (OSError, ValueError) as exc:
        raise TLSConfigError(f"{cert_file}: not a PEM certificate ({exc})") from None


def _key_type(cert: certinfo.CertificateInfo, cert_file: Path) -> str:
    if cert.key_type in ("ecdsa", "rsa"):
        return cert.key_type
    raise TLSConfigError(f"{cert_file}: certificate key is neither ECDSA nor RSA")


def _build_sets(certs: list[CertificateFiles], min_version: str) -> list[_CertificateSet]:
    """Group the certificates by their names: one context per name set, one key per type."""
    sets: dict[tuple[str, ...], _SetContext] = {}
    for cert in certs:
        leaf = _load_leaf(cert.cert_file)
        names = tuple(sorted(set(leaf.host_names(with_ips=True))))
        kind = _key_type(leaf, cert.cert_file)
        context = sets.get(names)
        if context is None:
            context = hardened_context(min_version, _SetContext)
            assert isinstance(context, _SetContext)
            context.certificates = {}
            sets[names] = context
        if kind in context.certificates:
            raise TLSConfigError(f"{cert.cert_file}: a second {kind.upper()} certificate for"
                                 f" the same names ({', '.join(names)}); one per key type")
        try:
            context.load_cert_chain(cert.cert_file, cert.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise TLSConfigError(f"{cert.cert_file} / {cert.key_file}: cannot load certificate"
                                 f" and key ({exc})") from None
        context.certificates[kind] = leaf.der
    return [_CertificateSet(names, context) for names, context in sets.items()]


def _matches(name: str, patterns: tuple[str, ...] | list[str]) -> bool:
    name = name.lower().rstrip(".")
    for pattern in patterns:
        if pattern == name:
            return True
        if pattern.startswith("*.") and name.count(".") >= 1 and \
                name.split(".", 1)[1] == pattern[2:]:
            return True
    return False


class ServerTLS:
    """The TLS of one listener: a stable :attr:`context` whose certificates can change.

    ``ServerTLS(certificates, min_version)`` loads the files (TLSConfigError
    naming the file when one fails); an empty list is allowed (ACME has not
    issued yet): handshakes then fail until :meth:`update`.
    """

    def __init__(self, certificates: list[CertificateFiles], min_version: str = "TLSv1.2",
                 name: str = "") -> None:
        self.name = name
        self.min_version = min_version
        self.context = hardened_context(min_version)
        self.context.sni_callback = self._pick  # type: ignore[assignment]
        self._files: list[CertificateFiles] = []
        self._sets: list[_CertificateSet] = []
        self._lock = threading.Lock()
        # Called with the new list after each successful update (from the updating
        # thread): the SMTP worker processes load the same files (server/smtpworkers).
        self.on_update: list[Callable[[list[CertificateFiles]], None]] = []
        self.update(certificates)

    @property
    def certificates(self) -> list[CertificateFiles]:
        """The files of the certificates being served."""
        return list(self._files)

    def has_certificates(self) -> bool:
        return bool(self._sets)

    def update(self, certificates: list[CertificateFiles]) -> None:
        """Serve ``certificates`` from the next handshake on; open connections keep theirs.

        Replaces the whole list. Blocking (reads files): call it from a worker
        thread in the event loop. On TLSConfigError nothing changes.
        """
        sets = _build_sets(list(certificates), self.min_version)
        with self._lock:
            self._files = list(certificates)
            self._sets = sets  # one assignment: a handshake sees the old or the new list
        logger.info("tls certificates loaded", listener=self.name,
                    certificates=",".join(str(c.cert_file) for c in certificates),
                    sets=len(sets))
        for notify in self.on_update:
            notify(list(certificates))

    def reload(self) -> None:
        """Read the files of the last :meth:`update` again (changed certificate files)."""
        self.update(self._files)

    def _pick(self, sock: ssl.SSLObject, server_name: str | None,
              _ctx: ssl.SSLContext) -> int | None:
        sets = self._sets
        if not sets:
            return ssl.ALERT_DESCRIPTION_INTERNAL_ERROR
        chosen = sets[0]
        if server_name:
            for candidate in sets:
                if _matches(server_name, candidate.names):
                    chosen = candidate
                    break
        sock.context = chosen.context
        return None

    @staticmethod
    def served_certificate(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> bytes | None:
        """DER of the certificate this connection was served (tls-server-end-point, RFC 5929).

        Exact for TLS 1.2 (the suite names the key type). For TLS 1.3 the choice
        follows the client's signature algorithms, which Python cannot read: the
        ECDSA certificate is assumed when the set has one.
        """
        context = ssl_object.context
        certificates = getattr(context, "certificates", None)
        if not isinstance(certificates, dict) or not certificates:
            return None
        cipher = ssl_object.cipher()
        if cipher and ssl_object.version() != "TLSv1.3":
            kind = "ecdsa" if "ECDSA" in cipher[0] else "rsa"
            return certificates.get(kind)
        return certificates.get("ecdsa") or certificates.get("rsa")


def server_context(certs: list[CertificateFiles], min_version: str = "TLSv1.2") -> ssl.SSLContext:
    """An SSLContext serving ``certs``, choosing by SNI; the first set is the default."""
    if not certs:
        raise TLSConfigError("no certificates configured")
    return ServerTLS(certs, min_version).context


def write_private_file(path: Path, data: bytes, exclusive: bool = False) -> None:
    """Write a secret (private key) to ``path``, readable by its owner only.

    The file is created with mode 0600 (never briefly readable by others, as
    a write followed by chmod would be); an existing file is truncated and
    set to 0600 first, or refused with FileExistsError when ``exclusive``.
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb", closefd=False) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    finally:
        os.close(fd)


def make_self_signed(directory: Path, hostnames: list[str], days: int = 3650) -> CertificateFiles:
    """Create (once) a self-signed ECDSA P-256 certificate for ``hostnames``."""
    directory.mkdir(parents=True, exist_ok=True)
    files = CertificateFiles(directory / "localserve.crt", directory / "localserve.key")
    if files.cert_file.exists() and files.key_file.exists():
        return files
    from cryptography import x509  # only here: a server that has its certificate never needs it
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])])
    alt: list[x509.GeneralName] = []
    for host in hostnames:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt.append(x509.DNSName(host))
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            # CA:TRUE so that clients (GnuTLS, OpenSSL) accept the file as its own
            # trust anchor when pointed at it (e.g. gsasl --x509-ca-file).
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    write_private_file(files.key_file, key_pem)
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return files


def describe(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> str:
    """"TLS1.3 TLS_AES_128_GCM_SHA256" for logs and Received headers."""
    cipher = ssl_object.cipher()
    version = ssl_object.version() or "TLS"
    return f"{version.replace('v', '')} {cipher[0] if cipher else ''}".strip()
