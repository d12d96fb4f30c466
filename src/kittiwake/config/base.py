"""Shared pieces of the configuration models: strict models and common types."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

LOG_LEVELS = ("error", "warn", "info", "debug", "trace", "traceauth", "tracedata")


class Section(BaseModel):
    """A config section: unknown keys are errors, field docstrings are the documentation."""

    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
        validate_default=True,
        frozen=False,
        strict=True,  # TOML has types: "25" is not a port, 1 is not true
    )


def _check_ip(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address (e.g. 0.0.0.0, ::, 127.0.0.1)") from None
    return value


def _check_level(value: str) -> str:
    lowered = value.lower()
    if lowered not in LOG_LEVELS:
        raise ValueError(f"{value!r} is not a log level (known: {', '.join(LOG_LEVELS)})")
    return lowered


def _check_domain(value: str) -> str:
    from kittiwake.dns.names import to_ascii
    from kittiwake.dns.types import InvalidName

    try:
        return to_ascii(value).lower()
    except InvalidName as exc:
        raise ValueError(str(exc)) from None


IPText = Annotated[str, AfterValidator(_check_ip)]
LogLevel = Annotated[str, AfterValidator(_check_level)]
DomainName = Annotated[str, AfterValidator(_check_domain)]
