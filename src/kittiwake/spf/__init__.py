"""SPF: Sender Policy Framework, RFC 7208.

Checks whether an SMTP client's IP address may send mail for the MAIL FROM
or HELO domain. Written here rather than using pyspf because pyspf is
synchronous and reports no DNSSEC status; every :class:`Result` says whether
all DNS answers it rests on were DNSSEC-authentic.

    result = await spf.verify(resolver, "192.0.2.1", "alice@example.org", "mail.example.org")
    result.status            # Status.PASS, Status.FAIL, ...
    result.received_spf()    # the Received-SPF header field value (§9.1)
"""

from kittiwake.spf.check import check_host, domain_problem, normalize_ip
from kittiwake.spf.header import received_spf_field, received_spf_value
from kittiwake.spf.macro import MacroContext, MacroString, expand, parse_macro_string
from kittiwake.spf.record import Mechanism, Modifier, Record, parse_record, select_record
from kittiwake.spf.result import Result
from kittiwake.spf.status import (
    IncludeNone,
    MacroSyntaxError,
    MultipleRecords,
    PermError,
    Qualifier,
    RecordSyntaxError,
    RedirectNone,
    SPFError,
    Status,
    TempError,
    TooManyDNSLookups,
    TooManyMXNames,
    VoidLookupLimit,
)
from kittiwake.spf.verify import LookupResult, lookup_record, mailfrom_domain, verify

__all__ = [
    "IncludeNone", "LookupResult", "MacroContext", "MacroString", "MacroSyntaxError",
    "Mechanism", "Modifier", "MultipleRecords", "PermError", "Qualifier", "Record",
    "RecordSyntaxError", "RedirectNone", "Result", "SPFError", "Status", "TempError",
    "TooManyDNSLookups", "TooManyMXNames", "VoidLookupLimit", "check_host",
    "domain_problem", "expand", "lookup_record", "mailfrom_domain", "normalize_ip",
    "parse_macro_string", "parse_record", "received_spf_field", "received_spf_value",
    "select_record", "verify",
]
