"""Transports in kittiwake.conf and routes in domains.conf: validation messages."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from kittiwake.config import ConfigError, DomainsConfig, StaticConfig, load
from kittiwake.config.describe import describe
from kittiwake.config.transports import Route, Transport, split_address

STATIC = """
hostname = "mail.example.org"
data_dir = "data"
"""

DOMAINS = """
[domains."example.org"]
[accounts.alice]
domain = "example.org"
"""


def write(dir_: Path, static: str = "", domains: str = "") -> Path:
    (dir_ / "kittiwake.conf").write_text(STATIC + static)
    (dir_ / "domains.conf").write_text(DOMAINS + domains)
    return dir_


def problems(dir_: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(dir_)
    return info.value.problems


def one_problem(dir_: Path) -> str:
    found = problems(dir_)
    assert len(found) == 1, found
    return found[0]


def test_all_kinds_load_with_their_defaults(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "relay.password").write_text("s3cret\n")
    config = load(write(tmp_path, """
[transports.plain.direct]
[transports.v4only.direct]
disable_ipv6 = true
[transports.smarthost.smtp]
host = "Relay.Example.NET"
[transports.relay.submission]
host = "smtp.provider.example"
username = "alice@provider.example"
password_file = "secrets/relay.password"
mechanisms = ["scram-sha-256", "PLAIN"]
[transports.relay465.submissions]
host = "smtp.provider.example"
username = "alice"
password_file = "secrets/relay.password"
[transports.proxy.socks]
address = "[::1]:1080"
remote_ips = ["192.0.2.10", "2001:db8::10"]
hostname = "out.example.org"
[transports.off.fail]
"""))
    t = config.static.transports
    assert {name: tr.kind for name, tr in t.items()} == {
        "plain": "direct", "v4only": "direct", "smarthost": "smtp", "relay": "submission",
        "relay465": "submissions", "proxy": "socks", "off": "fail"}
    assert t["v4only"].settings.disable_ipv6 is True
    smtp = t["smarthost"].smtp
    assert smtp is not None
    assert (smtp.host, smtp.port, smtp.no_starttls, smtp.tls_verify) == \
        ("relay.example.net", 25, False, True)
    sub = t["relay"].submission
    assert sub is not None and sub.port == 587
    assert sub.mechanisms == ["SCRAM-SHA-256", "PLAIN"]
    assert sub.password(config.config_dir) == "s3cret"
    subs = t["relay465"].submissions
    assert subs is not None and subs.port == 465 and subs.mechanisms == []
    socks = t["proxy"].socks
    assert socks is not None and socks.proxy == ("::1", 1080) and socks.password(tmp_path) == ""
    fail = t["off"].fail
    assert fail is not None and fail.code == 554


def test_two_kinds_in_one_transport(tmp_path: Path) -> None:
    write(tmp_path, """
[transports.relay.smtp]
host = "relay.example.net"
[transports.relay.direct]
""")
    line = one_problem(tmp_path)
    assert line.startswith(f"{tmp_path / 'kittiwake.conf'}: transports.relay: ")
    assert "exactly one kind of direct, smtp, submission, submissions, socks, fail " \
        "(got direct and smtp)" in line


def test_transport_without_kind(tmp_path: Path) -> None:
    write(tmp_path, "[transports.relay]\n")
    line = one_problem(tmp_path)
    assert line.startswith(f"{tmp_path / 'kittiwake.conf'}: transports.relay: ")
    assert "(got none)" in line


def test_unknown_kind_is_an_unknown_field(tmp_path: Path) -> None:
    write(tmp_path, "[transports.relay.lmtp]\nhost = 'x.example'\n")
    found = problems(tmp_path)
    assert any("transports.relay.lmtp: unknown field" in p for p in found), found


@pytest.mark.parametrize("code", [250, 354, 600, 99])
def test_fail_code_must_be_4xx_or_5xx(tmp_path: Path, code: int) -> None:
    write(tmp_path, f"[transports.off.fail]\ncode = {code}\n")
    line = one_problem(tmp_path)
    assert f"transports.off.fail.code: code {code} is not a failure reply code" in line


def test_fail_code_4xx_is_accepted(tmp_path: Path) -> None:
    config = load(write(tmp_path, "[transports.later.fail]\ncode = 451\nmessage = 'not now'\n"))
    fail = config.static.transports["later"].fail
    assert fail is not None and (fail.code, fail.message) == (451, "not now")


def test_fail_message_must_be_one_line(tmp_path: Path) -> None:
    write(tmp_path, '[transports.off.fail]\nmessage = "a\\r\\nRCPT TO:<x@y>"\n')
    assert "transports.off.fail.message: message must be one line" in one_problem(tmp_path)


def test_inline_password_is_refused(tmp_path: Path) -> None:
    write(tmp_path, """
[transports.relay.submission]
host = "smtp.provider.example"
username = "alice"
password = "s3cret"
""")
    found = problems(tmp_path)
    assert any("transports.relay.submission.password: unknown field" in p for p in found), found
    assert any("transports.relay.submission.password_file: Field required" in p
               for p in found), found


def test_missing_password_file(tmp_path: Path) -> None:
    write(tmp_path, """
[transports.relay.submissions]
host = "smtp.provider.example"
username = "alice"
password_file = "secrets/nope"
""")
    line = one_problem(tmp_path)
    assert line == (f"{tmp_path / 'kittiwake.conf'}: transports.relay.submissions."
                    f"password_file: no file {tmp_path / 'secrets' / 'nope'}")


def test_socks_proxy_password_file_checked_too(tmp_path: Path) -> None:
    write(tmp_path, """
