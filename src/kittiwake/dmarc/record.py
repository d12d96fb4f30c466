"""DMARC policy records: parsing and formatting (RFC 7489 §6.3, §6.4).

A record is a DKIM-style tag list (RFC 6376 §3.2) published as TXT at
``_dmarc.<domain>``. ``v=DMARC1`` must come first (§6.3); ``p`` is required
for policy records; unknown tags are ignored; syntax errors in the other
known tags fall back to their defaults (§6.3, last paragraphs), recorded in
:attr:`Policy.warnings` so that ``kittiwake dmarc lookup`` can show them.

ABNF case rules (RFC 5234 §2.3): quoted strings are case-insensitive, so tag
names and the values of ``p``, ``sp``, ``adkim``, ``aspf``, ``fo`` accept any
case, while the version ``DMARC1`` is given as %x values and must match
exactly (§6.3: "MUST match precisely").
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Alignment",
    "Disposition",
    "InvalidRecord",
    "NotDMARCRecord",
    "Policy",
    "RecordError",
    "ReportURI",
    "is_dmarc_record",
    "parse_record",
]


class Disposition(enum.StrEnum):
    """The requested handling of failing mail: the values of ``p`` and ``sp`` (§6.3)."""

    NONE = "none"
    QUARANTINE = "quarantine"
    REJECT = "reject"


class Alignment(enum.StrEnum):
    """Identifier alignment modes of ``adkim`` and ``aspf`` (§3.1.1, §3.1.2)."""

    RELAXED = "r"
    STRICT = "s"


class RecordError(ValueError):
    """A TXT record that gives no usable DMARC policy."""


class NotDMARCRecord(RecordError):
    """The record does not start with ``v=DMARC1`` (§6.6.3 step 2: discard it)."""


class InvalidRecord(RecordError):
    """A ``v=DMARC1`` record without a valid ``p`` (or with a bad ``sp``) and no
    valid ``rua`` to fall back on (§6.6.3 step 6.2): no DMARC processing."""


DEFAULT_INTERVAL = 86400  # §6.3 "ri": default is 86400
MAX_U32 = 2**32 - 1
MAX_U64 = 2**64 - 1
SIZE_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}  # §6.4: powers of two
KNOWN_FAILURE_OPTIONS = ("0", "1", "d", "s")  # §6.3 "fo"
KNOWN_REPORT_FORMATS = ("afrf",)  # §6.3 "rf": the registry of §11 has only afrf

# RFC 6376 §3.2: tag-name = ALPHA *ALNUMPUNC
_TAG_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_VERSION = re.compile(r"[vV][ \t\r\n]*=[ \t\r\n]*DMARC1[ \t\r\n]*(;|\Z)")
# RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then ":" and more.
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s!,]+\Z")
_SIZE = re.compile(r"([0-9]+)([kmgtKMGT]?)\Z")
_WS = " \t\r\n"


@dataclass(frozen=True)
class ReportURI:
    """A reporting address from ``rua`` or ``ruf`` with its optional size limit (§6.2)."""

    uri: str
    max_size: int | None = None  # bytes; None when no "!size" was given
    size_text: str = ""  # the limit as written, e.g. "50m"

    def __str__(self) -> str:
        return f"{self.uri}!{self.size_text}" if self.size_text else self.uri

    @property
    def scheme(self) -> str:
        return self.uri.split(":", 1)[0].lower()

    @property
    def address(self) -> str | None:
        """The mail address of a ``mailto:`` URI (RFC 6068), without query part."""
        if self.scheme != "mailto":
            return None
        target = self.uri.split(":", 1)[1].split("?", 1)[0]
        return _percent_decode(target) or None


@dataclass(frozen=True)
class Policy:
    """A parsed DMARC record. Defaults are those of §6.3."""

    policy: Disposition
    subdomain_policy: Disposition | None = None  # "sp"; None: "p" applies (§6.3)
    percentage: int = 100  # "pct"
    adkim: Alignment = Alignment.RELAXED
    aspf: Alignment = Alignment.RELAXED
    aggregate_uris: tuple[ReportURI, ...] = ()  # "rua"
    failure_uris: tuple[ReportURI, ...] = ()  # "ruf"
    failure_options: tuple[str, ...] = ("0",)  # "fo"; only meaningful with "ruf" (§6.3)
    report_formats: tuple[str, ...] = ("afrf",)  # "rf"
    report_interval: int = DEFAULT_INTERVAL  # "ri", seconds
    # §6.6.3 step 6.1: "p" was missing/invalid or "sp" invalid, but "rua" is
    # usable, so the record is acted on as if it said "p=none".
    substituted: bool = False
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def applicable(self, subdomain: bool) -> Disposition:
        """The policy for the From domain: ``sp`` for a subdomain of the policy
        domain when given, else ``p`` (§6.3 "sp")."""
        if subdomain and self.subdomain_policy is not None:
            return self.subdomain_policy
        return self.policy

    def to_text(self) -> str:
        """The record in canonical form, defaults left out."""
        parts = ["v=DMARC1", f"p={self.policy}"]
        if self.subdomain_policy is not None:
            parts.append(f"sp={self.subdomain_policy}")
        if self.aggregate_uris:
            parts.append("rua=" + ",".join(str(u) for u in self.aggregate_uris))
        if self.failure_uris:
            parts.append("ruf=" + ",".join(str(u) for u in self.failure_uris))
        if self.adkim is not Alignment.RELAXED:
            parts.append(f"adkim={self.adkim}")
        if self.aspf is not Alignment.RELAXED:
            parts.append(f"aspf={self.aspf}")
        if self.report_interval != DEFAULT_INTERVAL:
            parts.append(f"ri={self.report_interval}")
        if self.failure_options != ("0",):
            parts.append("fo=" + ":".join(self.failure_options))
        if self.report_formats != ("afrf",):
            parts.append("rf=" + ":".join(self.report_formats))
        if self.percentage != 100:
            parts.append(f"pct={self.percentage}")
        return "; ".join(parts)

    def __str__(self) -> str:
        return self.to_text()

    def to_json(self) -> dict[str, Any]:
        return {
            "p": self.policy.value,
            "sp": self.subdomain_policy.value if self.subdomain_policy else None,
            "pct": self.percentage,
            "adkim": self.adkim.value,
            "aspf": self.aspf.value,
            "rua": [_uri_json(u) for u in self.aggregate_uris],
            "ruf": [_uri_json(u) for u in self.failure_uris],
            "fo": list(self.failure_options),
            "rf": list(self.report_formats),
            "ri": self.report_interval,
            "substituted": self.substituted,
            "warnings": list(self.warnings),
        }


def _uri_json(u: ReportURI) -> dict[str, Any]:
    return {"uri": u.uri, "max_size": u.max_size}


def _percent_decode(text: str) -> str:
    def sub(m: re.Match[str]) -> str:
        return chr(int(m.group(1), 16))

    return re.sub(r"%([0-9A-Fa-f]{2})", sub, text)


def is_dmarc_record(text: str) -> bool:
    """Whether a TXT record starts with ``v=DMARC1`` (§6.6.3 steps 2 and 4).

    Records that do not are discarded before counting (§6.6.3 step 5); the
    same test applies to ``_report._dmarc`` verification records (§7.1 step 5).
    """
    return isinstance(text, str) and _VERSION.match(text.lstrip(_WS)) is not None


def _tags(text: str, warnings: list[str]) -> dict[str, str]:
    """Split a tag list (RFC 6376 §3.2) into lower-cased names and raw values."""
    tags: dict[str, str] = {}
    for i, part in enumerate(text.split(";")):
        spec = part.strip(_WS)
        if not spec:
            continue  # trailing ";" (RFC 6376 §3.2), or a harmless empty spec
        name, eq, value = spec.partition("=")
        name = name.strip(_WS)
        if not eq or not _TAG_NAME.match(name):
            # §6.3: syntax errors in the remainder are ignored.
            warnings.append(f"tag {i + 1} {spec[:40]!r} is not name=value; ignored")
            continue
        key = name.lower()
        if key in tags:
            # RFC 6376 §3.2: a duplicated tag name makes the whole tag-list invalid.
            raise InvalidRecord(f"tag {key!r} appears more than once")
        tags[key] = value.strip(_WS)
    return tags


def _disposition(value: str | None) -> Disposition | None:
    if value is None:
        return None
    try:
        return Disposition(value.lower())
    except ValueError:
        return None


def _alignment(tags: dict[str, str], name: str, warnings: list[str]) -> Alignment:
    value = tags.get(name)
    if value is None:
        return Alignment.RELAXED
    try:
        return Alignment(value.lower())
    except ValueError:
        warnings.append(f"{name}={value[:20]!r} is not r or s; using r")
        return Alignment.RELAXED


def _uris(tags: dict[str, str], name: str, warnings: list[str]) -> tuple[ReportURI, ...]:
    """Parse a ``rua``/``ruf`` list (§6.2, §6.4 dmarc-uri); bad URIs are dropped."""
    value = tags.get(name)
    if value is None:
        return ()
    out: list[ReportURI] = []
    for raw in value.split(","):
        item = raw.strip(_WS)
        uri, bang, size_text = item.partition("!")
        uri = uri.strip(_WS)
        size: int | None = None
        if bang:
            m = _SIZE.match(size_text.strip(_WS))
            number = int(m.group(1)) if m else None
            if m is None or number is None or number > MAX_U64:
                warnings.append(f"{name}: size limit in {item[:60]!r} is invalid; URI ignored")
                continue
            size_text = size_text.strip(_WS).lower()
            size = number * SIZE_UNITS[m.group(2).lower()]
        if not _URI.match(uri):
            warnings.append(f"{name}: {item[:60]!r} is not a URI; ignored")
            continue
        out.append(ReportURI(uri, size, size_text if bang else ""))
    return tuple(out)


def _colon_list(
    tags: dict[str, str], name: str, known: tuple[str, ...], default: tuple[str, ...],
    warnings: list[str], *, all_or_nothing: bool,
) -> tuple[str, ...]:
    value = tags.get(name)
    if value is None:
        return default
    items = [v.strip(_WS).lower() for v in value.split(":")]
    good = tuple(dict.fromkeys(v for v in items if v in known))
    if (all_or_nothing and len(good) != len(items)) or not good:
        warnings.append(f"{name}={value[:40]!r} is invalid; using {':'.join(default)}")
        return default
    if len(good) != len(items):
        warnings.append(f"{name}: unknown values in {value[:40]!r} ignored")
    return good


def _number(tags: dict[str, str], name: str, maximum: int, default: int, max_digits: int,
            warnings: list[str]) -> int:
    value = tags.get(name)
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()) or len(value) > max_digits \
            or int(value) > maximum:
        warnings.append(f"{name}={value[:20]!r} is not a number 0-{maximum}; using {default}")
        return default
    return int(value)


def parse_record(text: str) -> Policy:
    """Parse one DMARC TXT record (its strings already joined, §6.1).

    Raises :class:`NotDMARCRecord` when it does not start with ``v=DMARC1``
    and :class:`InvalidRecord` when it gives no policy (§6.6.3 step 6). Any
    other problem is repaired with the tag's default and listed in
    ``warnings`` (§6.3). Never raises anything else.
    """
    if not is_dmarc_record(text):
        raise NotDMARCRecord("record does not start with v=DMARC1")
    warnings: list[str] = []
    tags = _tags(text, warnings)
    del tags["v"]  # the first tag, checked by is_dmarc_record

    rua = _uris(tags, "rua", warnings)
    ruf = _uris(tags, "ruf", warnings)
    p = _disposition(tags.get("p"))
    sp = _disposition(tags.get("sp"))
    problem = None
    if p is None:
        problem = "no p tag" if "p" not in tags else f"p={tags['p'][:20]!r} is invalid"
    elif "sp" in tags and sp is None:
        problem = f"sp={tags['sp'][:20]!r} is invalid"
    substituted = False
    if problem is not None:
        # §6.6.3 step 6: act as "p=none" when rua has a valid URI, else no DMARC.
        if not rua:
            raise InvalidRecord(f"{problem} and no valid rua")
        warnings.append(f"{problem}; acting as p=none because rua is valid (RFC 7489 §6.6.3)")
        p, sp, substituted = Disposition.NONE, None, True

    return Policy(
        policy=p,
        subdomain_policy=sp,
        # §6.4: pct is 1*3DIGIT; §6.3: an integer between 0 and 100
        percentage=_number(tags, "pct", 100, 100, 3, warnings),
        adkim=_alignment(tags, "adkim", warnings),
        aspf=_alignment(tags, "aspf", warnings),
        aggregate_uris=rua,
        failure_uris=ruf,
        failure_options=_colon_list(tags, "fo", KNOWN_FAILURE_OPTIONS, ("0",), warnings,
                                    all_or_nothing=True),
        # §6.3 "rf": unknown formats SHOULD be ignored
        report_formats=_colon_list(tags, "rf", KNOWN_REPORT_FORMATS, ("afrf",), warnings,
                                   all_or_nothing=False),
        # §6.3 "ri": a 32-bit unsigned integer
        report_interval=_number(tags, "ri", MAX_U32, DEFAULT_INTERVAL, 10, warnings),
        substituted=substituted,
        warnings=tuple(warnings),
    )
