"""SPF results, qualifiers and the error conditions of RFC 7208.

:class:`Status` holds the seven results of ``check_host()`` (RFC 7208 §2.6)
under their exact RFC names. Errors met while evaluating a record are raised
as :class:`PermError` or :class:`TempError` subclasses named after the RFC
condition; :func:`kittiwake.spf.check_host` turns them into a result with the
error's text as ``problem``, so they never escape the public API.
"""

from __future__ import annotations

import enum


class Status(enum.StrEnum):
    """The result of ``check_host()`` (RFC 7208 §2.6)."""

    NONE = "none"  # §2.6.1: no valid domain, or no SPF record
    NEUTRAL = "neutral"  # §2.6.2: the domain makes no assertion
    PASS = "pass"  # §2.6.3: the client is authorized
    FAIL = "fail"  # §2.6.4: the client is not authorized
    SOFTFAIL = "softfail"  # §2.6.5: probably not authorized
    TEMPERROR = "temperror"  # §2.6.6: transient (DNS) error
    PERMERROR = "permerror"  # §2.6.7: the published records could not be interpreted


class Qualifier(enum.StrEnum):
    """A mechanism's qualifier (RFC 7208 §4.6.2); "+" is the default."""

    PASS = "+"
    FAIL = "-"
    SOFTFAIL = "~"
    NEUTRAL = "?"

    @property
    def status(self) -> Status:
        """The result a matching mechanism with this qualifier gives."""
        return _QUALIFIER_STATUS[self]


_QUALIFIER_STATUS = {
    Qualifier.PASS: Status.PASS,
    Qualifier.FAIL: Status.FAIL,
    Qualifier.SOFTFAIL: Status.SOFTFAIL,
    Qualifier.NEUTRAL: Status.NEUTRAL,
}


class SPFError(Exception):
    """An evaluation ended in an error result; ``str(error)`` is the reason."""

    status: Status = Status.PERMERROR


class PermError(SPFError):
    """RFC 7208 §2.6.7: the domain's published records could not be interpreted."""

    status = Status.PERMERROR


class RecordSyntaxError(PermError):
    """RFC 7208 §4.6: a syntax error anywhere in the record."""


class MacroSyntaxError(RecordSyntaxError):
    """RFC 7208 §7.1: a malformed macro (e.g. "%" not followed by "{", "%", "_" or "-")."""


class MultipleRecords(PermError):
    """RFC 7208 §4.5: more than one "v=spf1" record at a name."""


class TooManyDNSLookups(PermError):
    """RFC 7208 §4.6.4: more than 10 mechanisms/modifiers that query DNS."""


class VoidLookupLimit(PermError):
    """RFC 7208 §4.6.4: more than 2 lookups that found no records or no name."""


class TooManyMXNames(PermError):
    """RFC 7208 §4.6.4: an "mx" mechanism would look up more than 10 address records."""


class IncludeNone(PermError):
    """RFC 7208 §5.2: an "include" target has no SPF record."""


class RedirectNone(PermError):
    """RFC 7208 §6.1: a "redirect" target has no SPF record or is malformed."""


class TempError(SPFError):
    """RFC 7208 §2.6.6: a transient error, usually from DNS (§4.4, §5)."""

    status = Status.TEMPERROR
