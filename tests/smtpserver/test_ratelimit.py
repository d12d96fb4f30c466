"""Rate limits per IP class, with a fake clock."""

from kittiwake.smtpserver.ratelimit import Limiter, ip_classes


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ip_classes() -> None:
    assert ip_classes("192.0.2.77") == ("192.0.2.77/32", "192.0.2.64/26", "192.0.0.0/21")
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
