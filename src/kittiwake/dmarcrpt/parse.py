"""Parsing aggregate report XML (RFC 7489 Appendix C), safe against hostile input.

The document goes through expat with every DTD feature refused: a DOCTYPE
(and so any entity declaration, external or internal, the root of XXE and
"billion laughs") is an error before anything is expanded, and parameter
entities are never parsed. Size, nesting depth and element count are
bounded; the tree built is minimal (tag, text, children).

Real generators deviate from the schema, and the parser takes them as they
are: elements in the 0.1 namespace or in none, ``version`` absent or inside
``report_metadata``, ``sp``/``pct``/``fo``/``scope``/``selector`` missing,
``envelope_from`` (Microsoft), upper-case values, SPF results written as
``error``/``unknown``/``hardfail``, extra elements (``np``, ``extensions``)
ignored. What a report cannot do without (report id, dates, policy domain
and ``p``, each row's source IP and count) must be there.
"""

from __future__ import annotations

import ipaddress
import xml.parsers.expat
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from kittiwake.dmarcrpt.errors import Problem, ReportError
from kittiwake.dmarcrpt.model import (
    AlignmentType,
    AuthResult,
    DateRange,
    DispositionType,
    DKIMAuthResult,
    DKIMResult,
    DMARCResult,
    Feedback,
    Identifiers,
    PolicyEvaluated,
    PolicyOverride,
    PolicyOverrideReason,
    PolicyPublished,
    Record,
    ReportMetadata,
    Row,
    SPFAuthResult,
    SPFDomainScope,
    SPFResult,
)

__all__ = ["MAX_DEPTH", "MAX_ELEMENTS", "MAX_XML_SIZE", "parse_report"]

MAX_XML_SIZE = 32 * 1024 * 1024  # far above the largest daily reports of big receivers
MAX_DEPTH = 16  # a report nests 5 deep (feedback/record/auth_results/dkim/domain)
MAX_ELEMENTS = 2_000_000
MAX_NUMBER = 2**63 - 1  # counts and timestamps: what SQLite's INTEGER holds

E = TypeVar("E", bound=StrEnum)

_SPF_ALIASES = {"error": "permerror", "unknown": "temperror", "hardfail": "fail",
                "perm_error": "permerror", "temp_error": "temperror"}
_DKIM_ALIASES = {"error": "permerror", "unknown": "temperror", "hardfail": "fail"}


@dataclass
class _Node:
    tag: str
    parts: list[str] = field(default_factory=list)
    children: list[_Node] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.parts).strip()

    def child(self, name: str) -> _Node | None:
        for c in self.children:
            if c.tag == name:
                return c
        return None

    def all(self, name: str) -> list[_Node]:
        return [c for c in self.children if c.tag == name]

    def value(self, name: str) -> str | None:
        c = self.child(name)
        return c.text if c is not None else None


def _tree(data: bytes) -> _Node:
    if len(data) > MAX_XML_SIZE:
        raise ReportError(Problem.TOO_LARGE, f"report XML of {len(data)} bytes"
                          f" (limit {MAX_XML_SIZE})")
    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[_Node] = []
    root: list[_Node] = []
    count = 0

    def refuse_dtd(*_: object) -> None:
        raise ReportError(Problem.ENTITIES, "DOCTYPE declarations are refused (entities)")

    def start(name: str, _attrs: dict[str, str]) -> None:
        nonlocal count
        count += 1
        if count > MAX_ELEMENTS:
            raise ReportError(Problem.TOO_LARGE, f"more than {MAX_ELEMENTS} elements")
        if len(stack) >= MAX_DEPTH:
            raise ReportError(Problem.TOO_DEEP, f"elements nested deeper than {MAX_DEPTH}")
        node = _Node(name.rsplit(" ", 1)[-1].lower())
        if stack:
            stack[-1].children.append(node)
        else:
            root.append(node)
        stack.append(node)

    def end(_name: str) -> None:
        stack.pop()

    def chars(text: str) -> None:
        if stack:
            stack[-1].parts.append(text)

    parser.StartDoctypeDeclHandler = refuse_dtd
    parser.EntityDeclHandler = refuse_dtd
    parser.UnparsedEntityDeclHandler = refuse_dtd
    parser.ExternalEntityRefHandler = lambda *_: refuse_dtd()  # type: ignore[assignment]
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(data, True)
    except ReportError:
        raise
    except xml.parsers.expat.ExpatError as exc:
        raise ReportError(Problem.MALFORMED, f"not well-formed XML: {exc}") from None
    except RecursionError:
        raise ReportError(Problem.TOO_DEEP, "nesting too deep") from None
    except (LookupError, ValueError) as exc:  # e.g. encoding="bogus"
        raise ReportError(Problem.MALFORMED, f"unreadable XML: {exc}") from None
    if not root:
        raise ReportError(Problem.MALFORMED, "no document element")
    return root[0]


def _required(node: _Node, name: str, where: str) -> _Node:
    found = node.child(name)
    if found is None:
        raise ReportError(Problem.MALFORMED, f"{where}: missing <{name}>")
    return found


def _int(text: str | None, where: str) -> int:
    if text is None or text == "":
        raise ReportError(Problem.MALFORMED, f"{where}: missing number")
    try:
        number = int(text)
    except ValueError:
        try:
            number = int(float(text))  # "1485907200.0" is seen in the wild
        except ValueError:
            raise ReportError(Problem.MALFORMED, f"{where}: not a number: {text[:40]!r}") \
                from None
    if number < 0 or number > MAX_NUMBER:
        raise ReportError(Problem.MALFORMED, f"{where}: number out of range: {text[:40]}")
    return number


