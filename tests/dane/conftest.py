"""Fixtures for DANE tests."""

from __future__ import annotations

import pytest

from .certs import PKI, build_pki


@pytest.fixture(scope="session")
def pki() -> PKI:
    return build_pki()
