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


def test_given_back_events_no_longer_count_even_after_the_window_moved() -> None:
    clock = Clock()
    limiter = Limiter(60, (2, 100, 100), clock)
    assert limiter.take("192.0.2.1") and limiter.take("192.0.2.1")
    assert not limiter.take("192.0.2.1")
    limiter.give_back("192.0.2.1")  # one of them did not happen
    assert limiter.take("192.0.2.1")
    assert not limiter.take("192.0.2.1")
    # Into the next window: the old events weigh in as "previous"; giving one back
    # takes it from there, and never below zero.
    clock.now = 1030.0  # 10 s into the next window: the previous one weighs 5/6
    assert not limiter.take("192.0.2.1")
    for _ in range(5):
        limiter.give_back("192.0.2.1")
    assert limiter.take("192.0.2.1") and limiter.take("192.0.2.1")
    assert not limiter.take("192.0.2.1")
    limiter.give_back("198.51.100.1")  # never counted: nothing happens
    assert limiter.take("198.51.100.1")
