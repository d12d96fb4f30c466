"""Password preparation with the PRECIS OpaqueString profile (RFC 8265 §4.2).

Every password is prepared the same way before it is hashed: when credentials
are derived, when PLAIN/LOGIN passwords are verified, and by our SCRAM and
CRAM-MD5 clients. RFC 5802 names SASLprep (RFC 4013), which RFC 8265 replaces;
for passwords the two differ only on compatibility characters (SASLprep applies
NFKC, OpaqueString NFC) and a few ignorable code points, so an ASCII password
prepares identically under both.

What is implemented, in the order of RFC 8264 §7:

1. Width mapping: none (RFC 8265 §4.2.1: fullwidth/halfwidth are kept).
2. Additional mapping: non-ASCII spaces (general category Zs) become U+0020.
3. Case mapping: none.  4. Normalization: NFC.  5. Directionality: none.
6. Behavioural rules of the FreeformClass (RFC 8264 §4.3, §9): code points that
   are unassigned (in Python's Unicode database), controls, surrogates, private
   use, line/paragraph separators, default-ignorable code points and
   noncharacters, old Hangul jamo, format characters, and the DISALLOWED
   exceptions of RFC 5892 §2.6 are rejected.
7. The result must not be empty (RFC 8265 §4.2.2).

Simplification: the CONTEXTJ joiners (U+200C, U+200D) are rejected rather than
evaluated against their context rule, and CONTEXTO code points are accepted.
"""

from __future__ import annotations

import unicodedata

__all__ = ["PrecisError", "opaque_string"]


class PrecisError(ValueError):
    """The string is not allowed by the profile (RFC 8264 §8: DISALLOWED/UNASSIGNED)."""


# RFC 5892 §2.6 exceptions whose derived property is DISALLOWED.
_EXCEPTIONS_DISALLOWED = frozenset({0x0640, 0x07FA, 0x302E, 0x302F, 0x303B, *range(0x3031, 0x3036)})

# Default_Ignorable_Code_Point members outside general category Cf/Cn (Unicode
# DerivedCoreProperties); Cf and Cn are rejected by category anyway.
_OTHER_IGNORABLE = frozenset(
    {
        0x034F,
        0x115F,
        0x1160,
        0x17B4,
        0x17B5,
        0x3164,
        0xFFA0,
        *range(0x180B, 0x1810),
        *range(0xFE00, 0xFE10),
        *range(0xE0100, 0xE01F0),
    }
)

# General categories that are never allowed in the FreeformClass: controls (§9.12),
# format (ignorable or "other"), surrogates, private use, unassigned (§8 UNASSIGNED),
# and the line/paragraph separators, which belong to no valid category.
_DISALLOWED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _old_hangul_jamo(cp: int) -> bool:
    # RFC 8264 §9.9: Hangul_Syllable_Type L, V or T.
    return 0x1100 <= cp <= 0x11FF or 0xA960 <= cp <= 0xA97F or 0xD7B0 <= cp <= 0xD7FF


def _noncharacter(cp: int) -> bool:
    return 0xFDD0 <= cp <= 0xFDEF or (cp & 0xFFFE) == 0xFFFE


def _allowed(ch: str) -> bool:
    cp = ord(ch)
    if 0x21 <= cp <= 0x7E or cp == 0x20:  # ASCII7 and SPACE (§9.11, §9.14)
        return True
    if unicodedata.category(ch) in _DISALLOWED_CATEGORIES:
        return False
    return not (
        cp in _EXCEPTIONS_DISALLOWED
        or cp in _OTHER_IGNORABLE
        or _noncharacter(cp)
        or _old_hangul_jamo(cp)
    )


def opaque_string(password: str) -> str:
    """Prepare and enforce ``password`` with the OpaqueString profile (RFC 8265 §4.2).

    Returns the string to hash (as UTF-8). Raises :class:`PrecisError` when it
    contains a disallowed code point or is empty.
    """
    # RFC 8265 §4.2.1 additional mapping rule: non-ASCII space -> U+0020.
    mapped = "".join(
        " " if ch != " " and unicodedata.category(ch) == "Zs" else ch for ch in password
    )
    # RFC 8265 §4.2.1 normalization rule: NFC.
    normalized = unicodedata.normalize("NFC", mapped)
    for ch in normalized:
        if not _allowed(ch):
            raise PrecisError(f"password contains disallowed code point U+{ord(ch):04X}")
    if not normalized:
        raise PrecisError("password is empty")
    return normalized
