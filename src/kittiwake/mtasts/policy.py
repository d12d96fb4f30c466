"""MTA-STS policy files and MX matching (RFC 8461 §3.2, §4.1).

A policy is fetched from ``https://mta-sts.DOMAIN/.well-known/mta-sts.txt``
and looks like::

    version: STSv1
    mode: enforce
    mx: mail.example.com
    mx: *.example.net
    max_age: 604800

Lines end in CRLF or LF; unknown keys are ignored; anything else wrong makes
the whole policy invalid (which senders treat as no policy).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any

from kittiwake.dns import InvalidName, mail_domain, to_ascii

MAX_MAX_AGE = 31557600  # RFC 8461 §3.2: at most one year
# RFC 8461 §3.2: field names are 1*32(ALPHA / DIGIT / "_" / "-" / ".")
_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,32}")
# sts-policy-vchar = %x21-7E / WSP (the value has no leading/trailing WSP)
_VALUE = re.compile(r"[\x21-\x7e]([\x21-\x7e \t]*[\x21-\x7e])?")


class Mode(enum.StrEnum):
    """Policy modes (RFC 8461 §5)."""

    ENFORCE = "enforce"
    TESTING = "testing"
    NONE = "none"


class PolicyError(ValueError):
    """The policy text does not follow RFC 8461 §3.2."""


@dataclass(frozen=True)
class Policy:
    """A valid MTA-STS policy."""

    mode: Mode
    max_age: int
    mx: tuple[str, ...]
    version: str = "STSv1"
    text: str = ""

    @property
    def enforce(self) -> bool:
        """True when delivery must fail to MX hosts the policy does not allow."""
        return self.mode is Mode.ENFORCE

    def allows(self, host: str) -> bool:
        return mx_allowed(self, host)

    def to_text(self) -> str:
        """The policy in its file form, CRLF line ends (RFC 8461 §3.2)."""
        lines = [f"version: {self.version}", f"mode: {self.mode}",
                 *(f"mx: {m}" for m in self.mx), f"max_age: {self.max_age}"]
        return "\r\n".join(lines) + "\r\n"

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "mode": self.mode.value, "max_age": self.max_age,
                "mx": list(self.mx)}


def _mx_pattern(value: str) -> str:
    """Check and normalise an ``mx`` value: a domain, optionally ``*.`` + domain.

    RFC 8461 §3.2: ``sts-policy-mx-value = ["*."] Domain``, the Domain of
    RFC 5321 §4.1.2 (LDH labels; U-labels are mapped to A-labels).
    """
    wildcard = value.startswith("*.")
    name = value[2:] if wildcard else value
    if "*" in name:
        raise PolicyError(f"mx {value!r}: a wildcard may only be the whole leftmost label")
    try:
        ascii_name = mail_domain(name).ascii
    except InvalidName as exc:
        raise PolicyError(f"mx {value!r} is not a domain name: {exc}") from None
    return ("*." if wildcard else "") + ascii_name


def parse_policy(text: str) -> Policy:
    """Parse a policy file; raises :class:`PolicyError` with the reason."""
    values: dict[str, str] = {}
    mx: list[str] = []
    # RFC 8461 §3.2: sts-policy-term-delim = CRLF / LF
    lines = text.split("\n")
    for number, raw in enumerate(lines, 1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if line.strip(" \t") == "":
            continue  # the grammar has no empty lines; being liberal costs nothing here
        key, colon, value = line.partition(":")
        if not colon:
            raise PolicyError(f"line {number} has no 'key: value'")
        key = key.strip(" \t")
        value = value.strip(" \t")
        if not _KEY.fullmatch(key):
            raise PolicyError(f"line {number}: {key!r} is not a field name")
        if not _VALUE.fullmatch(value):
            raise PolicyError(f"line {number}: bad value for {key!r}")
        if key == "mx":
            mx.append(_mx_pattern(value))
        elif key in ("version", "mode", "max_age"):
            values.setdefault(key, value)  # the first instance counts
        # RFC 8461 §3.2: unknown fields are ignored.
    if values.get("version") != "STSv1":
        raise PolicyError(f"version is {values.get('version', 'missing')!r}, not 'STSv1'")
    try:
        mode = Mode(values.get("mode", ""))
    except ValueError:
        raise PolicyError(f"mode {values.get('mode', 'missing')!r} is not enforce, testing"
                          " or none") from None
    max_age_text = values.get("max_age", "")
    # RFC 8461 §3.2: sts-policy-max-age-value = 1*10(DIGIT), at most 31557600
    if not re.fullmatch(r"[0-9]{1,10}", max_age_text):
        raise PolicyError(f"max_age {max_age_text or 'missing'!r} is not a number of seconds")
    max_age = int(max_age_text)
    if max_age > MAX_MAX_AGE:
        raise PolicyError(f"max_age {max_age} is more than {MAX_MAX_AGE} (one year)")
    if not mx and mode is not Mode.NONE:
        raise PolicyError(f"mode {mode} needs at least one mx line")
    return Policy(mode, max_age, tuple(mx), "STSv1", text)


def mx_allowed(policy: Policy, host: str) -> bool:
    """Whether MX host ``host`` matches one of the policy's ``mx`` patterns (RFC 8461 §4.1).

    ``*.example.com`` matches exactly one extra leftmost label:
    ``mx1.example.com``, not ``example.com`` nor ``a.b.example.com``.
    """
    try:
        name = to_ascii(host).lower()
    except InvalidName:
        return False
    for pattern in policy.mx:
        if pattern.startswith("*."):
            first, _, rest = name.partition(".")
            if first and rest == pattern[2:]:
                return True
        elif name == pattern:
            return True
    return False
