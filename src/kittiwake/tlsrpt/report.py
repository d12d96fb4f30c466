"""The TLSRPT aggregate report (RFC 8460 §4): model, JSON composer, hostile-safe parser.

A report (§4.4) says, for one reporting organization and one date range, how
many TLS sessions to each policy domain succeeded and which failed why. It is
JSON (§4.4), sent gzipped as ``application/tlsrpt+gzip`` or plain as
``application/tlsrpt+json`` (§5.2 compression, §5.3 mail, §5.4 HTTPS; media types
registered in §6).

:func:`parse_report` takes bytes from the network: it refuses oversized input,
stops gzip decompression at a limit (bombs), and checks every field's type; a
:class:`ReportError` subclass says what was wrong. :func:`report_from_message`
finds the report in a mail message (§5.3: multipart/report with
report-type=tlsrpt, or any part of one of the two media types).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import zlib
from dataclasses import dataclass, field

from kittiwake.tlsrpt.results import PolicyType

JSON_TYPE = "application/tlsrpt+json"  # RFC 8460 §6 (IANA media types)
GZIP_TYPE = "application/tlsrpt+gzip"  # RFC 8460 §6 (IANA media types)

MAX_COMPRESSED = 10 * 1024 * 1024  # bytes of a gzip attachment we look at
MAX_JSON = 20 * 1024 * 1024  # bytes of JSON after decompression (bomb limit)
MAX_POLICIES = 10_000
MAX_FAILURE_DETAILS = 100_000


class ReportError(ValueError):
    """The input is not a usable TLSRPT report (the message says why)."""

    kind = "malformed"


class ReportTooLarge(ReportError):
    """The report (or its decompressed JSON) exceeds the size limit: likely hostile."""

    kind = "too-large"


class BadCompression(ReportError):
    """The gzip data is corrupt or truncated."""

    kind = "bad-gzip"


class BadJSON(ReportError):
    """The data is not JSON (or not UTF-8)."""

    kind = "bad-json"


class BadField(ReportError):
    """A field is missing or has the wrong type (RFC 8460 §4.4)."""

    kind = "bad-field"


class NoReport(ReportError):
    """The message carries no TLSRPT report part (RFC 8460 §5.3)."""

    kind = "no-report"


@dataclass(frozen=True)
class FailureDetails:
    """One ``failure-details`` entry (RFC 8460 §4.4, result types of §4.3)."""

    result_type: str
    failed_session_count: int
    sending_mta_ip: str = ""
    receiving_mx_hostname: str = ""
    receiving_mx_helo: str = ""
    receiving_ip: str = ""
    additional_information: str = ""
    failure_reason_code: str = ""

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"result-type": self.result_type}
        for key, value in (("sending-mta-ip", self.sending_mta_ip),
                           ("receiving-mx-hostname", self.receiving_mx_hostname),
                           ("receiving-mx-helo", self.receiving_mx_helo),
                           ("receiving-ip", self.receiving_ip)):
            if value:
                out[key] = value
        out["failed-session-count"] = self.failed_session_count
        if self.additional_information:
            out["additional-information"] = self.additional_information
        if self.failure_reason_code:
            out["failure-reason-code"] = self.failure_reason_code
        return out


@dataclass(frozen=True)
class PolicyResult:
    """One entry of ``policies``: the policy applied and its session counts (§4.4)."""

    policy_type: str  # "sts", "tlsa" or "no-policy-found" (§4.3)
    policy_domain: str
    total_successful: int
    total_failure: int
    policy_string: tuple[str, ...] = ()
    mx_host: tuple[str, ...] = ()
    failure_details: tuple[FailureDetails, ...] = ()

    def to_json(self) -> dict[str, object]:
        policy: dict[str, object] = {"policy-type": self.policy_type}
        if self.policy_string:
            policy["policy-string"] = list(self.policy_string)
        policy["policy-domain"] = self.policy_domain
        if self.mx_host:
            policy["mx-host"] = list(self.mx_host)
        out: dict[str, object] = {
            "policy": policy,
            "summary": {"total-successful-session-count": self.total_successful,
                        "total-failure-session-count": self.total_failure}}
        if self.failure_details:
            out["failure-details"] = [d.to_json() for d in self.failure_details]
        return out


@dataclass(frozen=True)
class Report:
    """An RFC 8460 §4.4 aggregate report."""

    organization_name: str
    start: dt.datetime  # date-range start-datetime, UTC
    end: dt.datetime  # date-range end-datetime, UTC
    contact_info: str
    report_id: str
    policies: tuple[PolicyResult, ...] = field(default_factory=tuple)

    @property
    def total_successful(self) -> int:
        return sum(p.total_successful for p in self.policies)

    @property
    def total_failure(self) -> int:
        return sum(p.total_failure for p in self.policies)

    def to_json(self) -> dict[str, object]:
        return {"organization-name": self.organization_name,
                "date-range": {"start-datetime": _datetime_text(self.start),
                               "end-datetime": _datetime_text(self.end)},
                "contact-info": self.contact_info, "report-id": self.report_id,
                "policies": [p.to_json() for p in self.policies]}


def _datetime_text(value: dt.datetime) -> str:
    """RFC 3339 date-time in UTC with Z (RFC 8460 §4.4)."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def compose_json(report: Report) -> bytes:
    """The report as UTF-8 JSON (RFC 8460 §4.4)."""
    return json.dumps(report.to_json(), ensure_ascii=False, indent=1).encode()


