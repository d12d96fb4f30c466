"""Writing aggregate report XML in the schema of RFC 7489 Appendix C.

Element order follows the schema's sequences (``version`` first, then
``report_metadata``, ``policy_published`` and the records); elements the
schema requires are always written: ``sp`` (``p`` when the record had none,
§6.3), ``pct`` (100) and ``fo`` ("0"), and at least one SPF result per
record ("There will always be at least one SPF result"). IPv6 source
addresses are written in full (uncompressed) form, the only form the
schema's ``IPAddress`` pattern admits. The document has no namespace, like
the reports of the large receivers; the 0.1 namespace of the schema is for
parsers to accept (:mod:`.parse` takes both).
"""

from __future__ import annotations

import ipaddress
from xml.sax.saxutils import escape

from kittiwake.dmarcrpt.model import (
    DispositionType,
    Feedback,
    PolicyPublished,
    Record,
    SPFAuthResult,
    SPFDomainScope,
    SPFResult,
)

__all__ = ["VERSION", "compose_report"]

VERSION = "1.0"


def _el(name: str, value: object, indent: int) -> str:
    return f"{'  ' * indent}<{name}>{escape(str(value))}</{name}>\n"


def _source_ip(text: str) -> str:
    ip = ipaddress.ip_address(text)
    return ip.exploded if ip.version == 6 else str(ip)


def _policy(p: PolicyPublished) -> str:
    out = "  <policy_published>\n" + _el("domain", p.domain, 2)
    if p.adkim is not None:
        out += _el("adkim", p.adkim, 2)
    if p.aspf is not None:
        out += _el("aspf", p.aspf, 2)
    out += _el("p", p.p, 2)
    out += _el("sp", p.sp if p.sp is not None else p.p, 2)
    out += _el("pct", p.pct if p.pct is not None else 100, 2)
    out += _el("fo", p.fo if p.fo is not None else "0", 2)
    return out + "  </policy_published>\n"


def _record(r: Record) -> str:
    ev = r.row.policy_evaluated
    out = ["  <record>\n", "    <row>\n", _el("source_ip", _source_ip(r.row.source_ip), 3),
           _el("count", r.row.count, 3), "      <policy_evaluated>\n",
           _el("disposition", ev.disposition, 4), _el("dkim", ev.dkim, 4),
           _el("spf", ev.spf, 4)]
    for reason in ev.reasons:
        out.append("        <reason>\n" + _el("type", reason.type, 5))
        if reason.comment:
            out.append(_el("comment", reason.comment, 5))
        out.append("        </reason>\n")
    out += ["      </policy_evaluated>\n", "    </row>\n", "    <identifiers>\n"]
    if r.identifiers.envelope_to:
        out.append(_el("envelope_to", r.identifiers.envelope_to, 3))
    out += [_el("header_from", r.identifiers.header_from, 3), "    </identifiers>\n",
            "    <auth_results>\n"]
    for d in r.auth_results.dkim:
        out.append("      <dkim>\n" + _el("domain", d.domain, 4))
        if d.selector:
            out.append(_el("selector", d.selector, 4))
        out.append(_el("result", d.result, 4))
        if d.human_result:
            out.append(_el("human_result", d.human_result, 4))
        out.append("      </dkim>\n")
    spfs = r.auth_results.spf or (SPFAuthResult(r.identifiers.header_from, SPFResult.NONE,
                                                SPFDomainScope.MFROM),)
    for s in spfs:
        out += ["      <spf>\n", _el("domain", s.domain, 4),
                _el("scope", s.scope or SPFDomainScope.MFROM, 4), _el("result", s.result, 4),
                "      </spf>\n"]
    out += ["    </auth_results>\n", "  </record>\n"]
    return "".join(out)


def compose_report(report: Feedback) -> bytes:
    """The report as UTF-8 XML (RFC 7489 §7.2.1, Appendix C)."""
    m = report.report_metadata
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n', "<feedback>\n",
             _el("version", report.version or VERSION, 1), "  <report_metadata>\n",
             _el("org_name", m.org_name, 2), _el("email", m.email, 2)]
    if m.extra_contact_info:
        parts.append(_el("extra_contact_info", m.extra_contact_info, 2))
    parts += [_el("report_id", m.report_id, 2), "    <date_range>\n",
              _el("begin", m.date_range.begin, 3), _el("end", m.date_range.end, 3),
              "    </date_range>\n"]
    parts += [_el("error", e, 2) for e in m.errors]
    parts += ["  </report_metadata>\n", _policy(report.policy_published)]
    parts += [_record(r) for r in report.records]
    parts.append("</feedback>\n")
    return "".join(parts).encode("utf-8")


def disposition_of(reject: bool, quarantine: bool) -> DispositionType:
    """The disposition applied, from a DMARC verdict's flags (RFC 7489 §6.6.4)."""
    if reject:
        return DispositionType.REJECT
    if quarantine:
        return DispositionType.QUARANTINE
    return DispositionType.NONE
