"""SMTP TLS Reporting (RFC 8460): recording each delivery attempt's TLS outcome.

The report (:mod:`.report`), its aggregation from recorded results
(:mod:`.aggregate`) and its mail form (:mod:`.mail`); sending and receiving
is the server's (``kittiwake.reports``).
"""

from kittiwake.tlsrpt.record import RecordError, TLSRPTRecord, is_tlsrpt_record, parse_record
from kittiwake.tlsrpt.results import PolicyType, ResultType, TLSResult, TLSResults

__all__ = ["PolicyType", "RecordError", "ResultType", "TLSRPTRecord", "TLSResult", "TLSResults",
           "is_tlsrpt_record", "parse_record"]
