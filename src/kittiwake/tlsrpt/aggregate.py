"""Aggregating recorded TLS results into reports (RFC 8460 §4).

One report per policy domain and UTC day (§4.1: the reporting period is a
day, 00:00 to 24:00 UTC). Within a report, one ``policies`` entry per
policy type that applied (sts, tlsa, no-policy-found, §4.3), with the MX
hosts seen, the session counts and the failures grouped by result type,
MX host and IP (§4.4 failure-details).

For DANE the policy is the MX host's (RFC 8460 §3: TLSA records live at the
MX host name), so :func:`host_reports` also makes one report per MX host
with DANE results, to that host's own TLSRPT record.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from kittiwake.tlsrpt.report import FailureDetails, PolicyResult, Report
from kittiwake.tlsrpt.results import PolicyType, TLSResult


def day_range(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """00:00:00 UTC of ``day`` and of the next day (§4.1)."""
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def report_id(day: dt.date, policy_domain: str, submitter: str) -> str:
    """A report-id that is the same every time the day's report is made (so a retry
    after a restart does not look like a second report)."""
    return f"{day.isoformat()}.{policy_domain}@{submitter}"


def _policy(policy_domain: str, policy_type: str, results: list[TLSResult]) -> PolicyResult:
    hosts: list[str] = []
    successes = 0
    failures: dict[tuple[str, str, str], list[TLSResult]] = {}
    for r in results:
        if r.mx_host and r.mx_host not in hosts:
            hosts.append(r.mx_host)
        if r.success:
            successes += 1
        else:
            failures.setdefault((r.result.value, r.mx_host, r.ip), []).append(r)
    details = tuple(
        FailureDetails(result_type=rtype, failed_session_count=len(group),
                       receiving_mx_hostname=host, receiving_ip=ip,
                       additional_information=group[0].reason[:1000])
        for (rtype, host, ip), group in sorted(failures.items()))
    return PolicyResult(policy_type=policy_type, policy_domain=policy_domain,
                        total_successful=successes,
                        total_failure=sum(d.failed_session_count for d in details),
                        mx_host=tuple(sorted(hosts)), failure_details=details)


def build_report(policy_domain: str, results: Iterable[TLSResult], *, day: dt.date,
                 organization: str, contact: str, submitter: str,
                 policy_types: Iterable[PolicyType] | None = None) -> Report:
    """The report about ``policy_domain`` for ``day`` from its results (§4.4)."""
    wanted = set(policy_types) if policy_types is not None else set(PolicyType)
    by_type: dict[PolicyType, list[TLSResult]] = {}
    for r in results:
        if r.policy_type in wanted:
            by_type.setdefault(r.policy_type, []).append(r)
    start, end = day_range(day)
    policies = tuple(_policy(policy_domain, t.value, by_type[t])
                     for t in PolicyType if t in by_type)
    return Report(organization_name=organization, start=start, end=end,
                  contact_info=contact, report_id=report_id(day, policy_domain, submitter),
                  policies=policies)


def by_domain(results: Iterable[TLSResult]) -> dict[str, list[TLSResult]]:
    """Results per recipient policy domain (lower case)."""
    out: dict[str, list[TLSResult]] = {}
    for r in results:
        out.setdefault(r.policy_domain.lower().rstrip("."), []).append(r)
    return out


def by_dane_host(results: Iterable[TLSResult]) -> dict[str, list[TLSResult]]:
    """DANE (tlsa) results per MX host name: the host's own policy domain (§3)."""
    out: dict[str, list[TLSResult]] = {}
    for r in results:
        if r.policy_type is PolicyType.TLSA and r.mx_host:
            out.setdefault(r.mx_host.lower().rstrip("."), []).append(r)
    return out