[transports.proxy.socks]
address = "127.0.0.1:1080"
remote_ips = ["192.0.2.10"]
hostname = "out.example.org"
username = "kw"
password_file = "socks.pw"
""")
    assert "transports.proxy.socks.password_file: no file" in one_problem(tmp_path)


def test_socks_username_needs_password_file(tmp_path: Path) -> None:
    write(tmp_path, """
[transports.proxy.socks]
address = "127.0.0.1:1080"
remote_ips = ["192.0.2.10"]
hostname = "out.example.org"
username = "kw"
""")
    assert "transports.proxy.socks: username and password_file go together" \
        in one_problem(tmp_path)


@pytest.mark.parametrize(("address", "message"), [
    ("127.0.0.1", "is not HOST:PORT"),
    ("::1:1080", "write IPv6 addresses in brackets"),
    ("127.0.0.1:0", "port 0 is not in 1-65535"),
    ("[nothost]:1080", "is not HOST:PORT"),
])
def test_socks_bad_address(tmp_path: Path, address: str, message: str) -> None:
    write(tmp_path, f"""
[transports.proxy.socks]
address = "{address}"
remote_ips = ["192.0.2.10"]
hostname = "out.example.org"
""")
    line = one_problem(tmp_path)
    assert "transports.proxy.socks.address: " in line and message in line


def test_split_address() -> None:
    assert split_address("Proxy.Example:1080") == ("proxy.example", 1080)
    assert split_address("[2001:DB8::1]:9050") == ("2001:db8::1", 9050)


def test_unknown_sasl_mechanism(tmp_path: Path) -> None:
    write(tmp_path, """
[transports.relay.submission]
host = "smtp.provider.example"
username = "alice"
password_file = "pw"
mechanisms = ["XOAUTH2"]
""")
    (tmp_path / "pw").write_text("x")
    line = one_problem(tmp_path)
    assert "transports.relay.submission.mechanisms[0]: 'XOAUTH2' is not a supported SASL " \
        "mechanism (known: SCRAM-SHA-256-PLUS," in line


def test_direct_needs_an_address_family(tmp_path: Path) -> None:
    write(tmp_path, "[transports.none.direct]\ndisable_ipv4 = true\ndisable_ipv6 = true\n")
    assert "transports.none.direct: disable_ipv4 and disable_ipv6 both set" \
        in one_problem(tmp_path)


def test_bad_transport_name(tmp_path: Path) -> None:
    write(tmp_path, '[transports."my relay".direct]\n')
    assert "transport name 'my relay'" in one_problem(tmp_path)


def test_route_naming_unknown_transport(tmp_path: Path) -> None:
    write(tmp_path, "[transports.smarthost.smtp]\nhost = 'relay.example.net'\n"
                    "[transports.off.fail]\n", """
[[accounts.alice.routes]]
to_domains = [".example.com"]
transport = "relay"
""")
    line = one_problem(tmp_path)
    assert line == (f"{tmp_path / 'domains.conf'}: accounts.alice.routes[0].transport: "
                    "transport 'relay' is not defined in kittiwake.conf (known: off, smarthost)")


def test_domain_and_global_routes_are_checked(tmp_path: Path) -> None:
    write(tmp_path, "", """
[[domains."example.org".routes]]
[[domains."example.org".routes]]
transport = "a"
[[routes]]
transport = "b"
""")
    found = problems(tmp_path)
    assert found == [
        f"{tmp_path / 'domains.conf'}: domains.\"example.org\".routes[1].transport: "
        "transport 'a' is not defined in kittiwake.conf (known: none)",
        f"{tmp_path / 'domains.conf'}: routes[0].transport: "
        "transport 'b' is not defined in kittiwake.conf (known: none)",
    ]


def test_routes_with_known_transports_load(tmp_path: Path) -> None:
    config = load(write(tmp_path, "[transports.smarthost.smtp]\nhost = 'relay.example.net'\n", """
[[routes]]
from_domains = ["Bücher.example", ".EXAMPLE.org"]
min_attempts = 2
transport = "smarthost"
"""))
    [route] = config.domains.routes
    assert route.from_domains == ["xn--bcher-kva.example", ".example.org"]
    assert route.to_domains == [] and route.min_attempts == 2


def test_route_bad_domain_and_negative_attempts(tmp_path: Path) -> None:
    write(tmp_path, "", "[[routes]]\nto_domains = ['a..b']\nmin_attempts = -1\n")
    found = problems(tmp_path)
    assert any("routes[0].to_domains[0]: domain name 'a..b' has an empty label" in p
               for p in found), found
    assert any("routes[0].min_attempts: Input should be greater than or equal to 0" in p
               for p in found), found


def test_route_model_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="transprot"):
        Route.model_validate({"transprot": "x"})


def test_transport_model_directly() -> None:
    t = Transport.model_validate({"fail": {"code": 421, "message": "try later"}})
    assert t.kind == "fail" and t.settings.code == 421  # type: ignore[union-attr]


@pytest.mark.parametrize("model", [StaticConfig, DomainsConfig])
def test_described_examples_still_validate(model: type[StaticConfig | DomainsConfig]) -> None:
    text = describe(model, "x")
    model.model_validate(tomllib.loads(text))
    assert "routes" in text or "transports" in text
    if model is StaticConfig:
        assert "[transports.relay.submission]" in text  # the example in the docstring
    else:
        for table in ('[[domains."example.org".routes]]', "[[accounts.alice.routes]]",
                      "[[routes]]"):
            assert table in text


def test_transports_docstring_example_loads(tmp_path: Path) -> None:
    doc = StaticConfig.model_fields["transports"].description or ""
    example = doc.split("For example:", 1)[1]
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "relay.password").write_text("pw")
    config = load(write(tmp_path, "\n".join(line.strip() for line in example.splitlines())))
    assert config.static.transports["relay"].kind == "submission"
