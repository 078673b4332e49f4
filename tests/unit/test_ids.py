"""Time-ordered ids (UUID version 7): valid RFC 9562 UUIDs, now's milliseconds first, in order."""

import time
import uuid

from service_runtime.ids import uuid7, uuid7_bytes
from services.persister.entry_rows import new_ids


def _ids(data: bytes) -> list[uuid.UUID]:
    return [uuid.UUID(bytes=data[start : start + 16]) for start in range(0, len(data), 16)]


def _milliseconds(value: uuid.UUID) -> int:
    return value.int >> 80


def test_one_id_is_version_7_with_now_first() -> None:
    before = time.time_ns() // 1_000_000
    value = uuid7()
    after = time.time_ns() // 1_000_000
    assert (value.version, value.variant) == (7, uuid.RFC_4122)
    assert before <= _milliseconds(value) <= after


def test_ids_differ_and_later_ones_sort_after() -> None:
    first = uuid7()
    time.sleep(0.002)
    values = [uuid7() for _ in range(1000)]
    assert len(set(values)) == 1000
    assert all(first < value for value in values)


def test_a_batch_increases_in_the_order_given_past_its_counter() -> None:
    before = time.time_ns() // 1_000_000
    values = _ids(uuid7_bytes(9000))  # the 12-bit counter rolls over twice
    assert len(values) == 9000 and len(set(values)) == 9000
    assert values == sorted(values)
    assert all((value.version, value.variant) == (7, uuid.RFC_4122) for value in values)
    assert _milliseconds(values[0]) >= before
    # Each further 4,096 take the next millisecond: the timestamp runs ahead by at most two.
    assert _milliseconds(values[-1]) - _milliseconds(values[0]) <= 2 + (time.time_ns() // 1_000_000 - before)


def test_empty_batch() -> None:
    assert uuid7_bytes(0) == b""


def test_row_ids_are_asyncpgs_uuids_of_the_same_bytes() -> None:
    values = new_ids(130)
    assert [uuid.UUID(str(value)) for value in values] == sorted(uuid.UUID(str(value)) for value in values)
    assert {uuid.UUID(str(value)).version for value in values} == {7}
