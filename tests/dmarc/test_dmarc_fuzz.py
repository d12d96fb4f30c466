"""Fuzzing: bad records and headers from the network never raise out of the API."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from kittiwake.dmarc import (
    Disposition,
    Policy,
    RecordError,
    Result,
    Status,
    from_domain,
    parse_record,
    verify,
)
from kittiwake.dns import MockResolver

TAGS = ["v", "p", "sp", "pct", "adkim", "aspf", "rua", "ruf", "fo", "rf", "ri", "np", "V", "P"]
VALUES = ["DMARC1", "reject", "none", "quarantine", "r", "s", "0", "100", "101", "1:d",
          "mailto:a@example.com!10m", "mailto:x@example.com,https://r.example", "afrf", "",
          "!", "=", "mailto:", "99999999999999999999999"]

tag_lists = st.lists(
    st.tuples(st.sampled_from(TAGS) | st.text(max_size=5),
              st.sampled_from(VALUES) | st.text(max_size=12),
              st.sampled_from(["=", " = ", "", "=="])),
    max_size=8,
).map(lambda items: "; ".join(f"{k}{eq}{v}" for k, v, eq in items))
records = st.one_of(
    st.text(max_size=200),
    tag_lists,
    tag_lists.map(lambda t: "v=DMARC1; " + t),
    tag_lists.map(lambda t: "v=DMARC1; p=reject; " + t),
)


@settings(max_examples=400, deadline=None)
@given(records)
def test_parse_record_never_raises_unexpectedly(text: str) -> None:
    try:
        policy = parse_record(text)
    except RecordError:
        return
    assert isinstance(policy, Policy)
    assert isinstance(policy.policy, Disposition)
    assert 0 <= policy.percentage <= 100
    # The canonical form parses back to the same policy.
    again = parse_record(policy.to_text())
    assert again.policy is policy.policy and again.percentage == policy.percentage
    assert again.aggregate_uris == policy.aggregate_uris


@dataclass
class Auth:
    status: str
    domain: str


@settings(max_examples=100, deadline=None)
@given(records, st.text(max_size=40), st.sampled_from(["pass", "fail", "temperror", "x"]))
def test_verify_never_raises(record: str, domain: str, status: str) -> None:
    r = MockResolver()
    r.add("TXT", "_dmarc.example.com", record)

    async def all_three() -> list[Result]:
        return [await verify(r, from_dom, Auth(status, domain), [Auth(status, domain)],
                             rand=lambda: 0.5)
                for from_dom in ["example.com", "a.example.com", domain]]

    for res in asyncio.run(all_three()):
        assert isinstance(res.status, Status)
        assert not (res.reject and res.quarantine)


header_text = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200),
    st.lists(st.sampled_from([
        "From:", "From: ", "from :", "<", ">", "@", ",", ":", ";", '"', "(", ")", "\\", "[", "]",
        "a", "example.com", ".", " ", "\r\n", "\r\n ", "\n", "\t", "ü", "食狮", "xn--", "=?utf-8?",
    ]), max_size=40).map("".join),
)


@settings(max_examples=500, deadline=None)
@given(header_text)
def test_from_domain_never_raises(headers: bytes | str) -> None:
    result = from_domain(headers)
    assert (result.domain is None) != (result.problem is None)
    if result.domain is not None:
        assert result.domain == result.domain.lower()
        assert result.domain.isascii()
