"""The streaming body hash equals the whole-body one for any chunking."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kittiwake.dkim.bodyhash import BodyHasher
from kittiwake.dkim.canon import Canon, body_hash, split_message

PIECES = st.lists(st.sampled_from([b"a", b"b c", b" ", b"\t", b"\r\n", b"\n", b"\r",
                                   b"  x  ", b"\r\n\r\n", b"."]), max_size=40)


def streamed(body: bytes, canon: Canon, cuts: list[int], length: int | None = None
             ) -> tuple[bytes, int]:
    hasher = BodyHasher(canon, length)
    pos = 0
    for cut in sorted(set(c % (len(body) + 1) for c in cuts)):
        hasher.update(body[pos:cut])
        pos = cut
    hasher.update(body[pos:])
    return hasher.digest()


@settings(max_examples=400, deadline=None)
@given(PIECES, st.lists(st.integers(min_value=0, max_value=400), max_size=6),
       st.sampled_from([Canon.SIMPLE, Canon.RELAXED]),
       st.one_of(st.none(), st.integers(min_value=0, max_value=30)))
def test_any_chunking_matches_whole_body(pieces: list[bytes], cuts: list[int], canon: Canon,
                                         length: int | None) -> None:
    body = b"".join(pieces)
    # The reference works on the CRLF form, as split_message gives it.
    _, crlf_body = split_message(b"X: y\r\n\r\n" + body)
    assert streamed(body, canon, cuts, length) == body_hash(crlf_body, canon, length)


def test_rfc6376_examples() -> None:
    # §3.4.5: the example body under both canonicalizations.
    body = b" C \r\nD \t E\r\n\r\n\r\n"
    assert streamed(body, Canon.RELAXED, [3, 9]) == body_hash(body, Canon.RELAXED)
    assert streamed(body, Canon.SIMPLE, [1]) == body_hash(body, Canon.SIMPLE)
    assert BodyHasher(Canon.SIMPLE).digest() == body_hash(b"", Canon.SIMPLE)
    assert BodyHasher(Canon.RELAXED).digest() == body_hash(b"", Canon.RELAXED)


def test_large_body_in_small_chunks() -> None:
    line = b"The quick  brown fox\t \r\n"
    body = line * 20000 + b"\r\n\r\n"
    hasher = BodyHasher(Canon.RELAXED)
    for i in range(0, len(body), 4093):
        hasher.update(body[i:i + 4093])
    assert hasher.digest() == body_hash(body, Canon.RELAXED)


async def test_verify_parsed_with_streamed_hashes_agrees_with_verify() -> None:
    from kittiwake.dkim import (
        BodyHasher,
        body_hash_keys,
        dns_record,
        generate_key,
        load_private_key,
        sign_message,
        split_message,
        verify,
        verify_parsed,
    )
    from kittiwake.dns import MockResolver

    key = load_private_key(generate_key("ed25519"))
    resolver = MockResolver()
    resolver.add("TXT", "s1._domainkey.example.org", dns_record(key))
    message = (b"From: a@example.org\r\nSubject: hi\r\n\r\n" + b"line  of text \r\n" * 500
               + b"\r\n\r\n")
    signed = sign_message(message, "example.org", "s1", key, canonicalization=("relaxed",
                                                                                "simple"))
    signed = sign_message(signed, "example.org", "s1", key, body_length=100)
    tampered = signed.replace(b"line  of", b"line of", 2)  # only under l= for one of them
    for data in (signed, tampered):
        fields, body = split_message(data)
        keys = body_hash_keys(fields)
        assert len(keys) == 2
        hashers = {k: BodyHasher(*k) for k in keys}
        for i in range(0, len(body), 777):
            for hasher in hashers.values():
                hasher.update(body[i:i + 777])
        streamed = await verify_parsed(resolver, fields,
                                       {k: h.digest() for k, h in hashers.items()})
        whole = await verify(resolver, data)
        assert [(r.status, r.error) for r in streamed] == [(r.status, r.error) for r in whole]
    # relaxed l=100 ignores the changed white space, simple does not
    assert [r.status.value for r in whole] == ["pass", "fail"]
