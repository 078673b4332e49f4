"""A JetStream key-value bucket holding each generated plan until its events are out.

The planner has no database; this is its own bookkeeping. A redelivered ``plan.requested``
whose plan was already paid for republishes it instead of calling the LLM again.
"""

import uuid

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from contracts.events import PlanGenerated, PlanRequested
from service_runtime.bus import open_bucket

BUCKET = "planner-drafts"


class KeyValueDraftStore:
    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    @classmethod
    async def open(
        cls, js: JetStreamContext, ttl_seconds: float = 2 * 24 * 3600, replicas: int = 1
    ) -> "KeyValueDraftStore":
        return cls(await open_bucket(js, BUCKET, ttl_seconds=ttl_seconds, replicas=replicas))

    async def get(self, request: PlanRequested) -> PlanGenerated | None:
        try:
            entry = await self._kv.get(str(request.request_id))
        except nats.js.errors.KeyNotFoundError:
            return None
        return PlanGenerated.model_validate_json(entry.value) if entry.value else None

    async def put(self, event: PlanGenerated) -> None:
        await self._kv.put(str(event.request_id), event.model_dump_json().encode())


class KeyValuePartStore:
    """The parts of a plan written in parallel (its skeleton, each week) in the same bucket, so a
    redelivery after a crash buys only the parts that were not finished."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    @classmethod
    async def open(
        cls, js: JetStreamContext, ttl_seconds: float = 2 * 24 * 3600, replicas: int = 1
    ) -> "KeyValuePartStore":
        return cls(await open_bucket(js, BUCKET, ttl_seconds=ttl_seconds, replicas=replicas))

    async def get(self, request_id: uuid.UUID, part: str) -> bytes | None:
        try:
            entry = await self._kv.get(f"{request_id}.{part}")
        except nats.js.errors.KeyNotFoundError:
            return None
        return entry.value or None

    async def put(self, request_id: uuid.UUID, part: str, value: bytes) -> None:
        await self._kv.put(f"{request_id}.{part}", value)