def compose_gzip(report: Report) -> bytes:
    """The report gzipped, for ``application/tlsrpt+gzip`` (RFC 8460 §5.2).
    ``mtime=0`` keeps the output a function of the report alone."""
    return gzip.compress(compose_json(report), mtime=0)


# --- parsing --------------------------------------------------------------------------


def gunzip_limited(data: bytes, limit: int = MAX_JSON) -> bytes:
    """Decompress gzip ``data``, refusing output beyond ``limit`` bytes (gzip bombs)."""
    if len(data) > MAX_COMPRESSED:
        raise ReportTooLarge(f"compressed report is {len(data)} bytes; the limit is"
                             f" {MAX_COMPRESSED}")
    decomp = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = decomp.decompress(data, limit + 1)
    except zlib.error as exc:
        raise BadCompression(f"gzip data is corrupt: {exc}") from None
    if len(out) > limit or decomp.unconsumed_tail:
        raise ReportTooLarge(f"report decompresses to more than {limit} bytes")
    if not decomp.eof:
        raise BadCompression("gzip data is truncated")
    return out


def parse_report(data: bytes, *, gzipped: bool | None = None, limit: int = MAX_JSON) -> Report:
    """Parse a report from JSON or gzipped JSON (``gzipped=None``: by the magic bytes).

    Raises a :class:`ReportError` subclass that says what is wrong."""
    if gzipped is None:
        gzipped = data[:2] == b"\x1f\x8b"
    if gzipped:
        data = gunzip_limited(data, limit)
    elif len(data) > limit:
        raise ReportTooLarge(f"report is {len(data)} bytes; the limit is {limit}")
    try:
        value = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise BadJSON("report is not UTF-8 (RFC 8460 §4.4 uses I-JSON)") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise BadJSON(f"report is not JSON: {exc}") from None
    return report_from_json(value)


def report_from_json(value: object) -> Report:
    """The report of a decoded JSON value, checking each field (RFC 8460 §4.4)."""
    top = _object(value, "report")
    date_range = _object(top.get("date-range"), "date-range")
    policies = _list(top.get("policies"), "policies", MAX_POLICIES)
    return Report(
        organization_name=_string(top.get("organization-name"), "organization-name"),
        start=_datetime(date_range.get("start-datetime"), "date-range.start-datetime"),
        end=_datetime(date_range.get("end-datetime"), "date-range.end-datetime"),
        contact_info=_string(top.get("contact-info", ""), "contact-info", required=False),
        report_id=_string(top.get("report-id"), "report-id"),
        policies=tuple(_policy(p, f"policies[{i}]") for i, p in enumerate(policies)))


