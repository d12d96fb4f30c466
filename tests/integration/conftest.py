"""Fixtures for integration tests with a real DNSSEC world (bind9 + unbound on loopback).

Every test under ``tests/integration/`` is marked ``integration`` automatically.

``dns_world`` (session scope): a started :class:`~.dnsworld.DNSWorld` with the
default records of :data:`~.dnsworld.DEFAULT_RECORDS`. Do not rely on answers
being uncached or add records to it; it is shared. It holds:

=====================================  =====  ====================================
name                                   type   value
=====================================  =====  ====================================
signed.test  (authentic)               TXT    ``v=spf1 ip4:127.0.0.1 -all``
signed.test                            MX     ``10 mx.signed.test.``
signed.test                            A      127.0.0.1
signed.test                            CAA    ``0 issue "ca.test"``
_dmarc.signed.test                     TXT    ``v=DMARC1; p=reject``
mx.signed.test                         A      127.0.0.1
mx.signed.test                         AAAA   ::1
_25._tcp.mx.signed.test                TLSA   ``3 1 1 8cb0...21f1`` (DEFAULT_TLSA_DATA)
_submissions._tcp.signed.test          SRV    ``0 1 465 mx.signed.test.``
nullmx.signed.test                     MX     ``0 .`` (RFC 7505 null MX)
nullmx.signed.test                     TXT    ``v=spf1 -all``
alias.signed.test                      CNAME  alias2.signed.test -> mx.signed.test
unsigned.test  (not authentic)         TXT    ``v=spf1 ip4:127.0.0.1 -all``
unsigned.test                          MX     ``10 mx.unsigned.test.``
_dmarc.unsigned.test                   TXT    ``v=DMARC1; p=none``
mx.unsigned.test                       A      127.0.0.1
bogus.test  (SERVFAIL + EDE 7)         TXT    ``v=spf1 ip4:127.0.0.1 -all``
bogus.test                             MX     ``10 mx.bogus.test.``
_dmarc.bogus.test                      TXT    ``v=DMARC1; p=reject``
mx.bogus.test                          A      127.0.0.1
1.0.0.127.in-addr.arpa (authentic)     PTR    mx.signed.test
=====================================  =====  ====================================

Every lookup in ``bogus.test`` is a SERVFAIL from unbound. The first question
for a name and type carries EDE 7 "Signature Expired"; the same question again
is answered from unbound's cache with EDE 6 "DNSSEC Bogus". Tests that assert
EDE 7 should ask a name no other test asks (any name below ``bogus.test``
works, existing or not).

Use it with ``dns_world.env`` (``os.environ`` plus ``KITTIWAKE_DNS``, for
``subprocess.run(..., env=dns_world.env)``), ``dns_world.dns_spec``
(``"127.0.0.1:PORT"``, e.g. for ``monkeypatch.setenv("KITTIWAKE_DNS", ...)``),
``dns_world.resolver`` (``(host, port)`` of unbound),
``dns_world.stub_resolver(timeout=3.0)`` (a ``kittiwake.dns.StubResolver``),
``dns_world.dig("+dnssec", NAME, "TXT")`` (dig's output against unbound),
``dns_world.authoritative`` (``(host, port)`` of named, which does not
validate) and ``dns_world.trust_anchor_files`` (DS files, e.g. for ``delv``).

``make_dns_world`` (function scope): a factory for tests that need their own
records. ``make_dns_world(records=(), *, defaults=False, zones=None,
start=True)`` returns a :class:`~.dnsworld.DNSWorld`; ``records`` are tuples
for :meth:`DNSWorld.add` (``(fqdn, type, rdata)`` or ``(zone, owner, type,
rdata)``), ``defaults=True`` adds the default records too, ``zones`` maps
extra zone names to ``"signed"``, ``"unsigned"`` or ``"bogus"`` (a zone
below a world zone is delegated from it, with a DS unless unsigned; any other
name becomes a top zone with its own trust anchor). With ``start=False`` you
get it unstarted: ``world.add(...)``, ``world.add_ptr("127.0.0.5",
"host.signed.test")``, ``world.add_zone(...)``, then ``world.start()``.
Every world it made is stopped at the end of the test. Starting one takes
about a second or two.

``imap_server`` (function scope, parametrised over IMAP servers): see
:mod:`tests.integration.conftest_imap`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from .conftest_imap import imap_server  # noqa: F401  (real IMAP clients' server fixture)
from .dnsworld import DNSWorld, MakeDNSWorld, add_default_records

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def dns_world() -> Iterator[DNSWorld]:
    """The shared, started DNS world with the default records (see module docstring)."""
    world = add_default_records(DNSWorld())
    with world:
        yield world


@pytest.fixture
def make_dns_world() -> Iterator[MakeDNSWorld]:
    """Factory for a private DNS world; all are stopped after the test."""
    worlds: list[DNSWorld] = []

    def make(records: Iterable[tuple[str, ...]] = (), *, defaults: bool = False,
             zones: dict[str, str] | None = None, start: bool = True) -> DNSWorld:
        world = DNSWorld()
        worlds.append(world)
        for name, mode in (zones or {}).items():
            world.add_zone(name, mode)
        if defaults:
            add_default_records(world)
        for record in records:
            world.add(*record)
        if start:
            world.start()
        return world

    yield make
    for world in worlds:
        world.stop()
