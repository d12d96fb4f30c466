"""A resumable pure-Python MD5 (RFC 1321), for verifying CRAM-MD5 without the password.

CRAM-MD5 (RFC 2195) is HMAC-MD5 (RFC 2104) keyed with the password. HMAC hashes
``key XOR ipad`` and ``key XOR opad`` as the first 64-byte block of its inner and
outer hash; storing the MD5 chaining state after those blocks (as Dovecot's
CRAM-MD5 password scheme does) lets a server finish the HMAC for any challenge
without knowing the password. ``hashlib`` cannot start from a given state, so
this module implements the MD5 compression function (RFC 1321 §3.4) and the
padding (§3.1, §3.2) itself. It is slow, but CRAM-MD5 hashes a few blocks.
"""

from __future__ import annotations

import math
import struct

__all__ = [
    "BLOCK_SIZE",
    "INITIAL_STATE",
    "State",
    "compress",
    "digest_from",
    "state_after",
    "state_from_bytes",
    "state_to_bytes",
]

BLOCK_SIZE = 64

State = tuple[int, int, int, int]

# RFC 1321 §3.3: the four-word buffer A, B, C, D starts at these values.
INITIAL_STATE: State = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476)

# RFC 1321 §3.4: T[i] is the integer part of 4294967296 * abs(sin(i)), i = 1..64.
_T = tuple(int(abs(math.sin(i + 1)) * 2**32) & 0xFFFFFFFF for i in range(64))

# RFC 1321 §3.4: per-round shift amounts (rounds 1-4, each used four times per 16 steps).
_S = (
    (7, 12, 17, 22),
    (5, 9, 14, 20),
    (4, 11, 16, 23),
    (6, 10, 15, 21),
)

_MASK = 0xFFFFFFFF


def _rotl(x: int, n: int) -> int:
    return ((x << n) | (x >> (32 - n))) & _MASK


def compress(state: State, block: bytes) -> State:
    """Process one 64-byte block (RFC 1321 §3.4) and return the new A, B, C, D."""
    if len(block) != BLOCK_SIZE:
        raise ValueError("an MD5 block is 64 bytes")
    x = struct.unpack("<16I", block)
    a, b, c, d = state
    for i in range(64):
        rnd = i // 16
        if rnd == 0:  # round 1: F(X,Y,Z) = XY v not(X) Z
            f = (b & c) | (~b & d)
            g = i
        elif rnd == 1:  # round 2: G(X,Y,Z) = XZ v Y not(Z)
            f = (b & d) | (c & ~d)
            g = (5 * i + 1) % 16
        elif rnd == 2:  # round 3: H(X,Y,Z) = X xor Y xor Z
            f = b ^ c ^ d
            g = (3 * i + 5) % 16
        else:  # round 4: I(X,Y,Z) = Y xor (X v not(Z))
            f = c ^ (b | (~d & _MASK))
            g = (7 * i) % 16
        f = (f + a + _T[i] + x[g]) & _MASK
        a, d, c = d, c, b
        b = (b + _rotl(f, _S[rnd][i % 4])) & _MASK
    return (
        (state[0] + a) & _MASK,
        (state[1] + b) & _MASK,
        (state[2] + c) & _MASK,
        (state[3] + d) & _MASK,
    )


def state_after(data: bytes, state: State = INITIAL_STATE) -> State:
    """The chaining state after hashing ``data`` (a whole number of 64-byte blocks)."""
    if len(data) % BLOCK_SIZE:
        raise ValueError("data must be a whole number of 64-byte blocks")
    for off in range(0, len(data), BLOCK_SIZE):
        state = compress(state, data[off : off + BLOCK_SIZE])
    return state


def digest_from(state: State, processed: int, data: bytes) -> bytes:
    """Finish an MD5 that has hashed ``processed`` bytes (a multiple of 64) into ``state``.

    Hashes ``data``, then the padding and length of RFC 1321 §3.1-§3.2 for a total
    message of ``processed + len(data)`` bytes, and returns the 16-byte digest (§3.5).
    """
    if processed % BLOCK_SIZE:
        raise ValueError("processed must be a multiple of 64")
    total_bits = ((processed + len(data)) * 8) & 0xFFFFFFFFFFFFFFFF
    # §3.1: a single 1 bit, then 0 bits until the length is 56 mod 64 bytes.
    padded = data + b"\x80" + b"\x00" * ((55 - len(data)) % BLOCK_SIZE)
    # §3.2: the 64-bit message length in bits, low-order word first.
    padded += struct.pack("<Q", total_bits)
    return state_to_bytes(state_after(padded, state))


def state_to_bytes(state: State) -> bytes:
    """The 16-byte encoding of A, B, C, D, low-order byte first (RFC 1321 §3.5)."""
    return struct.pack("<4I", *state)


def state_from_bytes(data: bytes) -> State:
    """Inverse of :func:`state_to_bytes`."""
    if len(data) != 16:
        raise ValueError("an MD5 state is 16 bytes")
    a, b, c, d = struct.unpack("<4I", data)
    return (a, b, c, d)
