"""Address lists (RFC 5322 §3.4, §4.4), with the RFC's Appendix A examples."""

from __future__ import annotations

import email.header
import email.utils

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kittiwake.message import Address, Group, flatten, parse_address_list, parse_addresses


def test_appendix_a_1_2_different_types_of_mailboxes() -> None:
    got = parse_address_list(
        'Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>, '
        '<boss@nil.test>, "Giant; \\"Big\\" Box" <sysservices@example.net>'
    )
    assert got == [
        Address("Mary Smith", "mary", "x.test"),
        Address("", "jdoe", "example.org"),
        Address("Who?", "one", "y.test"),
        Address("", "boss", "nil.test"),
        Address('Giant; "Big" Box', "sysservices", "example.net"),
    ]


def test_appendix_a_1_3_group_addresses() -> None:
    got = parse_address_list(
        "A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;, Undisclosed recipients:;"
    )
    assert got == [
        Group("A Group", (
            Address("Ed Jones", "c", "a.test"),
            Address("", "joe", "where.test"),
            Address("John", "jdoe", "one.test"),
        )),
        Group("Undisclosed recipients", ()),
    ]
    assert [a.addr for a in flatten(got)] == ["c@a.test", "joe@where.test", "jdoe@one.test"]


def test_appendix_a_5_white_space_comments_and_other_oddities() -> None:
    assert parse_address_list(
        "Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>"
    ) == [Address("Pete", "pete", "silly.test")]
    got = parse_address_list(
        "A Group(Some people)\r\n     :Chris Jones <c@(Chris's host.)public.example>,\r\n"
        "         joe@example.org,\r\n"
        "  John <jdoe@one.test> (my dear friend); (the end of the group)"
    )
    assert got == [Group("A Group", (
        Address("Chris Jones", "c", "public.example"),
        Address("", "joe", "example.org"),
        Address("John", "jdoe", "one.test"),
    ))]


def test_appendix_a_6_obsolete_forms() -> None:
    assert parse_address_list("Joe Q. Public <john.q.public@example.com>") == [
        Address("Joe Q. Public", "john.q.public", "example.com")
    ]
    assert parse_address_list(
        "Mary Smith <@node.test:mary@example.net>, , jdoe@test  . example"
    ) == [Address("Mary Smith", "mary", "example.net"), Address("", "jdoe", "test.example")]


def test_encoded_and_utf8_names_and_idna() -> None:
    a, b = parse_addresses(
        "=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>, Jürgen <jü@bücher.example>"
    )
    assert a == Address("Keld Jørn Simonsen", "keld", "dkuug.dk")
    assert b.name == "Jürgen" and b.localpart == "jü"
    assert b.ascii_domain == "xn--bcher-kva.example"
    assert Address("", "x", "xn--bcher-kva.example").unicode_domain == "bücher.example"
    assert Address("", "x", "bad..domain").ascii_domain == "bad..domain"


def test_comment_as_name_and_quoted_local_part() -> None:
    assert parse_addresses("foo@bar.example (Foo Bar)") == [
        Address("Foo Bar", "foo", "bar.example")
    ]
    assert parse_addresses('"a b"@example.com') == [Address("", '"a b"', "example.com")]
    assert parse_addresses('"ab"@example.com') == [Address("", "ab", "example.com")]


def test_without_domain() -> None:
    assert parse_addresses("user") == [Address("", "user", "")]


def test_str_quotes_when_needed() -> None:
    assert str(Address("Giant; Box", "s", "e.net")) == '"Giant; Box" <s@e.net>'
    assert str(Address("Mary Smith", "m", "x.test")) == "Mary Smith <m@x.test>"
    assert str(Group("G", (Address("", "a", "b.c"),))) == "G: <a@b.c>;"


@pytest.mark.parametrize(
    "value",
    [
        "Mary Smith <mary@x.test>, jdoe@example.org",
        '"Smith, John" <js@example.com>, "O\'Brien" <ob@example.com>',
        "a@b.example, c@d.example, Ed <e@f.example>",
        "=?utf-8?q?J=C3=B6rg?= <j@example.de>",
    ],
)
def test_agrees_with_stdlib_on_well_formed_lists(value: str) -> None:
    ours = [(a.name, a.addr) for a in parse_addresses(value)]
    theirs = [
        (str(email.header.make_header(email.header.decode_header(n))), addr)
        for n, addr in email.utils.getaddresses([value])
    ]
    assert ours == theirs


_atom = st.from_regex(r"[A-Za-z0-9._%+-]{1,10}", fullmatch=True).filter(
    lambda s: not s.startswith(".") and not s.endswith(".") and ".." not in s
)
_name = st.from_regex(r"[A-Za-z][A-Za-z ]{0,15}", fullmatch=True).map(str.strip)


@given(st.lists(st.tuples(_name, _atom, _atom), min_size=1, max_size=5))
def test_formatted_addresses_parse_back(items: list[tuple[str, str, str]]) -> None:
    addrs = [Address(n, lp, f"{d}.example") for n, lp, d in items]
    assert parse_addresses(", ".join(str(a) for a in addrs)) == addrs


@given(st.text())
def test_never_raises(value: str) -> None:
    for a in parse_addresses(value):
        assert isinstance(a, Address)
