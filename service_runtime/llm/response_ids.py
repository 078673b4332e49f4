"""Where each background response's id is recorded, by the call's key: the port
``responses.BackgroundResponses`` writes through before it waits, so that whichever process handles
the key next re-attaches to that response instead of buying another (the planner's adapter is a
JetStream key-value bucket, ``services/planner/state.py``)."""

from dataclasses import dataclass
from typing import Protocol

__all__ = ["InMemoryResponseIds", "RecordConflict", "ResponseIds", "ResponseRecord"]


@dataclass(frozen=True)
class ResponseRecord:
    """The response a call waits for.

    ``created_at`` is wall-clock (epoch seconds) so a deadline spans processes; ``calls`` counts
    the responses created under the key so far, this one included; ``revision`` is the record's
    revision when read or written, for compare-and-set.
    """

    response_id: str
    created_at: float
    calls: int
    revision: int = 0


class RecordConflict(Exception):
    """Another process recorded a response under the key since this one last read it."""


class ResponseIds(Protocol):
    """Where each call's response id is recorded, by the call's key. Writes are compare-and-set
    on the record's revision, so two replicas racing on one call agree on one response."""

    async def get(self, key: str) -> ResponseRecord | None: ...

    async def record(self, key: str, record: ResponseRecord, replacing: ResponseRecord | None) -> ResponseRecord: ...

    async def forget(self, key: str, record: ResponseRecord) -> None: ...


class InMemoryResponseIds:
    """``ResponseIds`` in one process's memory, compare-and-set as the key-value bucket does: for
    tests and benchmarks, where no other process re-attaches."""

    def __init__(self) -> None:
        self._records: dict[str, ResponseRecord] = {}

    async def get(self, key: str) -> ResponseRecord | None:
        return self._records.get(key)

    async def record(self, key: str, record: ResponseRecord, replacing: ResponseRecord | None) -> ResponseRecord:
        if self._records.get(key) != replacing:
            raise RecordConflict(key)
        self._records[key] = record
        return record

    async def forget(self, key: str, record: ResponseRecord) -> None:
        if self._records.get(key) == record:
            del self._records[key]
