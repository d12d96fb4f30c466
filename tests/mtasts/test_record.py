"""``_mta-sts`` TXT records (RFC 8461 §3.1)."""

from __future__ import annotations

import pytest

from kittiwake.dns import MockResolver
from kittiwake.mtasts import RecordError, lookup_record, parse_record, select_record


@pytest.mark.parametrize(("text", "ident"), [
    ("v=STSv1; id=20160831085700Z;", "20160831085700Z"),
    ("v=STSv1;id=abc", "abc"),
    ("v=STSv1 ;  id=abc ; ", "abc"),
    ("v=STSv1; id=abc; ext_1=some-value; x.y=1", "abc"),
])
def test_valid_records(text: str, ident: str) -> None:
    assert parse_record(text).id == ident


@pytest.mark.parametrize(("text", "why"), [
    ("v=STSv2; id=abc", "does not start with v=STSv1"),
    ("id=abc; v=STSv1", "does not start with v=STSv1"),
    ("v=STSv1;", "no id"),
    ("v=STSv1; id=", "not 1-32 letters"),
    ("v=STSv1; id=" + "a" * 33, "not 1-32 letters"),
    ("v=STSv1; id=a-b", "not 1-32 letters"),
    ("v=STSv1; id=a; id=b", "more than one id"),
    ("v=STSv1; id=a; junk", "not name=value"),
    ("v=STSv1; id=a; bad name=x", "not valid"),
])
def test_invalid_records(text: str, why: str) -> None:
    with pytest.raises(RecordError, match=why):
        parse_record(text)


def test_select_discards_other_txt_and_refuses_several() -> None:
    record, why = select_record(["some other txt", "v=STSv1; id=one"])
    assert record is not None and record.id == "one" and why == ""
    record, why = select_record(["v=STSv1; id=one", "v=STSv1; id=two"])
    assert record is None and "2 v=STSv1 records" in why
    record, why = select_record(["v=STSv10; id=x"])
    assert record is None and why == "no v=STSv1 record"


async def test_lookup_record(mock_resolver: MockResolver) -> None:
    mock_resolver.add("TXT", "_mta-sts.example.org", "v=STSv1; id=1", authentic=True)
    mock_resolver.add("TXT", "_mta-sts.example.net", "v=STSv1; id=1", "v=STSv1; id=2")
    mock_resolver.fail("TXT", "_mta-sts.example.com", "servfail")
    found = await lookup_record(mock_resolver, "example.org")
    assert found.record is not None and found.record.id == "1" and found.authentic
    several = await lookup_record(mock_resolver, "example.net")
    assert several.record is None and not several.authentic and "exactly one" in several.reason
    failed = await lookup_record(mock_resolver, "example.com")
    assert failed.record is None and failed.temporary and "SERVFAIL" in failed.reason
    missing = await lookup_record(mock_resolver, "example.info")
    assert missing.record is None and not missing.temporary and "no such name" in missing.reason


async def test_lookup_follows_cname(mock_resolver: MockResolver) -> None:
    mock_resolver.cname("_mta-sts.example.org", "_mta-sts.hoster.example")
    mock_resolver.add("TXT", "_mta-sts.hoster.example", "v=STSv1; id=h1")
    found = await lookup_record(mock_resolver, "example.org")
    assert found.record is not None and found.record.id == "h1"
