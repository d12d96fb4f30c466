"""Rate limits per IP class and failed-login limits, with a fake clock."""

from kittiwake.smtpserver.ratelimit import AuthFailures, Limiter, ip_classes


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ip_classes() -> None:
    assert ip_classes("192.0.2.77") == ["192.0.2.77/32", "192.0.2.64/26", "192.0.0.0/21"]
    assert ip_classes("2001:db8:1:2::5")[0] == "2001:db8:1:2::/64"


def test_limits_apply_to_whole_networks_and_recover() -> None:
    clock = Clock()
    limiter = Limiter(60, (3, 5, 100), clock)
    assert all(limiter.take("192.0.2.1") for _ in range(3))
    assert not limiter.take("192.0.2.1")
    # Another address in the same /26 still has room in the /26 class ...
    assert limiter.take("192.0.2.2") and limiter.take("192.0.2.3")
    # ... until the /26 limit of 5 is reached.
    assert not limiter.take("192.0.2.4")
    # A different /26 is not affected.
    assert limiter.take("192.0.2.200")
    clock.now += 125  # two windows later everything is forgotten
    assert limiter.take("192.0.2.1")


def test_auth_failures_block_ip_and_account() -> None:
    clock = Clock()
    failures = AuthFailures(window=300, per_ip=3, per_account=5, clock=clock)
    for _ in range(3):
        assert failures.failed("198.51.100.1", "alice") > 0
    assert failures.blocked("198.51.100.1")
    assert not failures.blocked("203.0.113.9", "alice")
    for ip in ("203.0.113.1", "203.0.113.2"):
        failures.failed(ip, "alice")
    assert failures.blocked("203.0.113.9", "alice")
    clock.now += 301
    assert not failures.blocked("198.51.100.1", "alice")
