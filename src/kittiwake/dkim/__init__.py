"""DKIM: DomainKeys Identified Mail signatures (RFC 6376, RFC 8301, RFC 8463).

Sign outgoing mail and verify incoming mail with rsa-sha256 and
ed25519-sha256::

    pem = generate_key("ed25519")
    record = dns_record(load_private_key(pem))     # TXT at SELECTOR._domainkey.DOMAIN
    signed = sign_message(message, "example.org", "sel", pem)
    results = await verify(resolver, signed)       # one Result per DKIM-Signature

Modules: :mod:`.tags` (tag=value lists, §3.2), :mod:`.canon` (message split
and canonicalization, §3.4), :mod:`.keys` (key records §3.6.1, key files,
crypto), :mod:`.signature` (the DKIM-Signature field, §3.5), :mod:`.sign`
(§5) and :mod:`.verify` (§6). Written here rather than using dkimpy because
verification must be async and report DNSSEC status per signature
(DESIGN.md); dkimpy and opendkim serve as test oracles.
"""

from kittiwake.dkim.bodyhash import BodyHasher
from kittiwake.dkim.canon import Canon, HeaderField, split_message
from kittiwake.dkim.keys import (
    Algorithm,
    KeyRecord,
    KeyRecordError,
    dns_record,
    generate_key,
    load_private_key,
    load_public_key,
    parse_key_record,
)
from kittiwake.dkim.sign import (
    DEFAULT_HEADERS,
    OVERSIGNED,
    default_headers,
    sign,
    sign_fields,
    sign_message,
)
from kittiwake.dkim.signature import Signature, SignatureError, parse_signature
from kittiwake.dkim.tags import TagListError, parse_tag_list
from kittiwake.dkim.verify import (
    MAX_SIGNATURES,
    BodyHashKey,
    Result,
    Status,
    body_hash_keys,
    verify,
    verify_parsed,
)

__all__ = [
    "DEFAULT_HEADERS",
    "MAX_SIGNATURES",
    "OVERSIGNED",
    "Algorithm",
    "BodyHashKey",
    "BodyHasher",
    "Canon",
    "HeaderField",
    "KeyRecord",
    "KeyRecordError",
    "Result",
    "Signature",
    "SignatureError",
    "Status",
    "TagListError",
    "body_hash_keys",
    "default_headers",
    "dns_record",
    "generate_key",
    "load_private_key",
    "load_public_key",
    "parse_key_record",
    "parse_signature",
    "parse_tag_list",
    "sign",
    "sign_fields",
    "sign_message",
    "split_message",
    "verify",
    "verify_parsed",
]