def _enum(kind: type[E], text: str | None, aliases: dict[str, str] | None = None) -> E | None:
    if not text:
        return None
    value = text.strip().lower()
    value = (aliases or {}).get(value, value)
    try:
        return kind(value)
    except ValueError:
        return None


def _metadata(node: _Node) -> ReportMetadata:
    where = "report_metadata"
    report_id = node.value("report_id")
    if not report_id:
        raise ReportError(Problem.MALFORMED, f"{where}: missing <report_id>")
    dates = _required(node, "date_range", where)
    begin = _int(dates.value("begin"), f"{where}/date_range/begin")
    end = _int(dates.value("end"), f"{where}/date_range/end")
    return ReportMetadata(
        org_name=node.value("org_name") or "", email=node.value("email") or "",
        report_id=report_id, date_range=DateRange(begin, end),
        extra_contact_info=node.value("extra_contact_info") or None,
        errors=tuple(e.text for e in node.all("error") if e.text))


def _policy(node: _Node) -> PolicyPublished:
    where = "policy_published"
    domain = node.value("domain")
    if not domain:
        raise ReportError(Problem.MALFORMED, f"{where}: missing <domain>")
    p = _enum(DispositionType, node.value("p"))
    if p is None:
        raise ReportError(Problem.MALFORMED, f"{where}: missing or invalid <p>")
    pct_text = node.value("pct")
    return PolicyPublished(
        domain=domain.rstrip(".").lower(), p=p,
        adkim=_enum(AlignmentType, node.value("adkim")),
        aspf=_enum(AlignmentType, node.value("aspf")),
        sp=_enum(DispositionType, node.value("sp")),
        pct=_int(pct_text, f"{where}/pct") if pct_text else None,
        fo=node.value("fo") or None)


def _evaluated(node: _Node | None, where: str) -> PolicyEvaluated:
    if node is None:
        raise ReportError(Problem.MALFORMED, f"{where}: missing <policy_evaluated>")
    disposition = _enum(DispositionType, node.value("disposition"))
    if disposition is None:
        raise ReportError(Problem.MALFORMED, f"{where}: missing or invalid <disposition>")
    reasons = []
    for r in node.all("reason"):
        kind = _enum(PolicyOverride, r.value("type")) or PolicyOverride.OTHER
        reasons.append(PolicyOverrideReason(kind, r.value("comment") or None))

    def aligned(name: str) -> DMARCResult:
        return DMARCResult.PASS if (node.value(name) or "").lower() == "pass" \
            else DMARCResult.FAIL

    return PolicyEvaluated(disposition, aligned("dkim"), aligned("spf"), tuple(reasons))


def _auth(node: _Node | None) -> AuthResult:
    if node is None:
        return AuthResult()
    dkim = tuple(
        DKIMAuthResult(domain=(d.value("domain") or "").lower(),
                       result=_enum(DKIMResult, d.value("result"), _DKIM_ALIASES)
                       or DKIMResult.NONE,
                       selector=d.value("selector") or None,
                       human_result=d.value("human_result") or None)
        for d in node.all("dkim"))
    spf = tuple(
        SPFAuthResult(domain=(s.value("domain") or "").lower(),
                      result=_enum(SPFResult, s.value("result"), _SPF_ALIASES)
                      or SPFResult.NONE,
                      scope=_enum(SPFDomainScope, s.value("scope")))
        for s in node.all("spf"))
    return AuthResult(dkim, spf)


def _record(node: _Node, index: int) -> Record:
    where = f"record {index + 1}"
    row = _required(node, "row", where)
    ip_text = row.value("source_ip") or ""
    try:
        source_ip = str(ipaddress.ip_address(ip_text))
    except ValueError:
        raise ReportError(Problem.MALFORMED, f"{where}: invalid <source_ip>"
                          f" {ip_text[:60]!r}") from None
    ids = node.child("identifiers")
    identifiers = Identifiers(
        header_from=((ids.value("header_from") if ids else None) or "").lower(),
        envelope_to=(ids.value("envelope_to") if ids else None) or None,
        envelope_from=(ids.value("envelope_from") if ids else None) or None)
    return Record(
        row=Row(source_ip, _int(row.value("count"), f"{where}/row/count"),
                _evaluated(row.child("policy_evaluated"), where)),
        identifiers=identifiers, auth_results=_auth(node.child("auth_results")))


def parse_report(data: bytes, *, on_record: Callable[[int], None] | None = None) -> Feedback:
    """The :class:`Feedback` in report XML; raises :class:`ReportError`.

    ``on_record`` (optional) is called with each record's index, for progress.
    """
    root = _tree(data)
    if root.tag != "feedback":
        raise ReportError(Problem.NOT_A_REPORT, f"document element <{root.tag[:40]}>,"
                          " not <feedback>")
    metadata_node = _required(root, "report_metadata", "feedback")
    version = root.value("version") or metadata_node.value("version") or None
    records = []
    for i, node in enumerate(root.all("record")):
        records.append(_record(node, i))
        if on_record is not None:
            on_record(i)
    return Feedback(report_metadata=_metadata(metadata_node),
                    policy_published=_policy(_required(root, "policy_published", "feedback")),
                    records=tuple(records), version=version)
