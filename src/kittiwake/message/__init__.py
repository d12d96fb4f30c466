"""Internet messages: MIME part trees with byte offsets, headers, addresses,
envelopes, body decoding, search text, and composing Received and
Authentication-Results (RFC 5322, RFC 2045-2049, RFC 2047, RFC 2231,
RFC 2183, RFC 6532, RFC 5321 §4.4, RFC 8601).

Parse once with :func:`parse`, store ``part.to_dict()``, and answer IMAP
FETCH (ENVELOPE, BODYSTRUCTURE, BODY[section]) from the tree and the file.
Nothing here raises on malformed mail.
"""

from kittiwake.message.address import (
    Address,
    AddressList,
    Group,
    flatten,
    parse_address_list,
    parse_addresses,
)
from kittiwake.message.authres import MethodResult, authentication_results, authserv_id_of
from kittiwake.message.body import decode_body, decode_transfer, text_of
from kittiwake.message.charset import decode_bytes
from kittiwake.message.envelope import Envelope, envelope_of, parse_date, parse_msgids
from kittiwake.message.headers import (
    Header,
    Headers,
    fold_header,
    parse_header_section,
    unfold,
)
from kittiwake.message.html import html_to_text
from kittiwake.message.params import parse_content_type, parse_disposition
from kittiwake.message.part import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_PARTS,
    Defect,
    Part,
    parse,
)
from kittiwake.message.received import (
    WithProtocol,
    address_literal,
    count_received,
    received_header,
    with_protocol,
)
from kittiwake.message.rfc2047 import decode_words, encode_words
from kittiwake.message.search import header_text, searchable_text

__all__ = [
    "DEFAULT_MAX_DEPTH", "DEFAULT_MAX_PARTS", "Address", "AddressList", "Defect", "Envelope",
    "Group", "Header", "Headers", "MethodResult", "Part", "WithProtocol", "address_literal",
    "authentication_results", "authserv_id_of", "count_received", "decode_body",
    "decode_bytes", "decode_transfer", "decode_words", "encode_words", "envelope_of",
    "flatten", "fold_header", "header_text", "html_to_text", "parse", "parse_address_list",
    "parse_addresses", "parse_content_type", "parse_date", "parse_disposition",
    "parse_header_section", "parse_msgids", "received_header", "searchable_text", "text_of",
    "unfold", "with_protocol",
]
