"""``kittiwake dns lookup``: what a user sees for bad input and unreachable resolvers.

The lookups that reach a real resolver are in tests/integration/test_dnsworld.py.
"""

from __future__ import annotations

import json
import socket

import pytest

from kittiwake.cli.main import main


def unused_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def dead_resolver(monkeypatch: pytest.MonkeyPatch) -> str:
    """Never ask the system resolver: point KITTIWAKE_DNS at a closed loopback port."""
    spec = f"127.0.0.1:{unused_port()}"
    monkeypatch.setenv("KITTIWAKE_DNS", spec)
    return spec


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the CLI as the console script does: ``sys.exit(main())``."""
    try:
        code = int(main(list(args)) or 0)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a..example", "kittiwake: domain name 'a..example' has an empty label"),
        ("x" * 64 + ".example", "kittiwake: domain name 'xxxxxxxxxxxxxxxxxxxx"
                                "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.example': label"),
        (".".join(["a" * 63] * 4), "kittiwake: domain name is 255 characters, at most 253"),
        ("☃.example", "kittiwake: domain name '☃.example': label '☃' is not valid IDNA 2008"),
    ],
)
@pytest.mark.parametrize("as_json", [False, True])
def test_bad_name_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str], name: str,
                                         message: str, as_json: bool) -> None:
    flags = ["--json"] if as_json else []
    code, out, err = run_cli(capsys, "dns", "lookup", *flags, "txt", name)
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(message)


def test_bad_resolver_setting_is_one_line_and_exit_1(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KITTIWAKE_DNS", "resolver.example:53")
    code, out, err = run_cli(capsys, "dns", "lookup", "a", "example.org")
    assert code == 1
    assert out == ""
    assert err == ("kittiwake: KITTIWAKE_DNS: 'resolver.example:53' is not an IP address"
                   " (expected IP[:PORT], e.g. 127.0.0.1:53)\n")


def test_unknown_type_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    # Command-line usage errors exit 2 (kittiwake.cli.main), with one line.
    code, out, err = run_cli(capsys, "dns", "lookup", "soa", "example.org")
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("kittiwake: Invalid value for 'TYPE': 'soa' is not one of")


def test_unreachable_resolver_is_exit_3(capsys: pytest.CaptureFixture[str],
                                        dead_resolver: str) -> None:
    code, out, err = run_cli(capsys, "dns", "lookup", "mx", "example.org")
    assert code == 3
    assert out == ""
    assert err.startswith(f"temporary error: MX example.org: {dead_resolver}: ")
    assert err.count("\n") == 1

    code, out, err = run_cli(capsys, "dns", "lookup", "--json", "ptr", "192.0.2.1")
    assert code == 3
    data = json.loads(out)
    assert (data["name"], data["type"], data["status"]) == (
        "1.2.0.192.in-addr.arpa", "PTR", "temperror")
    assert data["authentic"] is False
    assert err == ""
