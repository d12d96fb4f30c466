"""Integration tests: kittiwake against real peers (bind9, unbound, ...) on loopback."""
