"""DANE for SMTP: TLSA lookups and certificate verification (RFC 6698, 7671, 7672, 7218).

The SMTP client looks up TLSA records of an MX host whose address records
were DNSSEC-authentic (:func:`lookup_tlsa_for_host`), and after STARTTLS
checks the server's certificate chain against them (:func:`verify`).
:func:`record_for` computes the record for a certificate.
"""

from kittiwake.dane.der import DERError, spki_of
from kittiwake.dane.lookup import (
    TLSALookup,
    TLSAStatus,
    lookup_tlsa,
    lookup_tlsa_for_host,
    reference_identifiers,
    tlsa_base_domains,
)
from kittiwake.dane.records import (
    MatchingType,
    Selector,
    Usage,
    association_data,
    describe,
    matches,
    record_for,
    tlsa_name,
    unusable_reason,
    usable_for_smtp,
)
from kittiwake.dane.verify import Verification, name_matches, verify

__all__ = [
    "DERError", "MatchingType", "Selector", "TLSALookup", "TLSAStatus", "Usage",
    "Verification", "association_data", "describe", "lookup_tlsa", "lookup_tlsa_for_host",
    "matches", "name_matches", "record_for", "reference_identifiers", "spki_of",
    "tlsa_base_domains", "tlsa_name", "unusable_reason", "usable_for_smtp", "verify",
]
