"""Body section specifiers of FETCH (RFC 9051 §6.4.5), as typed values.

``BODY[1.2.HEADER.FIELDS (From Subject)]<0.512>`` is
``Section(part=(1, 2), text=SectionText.HEADER_FIELDS, fields=("FROM",
"SUBJECT"))`` with a :class:`Partial` of ``(0, 512)``. The command parser
produces these; the fetch code resolves them against a message's part tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Partial", "Section", "SectionText"]


class SectionText(StrEnum):
    """The section-text of RFC 9051 §6.4.5 (``section-msgtext`` / ``MIME``)."""

    HEADER = "HEADER"
    HEADER_FIELDS = "HEADER.FIELDS"
    HEADER_FIELDS_NOT = "HEADER.FIELDS.NOT"
    TEXT = "TEXT"
    MIME = "MIME"


@dataclass(frozen=True, slots=True)
class Section:
    """A section: part numbers (empty for the whole message) and a text spec.

    ``fields`` holds the header field names of HEADER.FIELDS(.NOT), upper
    case, in the order given. ``part=()`` with ``text=None`` is ``BODY[]``.
    """

    part: tuple[int, ...] = ()
    text: SectionText | None = None
    fields: tuple[str, ...] = ()

    def spec(self) -> str:
        """The section as written inside the brackets of a FETCH response."""
        items = [".".join(str(n) for n in self.part)] if self.part else []
        if self.text is not None:
            t = self.text.value
            if self.fields:
                t += " (" + " ".join(self.fields) + ")"
            items.append(t)
        return ".".join(items)


@dataclass(frozen=True, slots=True)
class Partial:
    """``<origin.count>`` of BODY[...] / BINARY[...] (RFC 9051 §6.4.5)."""

    origin: int
    count: int
