"""Verifying DKIM signatures (RFC 6376 §6) with rsa-sha256 and ed25519-sha256.

``await verify(resolver, message)`` checks every DKIM-Signature header of a
message (§6.1) and returns one :class:`Result` per signature, top to bottom.
Results use the dkim result names of Authentication-Results (RFC 8601 §2.7.1)
and carry ``authentic``: whether the key came from a DNSSEC-validated answer.

Choices where the RFC leaves room, and why:

- Expired signatures (x= in the past, §3.5, §6.1.1 "PERMFAIL (signature
  expired)") and t= more than :data:`CLOCK_SKEW` seconds in the future are
  ``permerror``.
- rsa-sha1 signatures are ``permerror``: RFC 8301 §3.1 says verifiers MUST
  NOT consider them valid.
- Several TXT records at the selector (undefined by §3.6.2.2; §6.1.2 lets the
  verifier choose): the first that parses as a key record is used; if none
  does, ``permerror`` with the first record's problem.
- ``l=`` (§3.5): only the first l= octets of the canonical body are hashed.
  Such a signature can pass; ``body_length_limited`` then says that content
  after those octets is not covered. l= beyond the body's end is
  ``permerror`` (§3.5: it "MUST NOT be larger than the actual number of
  octets").
- Key records with t=y (testing, §3.6.1) still get their real status;
  ``testing`` is set, and policy (DMARC) must treat the message as unsigned.
- At most :data:`MAX_SIGNATURES` signatures are checked; the rest get
  ``policy`` ("not checked: too many signatures"), so hostile mail cannot
  make us do unbounded DNS lookups and cryptography.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import time
from dataclasses import dataclass, replace
from typing import Any

from kittiwake.dkim.canon import (
    Canon,
    HeaderField,
    body_hash,
    canon_header,
    select_headers,
    split_message,
)
from kittiwake.dkim.keys import (
    Algorithm,
    KeyRecord,
    KeyRecordError,
    check_rsa_size,
    parse_key_record,
    verify_signature,
)
from kittiwake.dkim.signature import (
    HEADER_NAME,
    Signature,
    SignatureError,
    blank_b,
    parse_signature,
    partial_info,
)
from kittiwake.dns import DNSTemporaryError, InvalidName, Resolver
from kittiwake.log import get_logger

logger = get_logger("dkim")

MAX_SIGNATURES = 10
CLOCK_SKEW = 300  # seconds a t= timestamp may lie in the future
HEADER_B_MIN = 8  # RFC 6008 §4: header.b carries at least 8 characters of b=
# Messages and bodies from this size on are parsed and hashed in a worker
# thread, so that the event loop is never blocked for long (DESIGN.md).
THREAD_THRESHOLD = 256 * 1024

_BodyCache = dict[tuple[Canon, int | None], "asyncio.Future[tuple[bytes, int]]"]
BodyHashKey = tuple[Canon, int | None]
"""(body canonicalization, l=): signatures that share it share one body hash."""


class Status(enum.StrEnum):
    """DKIM results as Authentication-Results names them (RFC 8601 §2.7.1)."""

    NONE = "none"
    PASS = "pass"
    FAIL = "fail"
    POLICY = "policy"
    NEUTRAL = "neutral"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


@dataclass(frozen=True)
class Result:
    """The verdict on one DKIM-Signature and its evidence."""

    status: Status
    domain: str = ""  # d=
    selector: str = ""  # s=
    algorithm: str = ""  # a=
    identity: str = ""  # i= (the AUID)
    error: str = ""  # why it did not pass
    authentic: bool = False  # the key's DNS answer was DNSSEC-authentic
    header_b: str = ""  # leading characters of b= (RFC 6008 header.b)
    body_length_limited: bool = False  # l= left part of the body unsigned
    testing: bool = False  # key record t=y (RFC 6376 §3.6.1)
    key_bits: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value, "domain": self.domain, "selector": self.selector,
            "algorithm": self.algorithm, "identity": self.identity, "error": self.error,
            "authentic": self.authentic, "header_b": self.header_b,
            "body_length_limited": self.body_length_limited, "testing": self.testing,
            "key_bits": self.key_bits,
        }


class _Failure(Exception):
    def __init__(self, status: Status, error: str, authentic: bool = False,
                 key: KeyRecord | None = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.authentic = authentic
        self.key = key


async def verify(resolver: Resolver, message: bytes, now: float | None = None) -> list[Result]:
    """Verify every DKIM-Signature of ``message`` (RFC 6376 §6.1); never raises
    for any message content. An unsigned message gives an empty list."""
    if len(message) >= THREAD_THRESHOLD:
        fields, body = await asyncio.to_thread(split_message, message)
    else:
        fields, body = split_message(message)
    return await _verify(resolver, fields, body, {}, now)


def body_hash_keys(fields: list[HeaderField]) -> set[BodyHashKey]:
    """The body hashes the signatures among ``fields`` need (for :class:`BodyHasher`s
    fed while the body arrives); unparsable signatures need none."""
    keys: set[BodyHashKey] = set()
    signatures = [f for f in fields if f.lname == HEADER_NAME.lower()][:MAX_SIGNATURES]
    for field in signatures:
        try:
            sig = parse_signature(field)
        except SignatureError:
            continue
        keys.add((sig.body_canon, sig.length))
    return keys


async def verify_parsed(resolver: Resolver, fields: list[HeaderField],
                        body_hashes: dict[BodyHashKey, tuple[bytes, int]],
                        now: float | None = None) -> list[Result]:
    """:func:`verify` for a message whose header was parsed and whose body hashes were
    computed as it arrived (one per key of :func:`body_hash_keys`: digest and
    canonical length, as :meth:`BodyHasher.digest` gives them)."""
    cache: _BodyCache = {}
    loop = asyncio.get_running_loop()
    for key, value in body_hashes.items():
        future: asyncio.Future[tuple[bytes, int]] = loop.create_future()
        future.set_result(value)
        cache[key] = future
    return await _verify(resolver, fields, None, cache, now)


async def _verify(resolver: Resolver, fields: list[HeaderField], body: bytes | None,
                  body_cache: _BodyCache, now: float | None) -> list[Result]:
    clock = time.time() if now is None else now
    indexes = [i for i, f in enumerate(fields) if f.lname == HEADER_NAME.lower()]
    if not indexes:
        return []

    async def one(index: int) -> Result:
        try:
            return await _verify_one(resolver, fields, index, body, body_cache, clock)
        except Exception as exc:  # defensive: one bad signature must not break the rest
            logger.exception("unexpected error verifying signature", index=index)
            info = partial_info(fields[index])
            return Result(Status.PERMERROR, info.domain, info.selector, info.algorithm,
                          info.identity, f"internal error: {type(exc).__name__}")

    if len(indexes) == 1:  # the usual case: no task to run one check concurrently with
        results = [await one(indexes[0])]
    else:
        results = list(await asyncio.gather(*(one(i) for i in indexes[:MAX_SIGNATURES])))
    for index in indexes[MAX_SIGNATURES:]:
        info = partial_info(fields[index])
        results.append(Result(Status.POLICY, info.domain, info.selector, info.algorithm,
                              info.identity,
                              f"not checked: more than {MAX_SIGNATURES} signatures"))
    return _shorten_header_b(results, [partial_info(fields[i]).b_text for i in indexes])


async def _verify_one(resolver: Resolver, fields: list[HeaderField], index: int,
                      body: bytes | None,
                      body_cache: _BodyCache, now: float) -> Result:
    field = fields[index]
    try:
        sig = parse_signature(field)
    except SignatureError as exc:
        info = partial_info(field)
        return Result(Status.PERMERROR, info.domain, info.selector, info.algorithm,
                      info.identity, str(exc))
    base: dict[str, Any] = dict(domain=sig.domain, selector=sig.selector,
                                algorithm=sig.algorithm.value, identity=sig.identity)
    try:
        limited, key, authentic = await _check(resolver, fields, index, body, body_cache,
                                               now, sig)
    except _Failure as failure:
        key = failure.key
        return Result(failure.status, error=failure.error, authentic=failure.authentic,
                      testing=bool(key and key.testing), key_bits=key.bits if key else 0,
                      **base)
    return Result(Status.PASS, authentic=authentic, body_length_limited=limited,
                  testing=key.testing, key_bits=key.bits, **base)


async def _check(resolver: Resolver, fields: list[HeaderField], index: int,
                 body: bytes | None,
                 body_cache: _BodyCache, now: float,
                 sig: Signature) -> tuple[bool, KeyRecord, bool]:
    """The steps of §6.1.1-§6.1.3 after parsing; raises _Failure with the verdict."""
    # RFC 8301 §3.1: "Verifiers MUST NOT consider signatures using RSA SHA-1 to be valid".
    if sig.algorithm is Algorithm.RSA_SHA1:
        raise _Failure(Status.PERMERROR, "rsa-sha1 is not accepted (RFC 8301 §3.1)")
    # §6.1.1: expired signatures MAY be PERMFAILed; we do.
    if sig.expiration is not None and now > sig.expiration:
        raise _Failure(Status.PERMERROR, f"signature expired (x={sig.expiration})")
    if sig.timestamp is not None and sig.timestamp > now + CLOCK_SKEW:
        raise _Failure(Status.PERMERROR, f"signature timestamp in the future (t={sig.timestamp})")

    key, authentic = await _fetch_key(resolver, sig)

    def fail(status: Status, error: str) -> _Failure:
        return _Failure(status, error, authentic, key)

    # §6.1.2 step 5-9: the key must suit the signature.
    if key.revoked:
        raise fail(Status.PERMERROR, "key revoked (empty p=)")
    if key.key_type != sig.algorithm.key_type:
        raise fail(Status.PERMERROR,
                   f"key type k={key.key_type} does not match a={sig.algorithm}")
    if key.hash_algorithms is not None and sig.algorithm.hash_name not in key.hash_algorithms:
        allowed = ":".join(key.hash_algorithms)
        raise fail(Status.PERMERROR, f"key h={allowed} does not allow {sig.algorithm.hash_name}")
    if "*" not in key.services and "email" not in key.services:
        raise fail(Status.PERMERROR, "key service type s= does not include email")
    if key.strict and sig.identity_domain != sig.domain:
        raise fail(Status.PERMERROR, f"key has t=s but i= domain {sig.identity_domain} "
                                     f"is not d={sig.domain}")
    if key.key_type == "rsa":
        try:
            check_rsa_size(key.bits)
        except KeyRecordError as exc:
            raise fail(Status.PERMERROR, str(exc)) from None

    # §6.1.3: body hash first, then the signature over the header hash input.
    digest, canon_length = await _body_hash(body_cache, body, sig.body_canon, sig.length)
    if sig.length is not None and sig.length > canon_length:
        raise fail(Status.PERMERROR,
                   f"l={sig.length} is longer than the canonical body ({canon_length} octets)")
    if digest != sig.body_hash:
        raise fail(Status.FAIL, "body hash did not verify (body modified?)")
    data = header_hash_input(fields, index, sig)
    assert key.public_key is not None
    if not verify_signature(key.public_key, sig.algorithm, data, sig.signature):
        raise fail(Status.FAIL, "signature did not verify (headers modified?)")
    limited = sig.length is not None and sig.length < canon_length
    return limited, key, authentic


async def _body_hash(cache: _BodyCache, body: bytes | None, canon: Canon,
                     length: int | None) -> tuple[bytes, int]:
    """The body hash, computed once per (canonicalization, l=) for all signatures."""
    key = (canon, length)
    if key not in cache:
        if body is None:  # verify_parsed was not given this hash: a caller's bug
            raise RuntimeError(f"no body hash for {canon} l={length}")
        if len(body) >= THREAD_THRESHOLD:
            coro = asyncio.to_thread(body_hash, body, canon, length)
        else:
            coro = _now(body_hash(body, canon, length))
        cache[key] = asyncio.ensure_future(coro)
    return await cache[key]


async def _now(value: tuple[bytes, int]) -> tuple[bytes, int]:
    return value


async def _fetch_key(resolver: Resolver, sig: Signature) -> tuple[KeyRecord, bool]:
    """The key record at SELECTOR._domainkey.DOMAIN (§3.6.2.1, §6.1.2)."""
    name = f"{sig.selector}._domainkey.{sig.domain}"
    try:
        answer = await resolver.txt(name)
    except DNSTemporaryError as exc:
        # §6.1.2 step 2: no response -> TEMPFAIL (key unavailable).
        raise _Failure(Status.TEMPERROR, f"key lookup failed: {exc.reason}") from None
    except InvalidName as exc:
        raise _Failure(Status.PERMERROR, f"invalid key name {name}: {exc}") from None
    if not answer.records:
        # §6.1.2 step 3: no key record -> PERMFAIL (no key for signature).
        raise _Failure(Status.PERMERROR, f"no key for signature ({answer.status} at {name})",
                       answer.authentic)
    first_error = ""
    for text in answer.records:
        try:
            return parse_key_record(str(text)), answer.authentic
        except KeyRecordError as exc:
            first_error = first_error or str(exc)
    raise _Failure(Status.PERMERROR, first_error, answer.authentic)


def header_hash_input(fields: list[HeaderField], index: int, sig: Signature) -> bytes:
    """The data the signature covers (§3.7): the h= fields (§5.4.2), then the
    signature field itself with b= blanked and without its final CRLF."""
    parts = [canon_header(f, sig.header_canon)
             for f in select_headers(fields, sig.headers, skip=index)]
    own = canon_header(blank_b(fields[index], sig.tags) + b"\r\n", sig.header_canon)
    parts.append(own[:-2])
    return b"".join(parts)


def _shorten_header_b(results: list[Result], b_texts: list[str]) -> list[Result]:
    """Give each result the shortest b= prefix (at least 8 characters) that
    tells it apart from the message's other signatures (RFC 6008 §4).

    Neighbours in sorted order share the longest prefixes, so sorting keeps
    this O(n log n) however many signatures a hostile message carries.
    """
    order = sorted(range(len(b_texts)), key=lambda i: b_texts[i])
    needed = [HEADER_B_MIN] * len(b_texts)
    for a, b in itertools.pairwise(order):
        common = _common_prefix(b_texts[a], b_texts[b])
        needed[a] = max(needed[a], common + 1)
        needed[b] = max(needed[b], common + 1)
    return [replace(r, header_b=b_texts[i][:needed[i]]) if i < len(b_texts) else r
            for i, r in enumerate(results)]


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
