"""OpaqueString password preparation (RFC 8265 §4.2)."""

from __future__ import annotations

import pytest

from kittiwake.sasl import PrecisError, opaque_string


@pytest.mark.parametrize(
    ("raw", "prepared"),
    [
        ("pencil", "pencil"),
        ("correct horse", "correct horse"),
        ("a\u00a0b\u3000c", "a b c"),  # non-ASCII spaces map to U+0020
        ("Cafe\u0301", "Caf\u00e9"),  # NFC
        ("\uff21BC", "\uff21BC"),  # fullwidth is kept (no width mapping, no NFKC)
        ("PaSsWoRd", "PaSsWoRd"),  # no case mapping
        ("\u2163", "\u2163"),  # ROMAN NUMERAL FOUR: HasCompat is FREE_PVAL
        ("πß€✓", "πß€✓"),
    ],
)
def test_prepared(raw: str, prepared: str) -> None:
    assert opaque_string(raw) == prepared


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "tab\there",  # control
        "nul\x00",
        "zero\u200bwidth",  # default ignorable (Cf)
        "soft\u00adhyphen",
        "line\u2028sep",
        "private\ue000use",
        "nonchar\ufdd0",
        "old\u1100jamo",
        "tatweel\u0640",  # RFC 5892 exception: DISALLOWED
        "unassigned\U000e0fff",
    ],
)
def test_disallowed(raw: str) -> None:
    with pytest.raises(PrecisError):
        opaque_string(raw)
