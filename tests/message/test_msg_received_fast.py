"""The fast paths of Received and Authentication-Results give what the general code gives."""

from __future__ import annotations

import datetime as dt
import email.utils
import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from kittiwake.message import authres, params, received
from kittiwake.message.received import (
    WithProtocol,
    address_literal,
    format_date,
    received_header,
    with_protocol,
)


@settings(max_examples=2000, deadline=None)
@given(st.datetimes(timezones=st.just(dt.UTC)))
def test_format_date_utc_equals_email_utils(date: dt.datetime) -> None:
    assert format_date(date) == email.utils.format_datetime(date)


@given(st.datetimes(timezones=st.sampled_from([
    dt.timezone(dt.timedelta(hours=2)), dt.timezone(dt.timedelta(0), "Z"),
    dt.timezone(dt.timedelta(hours=-5, minutes=-30))])))
def test_format_date_other_zones_equals_email_utils(date: dt.datetime) -> None:
    assert format_date(date) == email.utils.format_datetime(date)


def test_received_date_is_rfc5322() -> None:
    date = dt.datetime(2026, 1, 5, 3, 4, 5, 999, tzinfo=dt.UTC)
    out = received_header(by="mx.example", date=date)
    assert out.endswith(";\r\n\tMon, 05 Jan 2026 03:04:05 +0000\r\n")
    naive = received_header(by="mx.example", date=date.replace(tzinfo=None))
    assert naive == out


def test_with_protocol_is_the_enum_member() -> None:
    for esmtp in (False, True):
        for tls in (False, True):
            for auth in (False, True):
                for utf8 in (False, True):
                    for lmtp in (False, True):
                        p = with_protocol(esmtp=esmtp, tls=tls, authenticated=auth,
                                          smtputf8=utf8, lmtp=lmtp)
                        assert p is WithProtocol(str(p))
    assert with_protocol(tls=True, authenticated=True) is WithProtocol.ESMTPSA


@given(st.ip_addresses())
def test_address_literal_cached_is_the_same(ip: ipaddress.IPv4Address | ipaddress.IPv6Address
                                            ) -> None:
    first = address_literal(str(ip))
    assert address_literal(str(ip)) == first == address_literal(ip)
    assert address_literal.__wrapped__(str(ip)) == first  # type: ignore[attr-defined]


@given(st.text(max_size=40))
def test_cleaners_cached_equal_uncached(text: str) -> None:
    assert received._clean_domain(text) == (received._DOMAINISH.sub("_", text)[:255] or "unknown")
    assert received._clean_atom(text) == received._ATOMISH.sub("_", text)
    assert authres._keyword(text) == authres._keyword.__wrapped__(text)  # type: ignore[attr-defined]
    assert authres._method(text) == authres._method.__wrapped__(text)  # type: ignore[attr-defined]
    assert authres._pvalue(text) == authres._pvalue.__wrapped__(text)  # type: ignore[attr-defined]
    assert authres._comment(text) == (  # the cache is the shared comment_text's
        "(" + params.comment_text.__wrapped__(text) + ")")  # type: ignore[attr-defined]


def test_id_and_protocol_are_atoms() -> None:
    out = received_header(by="mx", date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                          protocol="ES MTP", id="ab c\u00e9")
    assert " with ES_MTP " in out and " id ab_c\u00e9;" in out
