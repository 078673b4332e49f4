"""Typed JetStream key-value buckets: the one way a service keeps state of its own in NATS.

A ``BucketSpec`` (``contracts.streams``) names a bucket and how long its entries live;
``Bucket[T]`` stores values of one type (a pydantic model, or anything a ``TypeAdapter`` reads)
under string keys, with the compare-and-set writes that let replicas agree (``create``,
``update``) and ``Conflict`` when they do not. Each service declares its buckets once (e.g.
``services/planner/state.py``) and builds its stores over them; none of them touches nats-py's
key-value API directly.
"""

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.kv import KeyValue
from pydantic import TypeAdapter

from contracts.streams import BucketSpec
from service_runtime.bus import open_bucket

__all__ = ["Bucket", "Conflict", "Entry"]

T = TypeVar("T")


class Conflict(Exception):
    """Another writer changed the key since it was read (or created it first)."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A value and the key's revision when it was read or written, for compare-and-set."""

    value: T
    revision: int


class Bucket(Generic[T]):
    def __init__(self, kv: KeyValue, value_type: type[T]) -> None:
        self._kv = kv
        self._codec: TypeAdapter[T] = TypeAdapter(value_type)

    @classmethod
    def beside(cls, other: "Bucket[Any]", value_type: type[T]) -> "Bucket[T]":
        """Values of another type in the same bucket (keys kept apart by the caller)."""
        return cls(other._kv, value_type)

    @classmethod
    async def open(
        cls, js: JetStreamContext, spec: BucketSpec, value_type: type[T], *, replicas: int = 1
    ) -> "Bucket[T]":
        kv = await open_bucket(js, spec.name, ttl_seconds=spec.ttl_seconds, replicas=replicas, direct=spec.direct_reads)
        return cls(kv, value_type)

    async def entry(self, key: str) -> Entry[T] | None:
        try:
            found = await self._kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            return None
        if not found.value:
            return None
        return Entry(self._codec.validate_json(found.value), found.revision or 0)

    async def has(self, key: str) -> bool:
        """Whether the key holds a value (whatever it is: it is not decoded)."""
        try:
            found = await self._kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            return False
        return bool(found.value)

    async def get(self, key: str) -> T | None:
        found = await self.entry(key)
        return None if found is None else found.value

    async def put(self, key: str, value: T) -> int:
        return await self._kv.put(key, self._encode(value))

    async def create(self, key: str, value: T) -> int:
        """Write ``value`` only if the key holds nothing; its revision. ``Conflict`` otherwise."""
        try:
            return await self._kv.create(key, self._encode(value))
        except nats.js.errors.KeyWrongLastSequenceError as exc:
            raise Conflict(key) from exc

    async def update(self, key: str, value: T, *, last: int) -> int:
        """Write ``value`` only if the key is still at revision ``last``; its new revision."""
        try:
            return await self._kv.update(key, self._encode(value), last=last)
        except nats.js.errors.KeyWrongLastSequenceError as exc:
            raise Conflict(key) from exc

    async def delete(self, key: str, *, last: int | None = None) -> bool:
        """Remove the key (only at revision ``last``, when given); False if it had changed or was gone."""
        try:
            await self._kv.delete(key, last=last)
        except (nats.js.errors.KeyWrongLastSequenceError, nats.js.errors.KeyNotFoundError):
            return False
        return True

    async def keys(self) -> list[str]:
        try:
            return list(await self._kv.keys())
        except nats.js.errors.NoKeysError:
            return []

    def _encode(self, value: T) -> bytes:
        return self._codec.dump_json(value)
