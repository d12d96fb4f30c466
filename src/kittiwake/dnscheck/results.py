"""The outcome of one DNS check: a level, what was found and how to fix it."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Level(enum.StrEnum):
    """How bad a finding is: OK, WARN (works, but worse than it should), ERROR (broken)."""

    OK = "OK"
    WARN = "WARN"
    ERROR = "ERROR"


@dataclass(frozen=True)
class CheckResult:
    """One line of ``config dnscheck``: which check, the level, what was seen, the fix."""

    check: str
    level: Level
    message: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return {"check": self.check, "level": self.level.value, "message": self.message,
                "fix": self.fix}


def ok(check: str, message: str) -> CheckResult:
    return CheckResult(check, Level.OK, message)


def warn(check: str, message: str, fix: str = "") -> CheckResult:
    return CheckResult(check, Level.WARN, message, fix)


def error(check: str, message: str, fix: str = "") -> CheckResult:
    return CheckResult(check, Level.ERROR, message, fix)


def render(results: list[CheckResult]) -> str:
    """Aligned lines: LEVEL  CHECK  message; fix: ..."""
    if not results:
        return ""
    level_width = max(len(r.level.value) for r in results)
    check_width = max(len(r.check) for r in results)
    lines = []
    for r in results:
        text = r.message + (f"; fix: {r.fix}" if r.fix else "")
        lines.append(f"{r.level.value:<{level_width}}  {r.check:<{check_width}}  {text}")
    return "\n".join(lines) + "\n"
