"""The certificate manager's schedule: reuse, renew_before, ARI's window, backoff, publish.

The ACME side is a stand-in (the pebble tests in tests/integration/ use the
real one); the certificates are real, issued by a trustme CA for the host keys.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from kittiwake.acme.challenges import Challenges
from kittiwake.acme.client import ACMEError, Authority, RenewalInfo
from kittiwake.acme.keys import HostKey, generated_host_keys
from kittiwake.acme.manager import CertificateManager, CertificatePaths
from kittiwake.metrics import REGISTRY

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
NAMES = ["mail.example.org", "mta-sts.example.org"]


class Authority_:
    """Issues 90-day certificates for the CSR's key; can be told to fail or to suggest a time."""

    def __init__(self, clock: list[dt.datetime]) -> None:
        self.ca = trustme.CA()
        self.clock = clock
        self.orders = 0
        self.fail = False
        self.suggest: dt.datetime | None = None
        self.account_uri = "https://ca.example/acct/1"
        self.replaced: list[bytes | None] = []

    def connect(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def obtain(self, names: list[str], key: HostKey, replaces: bytes | None = None) -> str:
        self.orders += 1
        self.replaced.append(replaces)
        if self.fail:
            raise ACMEError("order for x (validating): connection refused")
        private = serialization.load_pem_private_key(key.pem, password=None)
        issuer_key = serialization.load_pem_private_key(
            self.ca.private_key_pem.bytes(), password=None)
        issuer = x509.load_pem_x509_certificate(self.ca.cert_pem.bytes())
        now = self.clock[0]
        cert = (x509.CertificateBuilder().subject_name(x509.Name([]))
                .issuer_name(issuer.subject).public_key(private.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now).not_valid_after(now + dt.timedelta(days=90))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                               critical=False)
                .sign(issuer_key, hashes.SHA256()))  # type: ignore[arg-type]
        return (cert.public_bytes(serialization.Encoding.PEM).decode()
                + self.ca.cert_pem.bytes().decode())

    def renewal_info(self, cert_pem: bytes) -> RenewalInfo | None:
        if self.suggest is None:
            return None
        return RenewalInfo(self.suggest, self.clock[0] + dt.timedelta(hours=6))


@pytest.fixture
def clock() -> list[dt.datetime]:
    return [NOW]


def manager(tmp_path: Path, fake: Authority_, clock: list[dt.datetime],
            published: list[list[CertificatePaths]]) -> CertificateManager:
    keys, _ = generated_host_keys(tmp_path / "keys")
    m = CertificateManager(Authority("fake", "https://ca.example/dir"), tmp_path / "data",
                           Challenges(), clock=lambda: clock[0], client=fake,  # type: ignore[arg-type]
                           backoff_first=60, backoff_max=3600)
    m.add_listener("public", NAMES, keys)
    m.subscribe("public", published.append)
    return m


async def test_renewal_30_days_before_expiry(tmp_path: Path, clock: list[dt.datetime]) -> None:
    fake, published = Authority_(clock), []
    m = manager(tmp_path, fake, clock, published)
    await m.start(background=False)
    assert await m.renew_due() == 2
    assert [len(p) for p in published] == [1, 2]  # after each new certificate
    clock[0] = NOW + dt.timedelta(days=59)
    assert await m.renew_due() == 0
    clock[0] = NOW + dt.timedelta(days=60, seconds=1)
    old = [f.cert_file.read_bytes() for f in m.certificates("public")]
    assert await m.renew_due() == 2
    assert fake.orders == 4
    assert fake.replaced == [None, None, *old]  # a renewal names the certificate it replaces
    expiry = REGISTRY.get_sample_value("kittiwake_acme_certificate_expiry_timestamp_seconds",
                                       {"name": "mta-sts.example.org", "key_type": "rsa"})
    assert expiry == (clock[0] + dt.timedelta(days=90)).timestamp()


