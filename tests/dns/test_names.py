"""Name checks before lookups (RFC 1035 §2.3.4, IDNA 2008)."""

import pytest

from kittiwake.dns import InvalidName, to_ascii


def test_idna_label_becomes_a_label() -> None:
    assert to_ascii("bücher.example.") == "xn--bcher-kva.example"


@pytest.mark.parametrize("name", ["", ".", "a..b", "x" * 64 + ".example", ("a" * 60 + ".") * 5])
def test_malformed_names_are_refused_with_reason(name: str) -> None:
    with pytest.raises(InvalidName):
        to_ascii(name)
