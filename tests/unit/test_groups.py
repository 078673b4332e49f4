"""Grouped writes: what arrives while a write runs shares the next one, and each item keeps its own outcome."""

import asyncio

import pytest

from service_runtime.groups import Grouped


class Writes:
    def __init__(
        self, *, refuse: frozenset[int] = frozenset(), fail_groups: int = 0, poison: frozenset[int] = frozenset()
    ) -> None:
        self.groups: list[list[int]] = []
        self.running = 0
        self.most_running = 0
        self._refuse = refuse
        self._fail_groups = fail_groups
        self._poison = poison

    async def __call__(self, items: list[int]) -> list[int | BaseException]:
        self.groups.append(list(items))
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await asyncio.sleep(0.01)
            if self._fail_groups:
                self._fail_groups -= 1
                raise ConnectionError("the database went away")
            if poisoned := self._poison.intersection(items):
                raise TypeError(f"{sorted(poisoned)} do not fit the table")
            return [ValueError(f"refused {item}") if item in self._refuse else item * 10 for item in items]
        finally:
            self.running -= 1


async def test_items_arriving_while_a_write_runs_share_the_next_write() -> None:
    writes = Writes()
    grouped: Grouped[int, int] = Grouped(writes, name="test")
    first = asyncio.ensure_future(grouped.submit(0))
    await asyncio.sleep(0.001)  # the first write is running now
    results = await asyncio.gather(first, *(grouped.submit(i) for i in range(1, 6)))
    assert results == [0, 10, 20, 30, 40, 50]
    assert writes.groups == [[0], [1, 2, 3, 4, 5]]


async def test_an_item_refused_by_the_write_fails_alone() -> None:
    grouped: Grouped[int, int] = Grouped(Writes(refuse=frozenset({2})), name="test")
    results = await asyncio.gather(*(grouped.submit(i) for i in range(4)), return_exceptions=True)
    assert results[0] == 0 and results[1] == 10 and results[3] == 30
    assert isinstance(results[2], ValueError) and str(results[2]) == "refused 2"


async def test_an_item_that_fails_its_groups_write_fails_alone_and_the_rest_are_written() -> None:
    writes = Writes(poison=frozenset({2}))
    grouped: Grouped[int, int] = Grouped(writes, name="test")
    results = await asyncio.gather(*(grouped.submit(i) for i in range(4)), return_exceptions=True)
    assert results[0] == 0 and results[1] == 10 and results[3] == 30
    assert isinstance(results[2], TypeError) and str(results[2]) == "[2] do not fit the table"
    assert writes.groups == [[0, 1, 2, 3], [0], [1], [2], [3]]


async def test_a_write_that_fails_alone_too_fails_each_item_and_the_next_group_is_written() -> None:
    writes = Writes(fail_groups=3)  # the group's write, then its first two items' own
    grouped: Grouped[int, int] = Grouped(writes, name="test")
    first = await asyncio.gather(*(grouped.submit(i) for i in range(4)), return_exceptions=True)
    assert all(isinstance(result, ConnectionError) for result in first)
    # Two items failing alone in a row: the write itself fails, so the rest are not tried one by one.
    assert writes.groups == [[0, 1, 2, 3], [0], [1]]
    assert await grouped.submit(7) == 70  # each caller retries its own item


async def test_at_most_the_given_number_of_writes_run_at_once_and_groups_stay_within_their_size() -> None:
    writes = Writes()
    grouped: Grouped[int, int] = Grouped(writes, name="test", writers=2, max_group=4)
    submitted = []
    for i in range(30):
        submitted.append(asyncio.ensure_future(grouped.submit(i)))
        if i % 3 == 0:
            await asyncio.sleep(0.002)
    assert await asyncio.gather(*submitted) == [i * 10 for i in range(30)]
    assert writes.most_running == 2
    assert max(len(group) for group in writes.groups) == 4
    assert sorted(item for group in writes.groups for item in group) == list(range(30))


async def test_a_write_answering_the_wrong_number_of_results_fails_its_group() -> None:
    async def short(items: list[int]) -> list[int]:
        return items[:-1]

    grouped: Grouped[int, int] = Grouped(short, name="test")
    with pytest.raises(AssertionError, match="2 results for 3 items"):
        await asyncio.gather(*(grouped.submit(i) for i in range(3)))


async def test_drain_waits_for_every_item_handed_over() -> None:
    writes = Writes()
    grouped: Grouped[int, int] = Grouped(writes, name="test", writers=2)
    futures = [grouped.join(i) for i in range(10)]
    await grouped.drain()
    assert all(future.done() for future in futures)


async def test_a_lingering_write_gathers_items_that_trickle_in() -> None:
    # One item every 5 ms: without a linger each write takes one item; with 50 ms, one write
    # takes what arrived meanwhile.
    async def trickle(grouped: Grouped[int, int]) -> list[int]:
        waiting = []
        for item in range(6):
            waiting.append(grouped.join(item))
            await asyncio.sleep(0.005)
        return list(await asyncio.gather(*waiting))

    eager, lingering = Writes(), Writes()
    assert await trickle(Grouped(eager, name="test")) == [0, 10, 20, 30, 40, 50]
    assert await trickle(Grouped(lingering, name="test", linger_seconds=0.05)) == [0, 10, 20, 30, 40, 50]

    assert len(eager.groups) >= 3
    assert lingering.groups == [[0, 1, 2, 3, 4, 5]]


async def test_a_group_already_a_quarter_full_does_not_linger() -> None:
    # A backlog: the first write's group is large at once and goes without waiting out the linger.
    writes = Writes()
    grouped: Grouped[int, int] = Grouped(writes, name="test", max_group=8, linger_seconds=5.0)
    started = asyncio.get_running_loop().time()
    assert await asyncio.gather(*(grouped.join(i) for i in range(2))) == [0, 10]
    assert asyncio.get_running_loop().time() - started < 1.0
    assert writes.groups == [[0, 1]]
