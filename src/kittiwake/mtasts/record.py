"""The ``_mta-sts`` TXT record of a recipient domain (RFC 8461 §3.1).

``v=STSv1; id=20160831085700Z;`` announces that the domain has an MTA-STS
policy and names its version. Records that do not start with ``v=STSv1`` are
discarded; if not exactly one remains, the domain has no policy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kittiwake.dns import DNSTemporaryError, ExtendedError, InvalidName, Resolver, Status

_VERSION = re.compile(r"v=STSv1[ \t]*(;|$)")
# RFC 8461 §3.1: sts-id = %s"id=" 1*32(ALPHA / DIGIT)
_ID = re.compile(r"[A-Za-z0-9]{1,32}")
# RFC 8461 §3.1: sts-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
_EXT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}")
# sts-ext-value = 1*(%x21-3A / %x3C / %x3E-7E): printable, no ";" or "="
_EXT_VALUE = re.compile(r"[\x21-\x3a\x3c\x3e-\x7e]+")


class RecordError(ValueError):
    """The TXT record does not follow RFC 8461 §3.1."""


@dataclass(frozen=True)
class STSRecord:
    """A parsed ``_mta-sts`` record: the policy id and any extension fields."""

    id: str
    extensions: tuple[tuple[str, str], ...] = ()
    text: str = ""

    def __str__(self) -> str:
        return self.text or f"v=STSv1; id={self.id}"


def parse_record(text: str) -> STSRecord:
    """Parse one TXT record; raises :class:`RecordError` with the reason."""
    # RFC 8461 §3.1: sts-text-record = sts-version 1*(sts-field-delim sts-field)
    # [sts-field-delim]; sts-field-delim = *WSP ";" *WSP
    fields = [f.strip(" \t") for f in text.split(";")]
    if fields and fields[-1] == "":
        fields.pop()
    if not fields or fields[0] != "v=STSv1":
        raise RecordError("record does not start with v=STSv1")
    ident: str | None = None
    extensions: list[tuple[str, str]] = []
    for item in fields[1:]:
        name, eq, value = item.partition("=")
        if not eq:
            raise RecordError(f"field {item!r} is not name=value")
        if name == "id":
            if ident is not None:
                raise RecordError("more than one id field")
            if not _ID.fullmatch(value):
                raise RecordError(f"id {value!r} is not 1-32 letters and digits")
            ident = value
        elif _EXT_NAME.fullmatch(name) and _EXT_VALUE.fullmatch(value):
            extensions.append((name, value))  # RFC 8461 §3.1: extensions are ignored
        else:
            raise RecordError(f"field {item!r} is not valid")
    if ident is None:
        raise RecordError("record has no id field")
    return STSRecord(ident, tuple(extensions), text)


def select_record(texts: Iterable[str]) -> tuple[STSRecord | None, str]:
    """The one STS record among a name's TXT records, or None and why (RFC 8461 §3.1)."""
    candidates = [t for t in texts if _VERSION.match(t)]
    if not candidates:
        return None, "no v=STSv1 record"
    if len(candidates) > 1:
        return None, f"{len(candidates)} v=STSv1 records; exactly one is allowed"
    try:
        return parse_record(candidates[0]), ""
    except RecordError as exc:
        return None, f"invalid record {candidates[0]!r}: {exc}"


@dataclass(frozen=True)
class RecordLookup:
    """The result of :func:`lookup_record`.

    ``record`` is None when the domain has no (valid) record; ``temporary``
    says the lookup failed and the answer is unknown.
    """

    domain: str
    record: STSRecord | None
    authentic: bool
    reason: str = ""
    temporary: bool = False
    extended_errors: tuple[ExtendedError, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "record": str(self.record) if self.record else None,
            "id": self.record.id if self.record else None,
            "authentic": self.authentic,
            "temporary": self.temporary,
            "reason": self.reason,
        }


async def lookup_record(resolver: Resolver, domain: str) -> RecordLookup:
    """Look up ``_mta-sts.DOMAIN`` (CNAMEs are followed, RFC 8461 §3.1). Never raises."""
    name = f"_mta-sts.{domain.rstrip('.')}"
    try:
        answer = await resolver.txt(name)
    except InvalidName as exc:
        return RecordLookup(domain, None, False, f"invalid domain: {exc}")
    except DNSTemporaryError as exc:
        return RecordLookup(domain, None, False, f"TXT lookup of {name} failed: {exc.reason}",
                            temporary=True, extended_errors=exc.extended_errors)
    if answer.status is not Status.FOUND:
        what = "no such name" if answer.status is Status.NXDOMAIN else "no TXT records"
        return RecordLookup(domain, None, answer.authentic, f"{name}: {what}",
                            extended_errors=answer.extended_errors)
    record, why = select_record(answer.records)
    return RecordLookup(domain, record, answer.authentic, f"{name}: {why}" if why else "",
                        extended_errors=answer.extended_errors)
