"""SMTP TLS Reporting (RFC 8460): recording each delivery attempt's TLS outcome.

Sending the aggregate reports is a later step; this package keeps the data
they are made from.
"""

from kittiwake.tlsrpt.record import RecordError, TLSRPTRecord, is_tlsrpt_record, parse_record
from kittiwake.tlsrpt.results import PolicyType, ResultType, TLSResult, TLSResults

__all__ = ["PolicyType", "RecordError", "ResultType", "TLSRPTRecord", "TLSResult", "TLSResults",
           "is_tlsrpt_record", "parse_record"]
