"""Shared pieces of the configuration models: strict models and common types."""

from __future__ import annotations

import ipaddress
import re
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
    """A mail domain or host name as lower-case A-labels (the one normaliser,
    :func:`kittiwake.dns.names.mail_domain`: LDH, IDNA 2008, UTS #46 mapping)."""
    from kittiwake.dns.names import mail_domain
    from kittiwake.dns.types import InvalidName

    try:
        return mail_domain(value).ascii
    except InvalidName as exc:
        raise ValueError(str(exc)) from None


def _check_resolver(value: str) -> str:
    from kittiwake.dns.stub import ResolverConfigError, parse_nameservers

    try:
        parse_nameservers(value, "resolver")
    except ResolverConfigError as exc:
        raise ValueError(str(exc).removeprefix("resolver: ")) from None
    return value


IPText = Annotated[str, AfterValidator(_check_ip)]
LogLevel = Annotated[str, AfterValidator(_check_level)]
DomainName = Annotated[str, AfterValidator(_check_domain)]
ResolverText = Annotated[str, AfterValidator(_check_resolver)]

# RFC 5321 §4.1.2 (Domain = sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str]),
# after IDNA conversion to A-labels: letters, digits and inner hyphens only.
_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def _check_host_name(value: str) -> str:
    """A host name this server announces (EHLO, greeting, Received): LDH labels.

    RFC 5321 §4.1.2: sub-domain = Let-dig [Ldh-str], after IDNA conversion to A-labels.
    """
    labels = value.rstrip(".").split(".")
    if not all(_LDH_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{value!r} is not a host name: labels of letters, digits and"
                         " hyphens separated by dots are expected, e.g. mail.example.org"
                         " (RFC 5321 §4.1.2)")
    return value.rstrip(".")


AnnouncedHostName = Annotated[DomainName, AfterValidator(_check_host_name)]
