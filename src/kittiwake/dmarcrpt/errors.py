"""Why a report was refused: one typed error with a problem kind.

The kinds split into *bad* (a broken or unrelated document, as generators
sometimes send) and *hostile* (input built to hurt the receiver: entity
expansion, decompression bombs, archive tricks, oversized data), which the
collector counts apart.
"""

from __future__ import annotations

import enum

__all__ = ["Problem", "ReportError"]


class Problem(enum.StrEnum):
    MALFORMED = "malformed"  # not well-formed XML, or required elements missing/invalid
    NOT_A_REPORT = "not-a-report"  # no report attachment, or another document type
    TOO_LARGE = "too-large"  # over the size limit (compressed or not)
    ENTITIES = "entities"  # a DOCTYPE or entity declaration (XXE, billion laughs)
    TOO_DEEP = "too-deep"  # nesting beyond any real report
    BOMB = "bomb"  # decompression ratio beyond any real report
    ARCHIVE = "archive"  # several files in a zip, nested archives, path tricks, encryption

    @property
    def hostile(self) -> bool:
        return self in HOSTILE


HOSTILE = frozenset({Problem.TOO_LARGE, Problem.ENTITIES, Problem.TOO_DEEP, Problem.BOMB,
                     Problem.ARCHIVE})


class ReportError(ValueError):
    """A report that was not accepted; ``problem`` says which kind, the text why."""

    def __init__(self, problem: Problem, detail: str) -> None:
        super().__init__(f"{problem}: {detail}")
        self.problem = problem
        self.detail = detail
