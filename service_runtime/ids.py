"""Ids for the rows we insert: time-ordered UUIDs (version 7, RFC 9562 section 5.7).

A random (version 4) key lands on a random leaf of its btree index. Once an index outgrows memory
each insert reads a page, and after every checkpoint the first change to a page writes the whole
page to the WAL (``full_page_writes``): a plan's 128 entry ids touched up to 128 leaves. A version 7
id starts with the Unix time in milliseconds, so new keys go to the index's right edge, a few
leaves at a time. Persisting plans, Postgres's CPU per plan fell 2.86 -> 2.30 ms
(``bench.persister_rate``, alternating 6,000-plan runs).

Layout: 48 bits of Unix milliseconds, the version (7), 12 bits ``rand_a``, the variant (RFC),
62 random bits. ``uuid7_bytes`` fills ``rand_a`` with a counter (the RFC's "fixed bit-length
dedicated counter", method 1), so the ids one call makes increase in the order it returns them;
``uuid7`` fills it at random. Uniqueness rests on the 62 (or 74) random bits, as a version 4 id's
rests on its 122. Anyone holding an id can read when it was made; ours are not secrets (every row
they name also has its ``created_at``).
"""

import os
import time
import uuid

__all__ = ["uuid7", "uuid7_bytes"]

# rand_a as a counter, with the version nibble: 0x7000, 0x7001, ... as two bytes each.
_COUNTER = b"".join((0x7000 | n).to_bytes(2, "big") for n in range(4096))
_BATCH = len(_COUNTER) // 2
# The variant bits (10) set on a random byte.
_VARIANT = bytes(b & 0x3F | 0x80 for b in range(256))


def uuid7() -> uuid.UUID:
    """One time-ordered id."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # variant RFC 9562
    return uuid.UUID(int=value)


def uuid7_bytes(count: int) -> bytes:
    """``count`` time-ordered ids, 16 bytes each, increasing in the order given: ``rand_a`` counts
    up from 0, and each further 4,096 take the next millisecond (the RFC's counter rollover: the
    timestamp may run ahead of the clock). One read of the OS's random source per 4,096."""
    now = time.time_ns() // 1_000_000
    return b"".join(
        _batch(now + index, min(_BATCH, count - start)) for index, start in enumerate(range(0, count, _BATCH))
    )


def _batch(milliseconds: int, count: int) -> bytes:
    raw = bytearray(os.urandom(16 * count))
    stamp = milliseconds.to_bytes(6, "big")
    for offset in range(6):
        raw[offset::16] = stamp[offset : offset + 1] * count
    raw[6::16] = _COUNTER[0 : 2 * count : 2]
    raw[7::16] = _COUNTER[1 : 2 * count : 2]
    raw[8::16] = raw[8::16].translate(_VARIANT)
    return bytes(raw)