async def test_ari_window_brings_renewal_forward(tmp_path: Path,
                                                 clock: list[dt.datetime]) -> None:
    fake, published = Authority_(clock), []
    m = manager(tmp_path, fake, clock, published)
    await m.start(background=False)
    await m.renew_due()
    fake.suggest = NOW + dt.timedelta(days=10)  # e.g. the CA is revoking a batch
    clock[0] = NOW + dt.timedelta(days=9)
    assert await m.renew_due() == 0
    clock[0] = NOW + dt.timedelta(days=10, seconds=1)
    assert await m.renew_due() == 2


async def test_failures_back_off_exponentially(tmp_path: Path, clock: list[dt.datetime]) -> None:
    fake, published = Authority_(clock), []
    m = manager(tmp_path, fake, clock, published)
    await m.start(background=False)
    fake.fail = True
    errors = REGISTRY.get_sample_value("kittiwake_acme_renewal_errors_total",
                                       {"authority": "fake"}) or 0
    assert await m.renew_due() == 0
    assert fake.orders == 2
    status = m.status()[0]
    assert status["failures"] == 1 and "connection refused" in str(status["last_error"])
    started = clock[0].timestamp()

    def failing_since() -> dict[str, float]:
        return {s.labels["key_type"]: s.value
                for family in REGISTRY.collect() for s in family.samples
                if s.name == "kittiwake_acme_certificate_failing_since_timestamp_seconds"
                and s.labels["name"] == "mail.example.org"}

    assert failing_since() == {"ecdsa": started, "rsa": started}
    clock[0] += dt.timedelta(seconds=59)
    assert await m.renew_due() == 0 and fake.orders == 2  # not before the backoff
    clock[0] += dt.timedelta(seconds=2)
    await m.renew_due()
    assert fake.orders == 4 and m.status()[0]["failures"] == 2
    assert failing_since() == {"ecdsa": started, "rsa": started}  # since the first failure
    clock[0] += dt.timedelta(seconds=100)  # the second wait is 120 s
    await m.renew_due()
    assert fake.orders == 4
    fake.fail = False
    clock[0] += dt.timedelta(seconds=21)
    assert await m.renew_due() == 2
    assert m.status()[0]["failures"] == 0
    assert failing_since() == {"ecdsa": 0, "rsa": 0}  # the alert ends with the success
    assert REGISTRY.get_sample_value("kittiwake_acme_renewal_errors_total",
                                     {"authority": "fake"}) == errors + 4
    assert published[-1] == m.certificates("public")


async def test_restart_reuses_and_a_new_name_orders(tmp_path: Path,
                                                    clock: list[dt.datetime]) -> None:
    fake, published = Authority_(clock), []
    m = manager(tmp_path, fake, clock, published)
    await m.start(background=False)
    await m.renew_due()
    again = manager(tmp_path, fake, clock, published)
    await again.start(background=False)
    assert len(again.certificates("public")) == 2  # served at once, before any order
    assert await again.renew_due() == 0 and fake.orders == 2
    keys, _ = generated_host_keys(tmp_path / "keys")
    grown = CertificateManager(Authority("fake", "https://ca.example/dir"), tmp_path / "data",
                               Challenges(), clock=lambda: clock[0], client=fake)  # type: ignore[arg-type]
    grown.add_listener("public", [*NAMES, "autoconfig.example.org"], keys)
    await grown.start(background=False)
    assert await grown.renew_due() == 2  # the stored ones miss a name


async def test_new_domain_orders_and_removed_domain_reuses(tmp_path: Path,
                                                           clock: list[dt.datetime]) -> None:
    fake, published = Authority_(clock), []
    m = manager(tmp_path, fake, clock, published)
    await m.start(background=False)
    await m.renew_due()
    assert m.set_names("public", [*NAMES, "mta-sts.example.net"])
    assert not m.set_names("public", [*NAMES, "mta-sts.example.net"])
    assert await m.renew_due() == 2
    leaf = x509.load_pem_x509_certificates(m.certificates("public")[0].cert_file.read_bytes())[0]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "mta-sts.example.net" in san.get_values_for_type(x509.DNSName)
    assert m.set_names("public", NAMES)  # a subset: the stored certificate still covers it
    assert await m.renew_due() == 0
    assert fake.orders == 4
