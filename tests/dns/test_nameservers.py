"""KITTIWAKE_DNS and resolv.conf parsing (DESIGN.md "DNS")."""

from pathlib import Path

import pytest

from kittiwake.dns import Nameserver, ResolverConfigError, configured_nameservers
from kittiwake.dns import parse_nameservers as parse
from kittiwake.dns.stub import system_nameservers


def test_ipv4_with_and_without_port() -> None:
    assert parse("127.0.0.1") == [Nameserver("127.0.0.1", 53)]
    assert parse("127.0.0.1:5353, 192.0.2.1") == [
        Nameserver("127.0.0.1", 5353), Nameserver("192.0.2.1", 53)]


def test_ipv6_with_and_without_port() -> None:
    assert parse("[::1]:5353") == [Nameserver("::1", 5353)]
    assert parse("::1") == [Nameserver("::1", 53)]
    assert parse("[2001:db8::53]") == [Nameserver("2001:db8::53", 53)]
    assert str(Nameserver("::1", 5353)) == "[::1]:5353"
    assert str(Nameserver("127.0.0.1", 53)) == "127.0.0.1:53"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "KITTIWAKE_DNS: no resolver given (expected IP[:PORT][,...])"),
        (" , ", "KITTIWAKE_DNS: no resolver given (expected IP[:PORT][,...])"),
        ("localhost", "KITTIWAKE_DNS: 'localhost' is not an IP address (expected IP[:PORT], "
                      "e.g. 127.0.0.1:53)"),
        ("127.0.0.1:0", "KITTIWAKE_DNS: '127.0.0.1:0': port must be a number from 1 to 65535"),
        ("127.0.0.1:65536", "KITTIWAKE_DNS: '127.0.0.1:65536': port must be a number from 1 "
                            "to 65535"),
        ("127.0.0.1:dns", "KITTIWAKE_DNS: '127.0.0.1:dns': port must be a number from 1 to "
                          "65535"),
        ("[::1", "KITTIWAKE_DNS: '[::1': missing ']' after IPv6 address"),
        ("[::1]53", "KITTIWAKE_DNS: '[::1]53': expected ':PORT' after ']'"),
        ("[::1]:", "KITTIWAKE_DNS: '[::1]:': port must be a number from 1 to 65535"),
        ("[nope]:53", "KITTIWAKE_DNS: '[nope]:53' is not an IP address"),
        ("127.0.0.1,300.1.1.1", "KITTIWAKE_DNS: '300.1.1.1' is not an IP address"),
    ],
)
def test_bad_input_gives_clear_error(spec: str, message: str) -> None:
    with pytest.raises(ResolverConfigError) as info:
        parse(spec)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_origin_names_where_the_setting_came_from() -> None:
    with pytest.raises(ResolverConfigError, match=r"^config dns\.resolvers: 'x'"):
        parse("x", "config dns.resolvers")


def test_environment_wins_over_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KITTIWAKE_DNS", "127.0.0.2:5300")
    assert configured_nameservers(["192.0.2.53"]) == [Nameserver("127.0.0.2", 5300)]
    monkeypatch.delenv("KITTIWAKE_DNS")
    assert configured_nameservers(["192.0.2.53", "[::1]:54"]) == [
        Nameserver("192.0.2.53"), Nameserver("::1", 54)]
    monkeypatch.setenv("KITTIWAKE_DNS", "bogus")
    with pytest.raises(ResolverConfigError, match=r"^KITTIWAKE_DNS: 'bogus'"):
        configured_nameservers()


def test_resolv_conf(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("# comment\nsearch example.org\nnameserver 192.0.2.53\n"
                    "nameserver fe80::1%eth0\nnameserver not-an-ip\noptions trust-ad\n")
    assert system_nameservers(str(conf)) == [Nameserver("192.0.2.53"), Nameserver("fe80::1")]
    conf.write_text("search example.org\n")
    # resolv.conf(5): without nameserver lines the local host is used.
    assert system_nameservers(str(conf)) == [Nameserver("127.0.0.1")]
    assert system_nameservers(str(tmp_path / "missing")) == [Nameserver("127.0.0.1")]
