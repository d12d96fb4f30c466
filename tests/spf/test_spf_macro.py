"""SPF macros (RFC 7208 §7): the RFC's own examples, escaping, syntax errors, and pyspf."""

from __future__ import annotations

import ipaddress
import json
import subprocess

import pytest

from kittiwake.spf import MacroContext, MacroSyntaxError, expand, parse_macro_string
from kittiwake.spf.macro import parse_domain_spec


def context(ip: str = "192.0.2.3", sender: str = "strong-bad@email.example.com",
            **kwargs: object) -> MacroContext:
    local, _, domain = sender.rpartition("@")
    values: dict[str, object] = {
        "sender": sender, "local": local, "sender_domain": domain, "domain": domain,
        "ip": ipaddress.ip_address(ip), "helo": "mx.example.org",
    }
    values.update(kwargs)
    return MacroContext(**values)  # type: ignore[arg-type]


async def run(text: str, ctx: MacroContext | None = None, explain: bool = False) -> str:
    return await expand(parse_macro_string(text, explain=explain), ctx or context())


# RFC 7208 §7.4: "The <sender> is strong-bad@email.example.com. The IPv4 SMTP client IP
# is 192.0.2.3. The IPv6 SMTP client IP is 2001:db8::cb01. The PTR domain name of the
# client IP is mx.example.org."
RFC_EXAMPLES = [
    ("%{s}", "strong-bad@email.example.com"),
    ("%{o}", "email.example.com"),
    ("%{d}", "email.example.com"),
    ("%{d4}", "email.example.com"),
    ("%{d3}", "email.example.com"),
    ("%{d2}", "example.com"),
    ("%{d1}", "com"),
    ("%{dr}", "com.example.email"),
    ("%{d2r}", "example.email"),
    ("%{l}", "strong-bad"),
    ("%{l-}", "strong.bad"),
    ("%{lr}", "strong-bad"),
    ("%{lr-}", "bad.strong"),
    ("%{l1r-}", "strong"),
    ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
    ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
    ("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
    ("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"),
    ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
]


@pytest.mark.parametrize(("macro", "expected"), RFC_EXAMPLES)
async def test_rfc7208_section_7_4_examples(macro: str, expected: str) -> None:
    assert await run(macro) == expected


async def test_rfc7208_section_7_4_ipv6_example() -> None:
    ctx = context(ip="2001:db8::cb01")
    assert await run("%{ir}.%{v}._spf.%{d2}", ctx) == (
        "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com")


async def test_p_macro_uses_the_callback() -> None:
    async def validated() -> str:
        return "mx.example.org"

    assert await run("%{p}", context(validated_name=validated)) == "mx.example.org"
    assert await run("%{p}") == "unknown"


async def test_upper_case_letters_are_url_escaped_with_upper_case_hex() -> None:
    ctx = context(sender="~jack&jill=up-a_b3.c@e8.example.com")
    # The openspf suite's upper-macro example (RFC 3986 unreserved characters stay).
    assert await run("%{L}", ctx) == "~jack%26jill%3Dup-a_b3.c"
    assert await run("%{l}", ctx) == "~jack&jill=up-a_b3.c"
    utf8 = context(sender="jürgen@example.org")
    assert await run("%{L}", utf8) == "j%C3%BCrgen"
    assert await run("%{S}", context()) == "strong-bad%40email.example.com"


async def test_escapes_and_literals() -> None:
    assert await run("a%%b%_c%-d") == "a%b c%20d"
    assert await run("100%% sure", explain=True) == "100% sure"
    with pytest.raises(MacroSyntaxError):  # SP is allowed only in explain-strings
        parse_macro_string("100%% sure")
    assert await run("Mail from %{i} refused", explain=True) == "Mail from 192.0.2.3 refused"


async def test_multiple_delimiters_and_large_digits() -> None:
    ctx = context(sender="foo-bar+zip+quux@e12.example.com")
    assert await run("%{l2r+-}", ctx) == "bar.foo"
    assert await run("%{l+}", ctx) == "foo-bar.zip.quux"
    assert await run("%{d100}", ctx) == "e12.example.com"
    # "no special treatment is given to leading, trailing, or consecutive delimiters"
    odd = context(sender="x..y@example.org")
    assert await run("%{lr}", odd) == "y..x"


async def test_exp_only_letters() -> None:
    ctx = context(ip="2001:db8::cb01", receiver="mx.receiver.example", timestamp=1234567890)
    assert await run("%{c} %{r} %{t}", ctx, explain=True) == (
        "2001:db8::cb01 mx.receiver.example 1234567890")
    for letter in "crt":
        with pytest.raises(MacroSyntaxError):
            parse_macro_string(f"%{{{letter}}}.example.com")


@pytest.mark.parametrize("bad", [
    "%", "abc%", "%x", "%(ir).sbl.example.org", "%{", "%{d", "%{x}", "%{}", "%{d0}",
    "%{l+x}", "%{dr2}", "a b", "tab\there", "non-ascii-\u00e9",
])
def test_invalid_macros_are_syntax_errors(bad: str) -> None:
    with pytest.raises(MacroSyntaxError):
        parse_macro_string(bad)


@pytest.mark.parametrize(("spec", "valid"), [
    ("example.com", True), ("example.com.", True), ("%{d}", True), ("foo.%{d2}", True),
    ("%{l}.x%%", True),  # "%%" is a macro-expand, so it may end a domain-spec
    ("com", False), ("com.", False), ("example.123", False), ("example.1-2", True),
    ("example.-com", False), ("example.com-", False), ("%{d}com", False),
    ("example.com/24", False), ("", False), ("foo..com.", True),
])
def test_domain_end(spec: str, valid: bool) -> None:
    if valid:
        parse_domain_spec(spec)
    else:
        with pytest.raises(MacroSyntaxError):
            parse_domain_spec(spec)


# --- pyspf (Debian python3-spf) as an oracle for expansion --------------------------

ORACLE_MACROS = [
    "%{s}", "%{l}", "%{o}", "%{d}", "%{i}", "%{v}", "%{h}", "%{ir}", "%{d2}", "%{l1r-}",
    "%{lr-+}", "%{S}", "%{L}", "%{O2r}", "%{i2r}.%{v}.arpa", "%{l=}", "%{l/}", "%{l,}",
    "%{l_}", "%{h1}", "%%%_%-", "x-%{d3r}.y", "%{L+=}",
]
ORACLE_INPUTS = [
    ("192.0.2.3", "strong-bad@email.example.com", "mx.example.org"),
    ("198.51.100.17", "a/b=c,d_e+f-g.h@sub.example.net", "helo.example"),
    ("203.0.113.9", "~jack&jill=up-a_b3.c@e8.example.com", "x.y.z.example"),
]

_PYSPF = """
import json, sys, spf
cases = json.load(sys.stdin)
out = []
for ip, sender, helo, macro in cases:
    q = spf.query(i=ip, s=sender, h=helo)
    out.append(q.expand(macro, stripdot=False))
print(json.dumps(out))
"""


@pytest.mark.integration
async def test_expansion_agrees_with_pyspf() -> None:
    cases = [(ip, s, h, m) for ip, s, h in ORACLE_INPUTS for m in ORACLE_MACROS]
    proc = subprocess.run(["/usr/bin/python3", "-c", _PYSPF], input=json.dumps(cases),
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, f"pyspf (python3-spf) oracle failed: {proc.stderr}"
    theirs = json.loads(proc.stdout)
    for (ip, sender, helo, macro), want in zip(cases, theirs, strict=True):
        ctx = context(ip=ip, sender=sender, helo=helo)
        got = await run(macro, ctx)
        assert got == want, f"{macro} for {sender} from {ip}: {got!r} != pyspf {want!r}"
