"""Connection slots: per-IP and total limits; refusals hold nothing."""

from kittiwake.limits import ConnectionSlots, Refusal, Slot


def test_refusals_hold_no_slot() -> None:
    slots = ConnectionSlots(max_total=5, max_per_ip=2)
    held = [slots.acquire("192.0.2.1") for _ in range(2)]
    assert all(isinstance(s, Slot) for s in held)
    assert all(slots.acquire("192.0.2.1") is Refusal.PER_IP for _ in range(100))
    assert slots.open_from("192.0.2.1") == 2
    held[0].release()
    held[0].release()  # a second release changes nothing
    assert slots.open_from("192.0.2.1") == 1
    assert isinstance(slots.acquire("192.0.2.1"), Slot)
    assert slots.acquire("192.0.2.1") is Refusal.PER_IP


def test_total_limit() -> None:
    slots = ConnectionSlots(max_total=3, max_per_ip=2)
    held = [slots.acquire(f"192.0.2.{i}") for i in range(3)]
    assert slots.acquire("192.0.2.9") is Refusal.TOTAL
    assert slots.total == 3
    held[1].release()  # type: ignore[union-attr]
    assert isinstance(slots.acquire("192.0.2.9"), Slot)


def test_ipv6_counts_per_64() -> None:
    slots = ConnectionSlots(max_total=10, max_per_ip=2)
    assert isinstance(slots.acquire("2001:db8:1:2::1"), Slot)
    assert isinstance(slots.acquire("2001:db8:1:2::2"), Slot)
    assert slots.acquire("2001:db8:1:2:ffff::3") is Refusal.PER_IP
    assert isinstance(slots.acquire("2001:db8:1:3::1"), Slot)
    assert isinstance(slots.acquire("?"), Slot)
