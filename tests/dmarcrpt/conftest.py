"""Shared helpers for the DMARC aggregate report tests: fixture files, the RFC 7489 schema."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


def fixture(name: str) -> bytes:
    return (DATA / name).read_bytes()


@pytest.fixture(scope="session")
def schema():  # type: ignore[no-untyped-def]
    """RFC 7489 Appendix C (tests/dmarcrpt/data/rfc7489.xsd), compiled by xmlschema."""
    import xmlschema

    return xmlschema.XMLSchema(str(DATA / "rfc7489.xsd"))
