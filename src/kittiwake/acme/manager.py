"""Keeps the listeners' ACME certificates current: reuse, order, renew, retry, publish.

One :class:`CertificateManager` per ``[acme.NAME]`` in use runs in the
server. For each listener with ``tls.acme`` it keeps one certificate per host
key (ECDSA and RSA) for the listener's name set, and after each new
certificate calls the listener's callback with its current files (the server
passes the reloadable TLS context's update, so renewed certificates are
served without a restart).

When a certificate is due (RFC 8555 leaves this to the client):
- none stored, or the stored one misses a name or is for another key: now;
- else ``renew_before`` before its notAfter, or earlier when the authority's
  renewal information (RFC 9773 §4, where the directory has
  ``renewalInfo``) suggests an earlier time;
- after a failure: with exponential backoff (``backoff_first`` doubling up
  to ``backoff_max``), whatever the certificate says.
Before ordering, the issuer is checked against CAA (RFC 8659,
:mod:`kittiwake.acme.caa`). Orders run one at a time in a worker thread
(the ``acme`` library blocks); the event loop only waits for them.

Invariants:
- a certificate is published only after it is stored on disk and checked to
  be for the host key (:func:`kittiwake.acme.certstore.save`);
- callbacks run on the event loop, never in the worker thread;
- the host keys are never replaced here: renewals reuse them (TLSA stays valid).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kittiwake.acme import certstore, metrics, paths
from kittiwake.acme.caa import CAAForbidden, check_issuer, issuers_for
from kittiwake.acme.challenges import Challenges
from kittiwake.acme.client import ACMEClient, ACMEError, Authority, RenewalInfo, Stopped
from kittiwake.acme.keys import HostKey, KeyType
from kittiwake.acme.order import OrderFailed
from kittiwake.dns.resolver import Resolver
from kittiwake.log import get_logger

logger = get_logger("acme")

MAX_SLEEP = 12 * 3600.0


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class CertificatePaths:
    """A certificate chain file and its private key file (as the TLS layer loads them)."""

    cert_file: Path
    key_file: Path


CertificatesCallback = Callable[[list[CertificatePaths]], None]


@dataclass
class _Slot:
    """One certificate to keep current: a name set and one host key."""

    names: tuple[str, ...]
    key: HostKey
    path: Path
    current: certstore.StoredCertificate | None = None
    ari: RenewalInfo | None = None
    failures: int = 0
    retry_at: dt.datetime | None = None
    last_error: str = ""
    listeners: list[str] = field(default_factory=list)
    loaded: bool = False  # the stored chain was looked for


class CertificateManager:
    """The certificates of every listener using one ACME authority."""

    def __init__(self, authority: Authority, data_dir: Path, challenges: Challenges, *,
                 renew_before: dt.timedelta = dt.timedelta(days=30),
                 resolver: Resolver | None = None,
                 clock: Callable[[], dt.datetime] = _utcnow,
                 client: ACMEClient | None = None,
                 backoff_first: float = 120.0, backoff_max: float = 6 * 3600.0) -> None:
        self.authority = authority
        self.data_dir = data_dir
        self.challenges = challenges
        self.renew_before = renew_before
        self.resolver = resolver
        self.clock = clock
        self.client = client or ACMEClient(authority, data_dir, challenges)
        self.backoff_first = backoff_first
        self.backoff_max = backoff_max
        self.issuers = issuers_for(authority.directory_url, authority.issuer_domain_names)
        self._slots: dict[tuple[tuple[str, ...], Path], _Slot] = {}
        self._listeners: dict[str, list[_Slot]] = {}
        self._callbacks: dict[str, list[CertificatesCallback]] = {}
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.log = logger.with_fields(authority=authority.name)
        metrics.preinit_authority(authority.name)

    # -- set-up ---------------------------------------------------------------------------

    def add_listener(self, listener: str, names: list[str], keys: list[HostKey]) -> None:
        """Keep certificates for ``names`` (the first is the main name) with each of ``keys``."""
        wanted = tuple(dict.fromkeys(n.lower().rstrip(".") for n in names))
        certs_dir = paths.certificates_dir(self.data_dir, self.authority.name)
        slots = []
        for key in sorted(keys, key=lambda k: k.key_type is not KeyType.ECDSA):
            slot = self._slots.setdefault(
                (wanted, key.path),
                _Slot(wanted, key, certstore.chain_path(certs_dir, wanted, key)))
            slot.listeners.append(listener)
            slots.append(slot)
            metrics.FAILING_SINCE.labels(name=wanted[0], key_type=key.key_type.value)  # at 0
        self._listeners[listener] = slots

    def set_names(self, listener: str, names: list[str]) -> bool:
        """The listener's names changed (domains.conf reloaded): keep certificates for these.

        A stored certificate that covers them is kept; otherwise the next check orders.
        Returns whether anything changed."""
        slots = self._listeners.get(listener, [])
        wanted = tuple(dict.fromkeys(n.lower().rstrip(".") for n in names))
        if not slots or slots[0].names == wanted:
            return False
        for slot in slots:
            slot.listeners.remove(listener)
            if not slot.listeners:
                del self._slots[(slot.names, slot.key.path)]
        self.add_listener(listener, list(wanted), [s.key for s in slots])
        self.log.info("host names changed", listener=listener, names=",".join(wanted))
        self.wake()
        return True

    def subscribe(self, listener: str, callback: CertificatesCallback) -> None:
        """Call ``callback(current files)`` after each new certificate of ``listener``."""
        self._callbacks.setdefault(listener, []).append(callback)

    def certificates(self, listener: str) -> list[CertificatePaths]:
        """The listener's current certificate files, ECDSA first; empty before the first."""
        return [CertificatePaths(s.path, s.key.path) for s in self._listeners.get(listener, [])
                if s.current is not None]

    def listeners(self) -> list[str]:
        return list(self._listeners)

    # -- running --------------------------------------------------------------------------

    async def start(self, background: bool = True) -> None:
        """Load stored certificates (reused when still good), then keep them renewed."""
        for slot in self._slots.values():
            await self._load(slot)
        for listener in self._listeners:
            if self.certificates(listener):
                self._publish(listener)
        if background:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _load(self, slot: _Slot) -> None:
        """Look for the slot's stored chain (once)."""
        if slot.loaded:
            return
        slot.loaded = True
        slot.current = await asyncio.to_thread(certstore.load, slot.path, slot.key)
        if slot.current is not None:
            self._set_expiry(slot)
            self.log.info("stored certificate", names=",".join(slot.names),
                          key_type=slot.key.key_type.value,
                          not_after=slot.current.not_after.isoformat(),
                          covers=slot.current.covers(slot.names))

    async def close(self) -> None:
        self.client.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def wake(self) -> None:
        """Check now (e.g. after the clock moved in a test)."""
        self._wake.set()

    async def _run(self) -> None:
        from kittiwake.metrics import guard

        while True:
            with guard("acme", "certificate check failed", authority=self.authority.name):
                await self.renew_due()
            delay = (self.next_check() - self.clock()).total_seconds()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(max(delay, 1.0), MAX_SLEEP))
            self._wake.clear()

    def due_at(self, slot: _Slot) -> dt.datetime:
        """When ``slot`` needs a new certificate (see the module docstring)."""
        if slot.retry_at is not None:
            return slot.retry_at
        current = slot.current
        if current is None or not current.covers(slot.names):
            return dt.datetime.min.replace(tzinfo=dt.UTC)
        at = current.not_after - self.renew_before
        if slot.ari is not None and slot.ari.suggested is not None:
            at = min(at, slot.ari.suggested)
        return at

    def next_check(self) -> dt.datetime:
        times = [self.due_at(s) for s in self._slots.values()]
        times += [s.ari.ask_again for s in self._slots.values() if s.ari is not None]
        return min(times, default=self.clock() + dt.timedelta(seconds=MAX_SLEEP))

    async def renew_due(self) -> int:
        """Obtain every certificate that is due now; the number obtained."""
        async with self._lock:
            obtained = 0
            for slot in list(self._slots.values()):
                await self._load(slot)
                await self._refresh_renewal_info(slot)
                if self.due_at(slot) <= self.clock():
                    obtained += await self._obtain(slot)
            return obtained

    async def _refresh_renewal_info(self, slot: _Slot) -> None:
        """RFC 9773: ask for the renewal window of the current certificate when it is time."""
        if slot.current is None:
            return
        if slot.ari is not None and slot.ari.ask_again > self.clock():
            return
        try:
            slot.ari = await asyncio.to_thread(self.client.renewal_info, slot.current.pem)
        except ACMEError as exc:
            self.log.warning("renewal information unavailable", reason=str(exc))

    async def _obtain(self, slot: _Slot) -> int:
        names = ",".join(slot.names)
        log = self.log.with_fields(names=names, key_type=slot.key.key_type.value)
        log.info("ordering certificate",
                 reason="none stored" if slot.current is None else "renewal due")
        try:
            await asyncio.to_thread(self.client.connect)
            if self.resolver is not None and self.issuers:
                await check_issuer(self.resolver, list(slot.names), list(self.issuers),
                                   self.client.account_uri)
            # RFC 9773 §5: name the certificate being replaced, on the first try only (an
            # authority refusing the replacement must not make every retry fail).
            replaces = slot.current.pem if slot.current and not slot.failures else None
            chain = await asyncio.to_thread(self.client.obtain, list(slot.names), slot.key,
                                            replaces)
            stored = await asyncio.to_thread(certstore.save, slot.path, chain, slot.key)
        except Stopped:
            return 0
        except CAAForbidden as exc:
            self._failed(slot, str(exc), "caa-forbidden")
            return 0
        except (ACMEError, OrderFailed, ValueError, OSError) as exc:
            self._failed(slot, str(exc), "failed")
            return 0
        metrics.ORDERS.labels(authority=self.authority.name, result="ok").inc()
        metrics.FAILING_SINCE.labels(name=slot.names[0],
                                     key_type=slot.key.key_type.value).set(0)
        slot.current, slot.ari = stored, None
        slot.failures, slot.retry_at, slot.last_error = 0, None, ""
        self._set_expiry(slot)
        log.info("certificate obtained", serial=f"{stored.serial:x}",
                 not_after=stored.not_after.isoformat(), file=str(slot.path))
        for listener in slot.listeners:
            self._publish(listener)
        return 1

    def _failed(self, slot: _Slot, error: str, result: str) -> None:
        metrics.ORDERS.labels(authority=self.authority.name, result=result).inc()
        if not slot.failures:
            metrics.FAILING_SINCE.labels(name=slot.names[0], key_type=slot.key.key_type.value
                                         ).set(self.clock().timestamp())
        slot.failures += 1
        delay = min(self.backoff_first * 2 ** (slot.failures - 1), self.backoff_max)
        slot.retry_at = self.clock() + dt.timedelta(seconds=delay)
        slot.last_error = error
        metrics.RENEWAL_ERRORS.labels(authority=self.authority.name).inc()
        self.log.error("certificate order failed", names=",".join(slot.names),
                       key_type=slot.key.key_type.value, error=error,
                       failures=slot.failures, retry_in_seconds=round(delay))

    def _set_expiry(self, slot: _Slot) -> None:
        assert slot.current is not None
        for name in slot.names:
            metrics.CERTIFICATE_EXPIRY.labels(name=name, key_type=slot.key.key_type.value).set(
                slot.current.not_after.timestamp())

    def _publish(self, listener: str) -> None:
        from kittiwake.metrics import guard

        files = self.certificates(listener)
        for callback in self._callbacks.get(listener, []):
            with guard("acme", "certificate callback failed", listener=listener):
                callback(files)

    def status(self) -> list[dict[str, str | int | None]]:
        """Per certificate: names, key type, expiry, next renewal, last error (for status)."""
        return [{"names": ",".join(s.names), "key_type": s.key.key_type.value,
                 "not_after": s.current.not_after.isoformat() if s.current else None,
                 "renew_at": self.due_at(s).isoformat() if s.current or s.retry_at else "now",
                 "failures": s.failures, "last_error": s.last_error or None}
                for s in self._slots.values()]