def _policy(value: object, where: str) -> PolicyResult:
    entry = _object(value, where)
    policy = _object(entry.get("policy"), f"{where}.policy")
    summary = _object(entry.get("summary"), f"{where}.summary")
    details = _list(entry.get("failure-details", []), f"{where}.failure-details",
                    MAX_FAILURE_DETAILS)
    policy_type = _string(policy.get("policy-type"), f"{where}.policy.policy-type")
    if policy_type not in {t.value for t in PolicyType}:
        raise BadField(f"{where}.policy.policy-type: {policy_type!r} is not one of"
                       " sts, tlsa, no-policy-found (RFC 8460 §4.3)")
    return PolicyResult(
        policy_type=policy_type,
        policy_domain=_string(policy.get("policy-domain"), f"{where}.policy.policy-domain"),
        total_successful=_count(summary.get("total-successful-session-count"),
                                f"{where}.summary.total-successful-session-count"),
        total_failure=_count(summary.get("total-failure-session-count"),
                             f"{where}.summary.total-failure-session-count"),
        policy_string=_strings(policy.get("policy-string", []),
                               f"{where}.policy.policy-string"),
        mx_host=_strings(policy.get("mx-host", []), f"{where}.policy.mx-host"),
        failure_details=tuple(_failure(d, f"{where}.failure-details[{i}]")
                              for i, d in enumerate(details)))


def _failure(value: object, where: str) -> FailureDetails:
    entry = _object(value, where)

    def text(key: str) -> str:
        return _string(entry.get(key, ""), f"{where}.{key}", required=False)

    return FailureDetails(
        result_type=_string(entry.get("result-type"), f"{where}.result-type"),
        failed_session_count=_count(entry.get("failed-session-count"),
                                    f"{where}.failed-session-count"),
        sending_mta_ip=text("sending-mta-ip"), receiving_mx_hostname=text("receiving-mx-hostname"),
        receiving_mx_helo=text("receiving-mx-helo"), receiving_ip=text("receiving-ip"),
        additional_information=text("additional-information"),
        failure_reason_code=text("failure-reason-code"))


def _object(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise BadField(f"{where}: expected a JSON object, got {_kind(value)}")
    return value


def _list(value: object, where: str, limit: int) -> list[object]:
    if not isinstance(value, list):
        raise BadField(f"{where}: expected a JSON array, got {_kind(value)}")
    if len(value) > limit:
        raise ReportTooLarge(f"{where}: {len(value)} entries; the limit is {limit}")
    return value


def _string(value: object, where: str, required: bool = True) -> str:
    if value is None and required:
        raise BadField(f"{where}: missing (RFC 8460 §4.4)")
    if not isinstance(value, str):
        raise BadField(f"{where}: expected a string, got {_kind(value)}")
    if len(value) > 65536:
        raise ReportTooLarge(f"{where}: string of {len(value)} characters")
    return value


def _strings(value: object, where: str) -> tuple[str, ...]:
    # Some generators send a single string where the RFC has an array; accept it.
    if isinstance(value, str):
        return (value,)
    items = _list(value, where, MAX_POLICIES)
    return tuple(_string(v, f"{where}[{i}]") for i, v in enumerate(items))


def _count(value: object, where: str) -> int:
    if value is None:
        raise BadField(f"{where}: missing (RFC 8460 §4.4)")
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadField(f"{where}: expected a whole number, got {_kind(value)}")
    if value < 0 or value > 2**53:
        raise BadField(f"{where}: {value} is out of range")
    return value


def _datetime(value: object, where: str) -> dt.datetime:
    text = _string(value, where)
    try:
        parsed = dt.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise BadField(f"{where}: {text!r} is not an RFC 3339 date-time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)
