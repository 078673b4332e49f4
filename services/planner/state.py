"""Everything the planner keeps between deliveries, in one place: typed buckets over
``service_runtime.buckets``.

The planner has no database; this is its own bookkeeping, shared by every replica:

- ``plans``: a paid-for plan (the ``plan.generated`` event) until its events are out, so a
  redelivery republishes it instead of calling the LLM again;
- ``parts``: each finished part of a plan written in parts (its skeleton, each week), so a
  redelivery after a crash buys only the parts that were not finished (same bucket, ``<id>.<part>``);
  ``<id>.begun`` marks a request some delivery has begun (``GeneratedPlans.begin``): the first
  need not look for a kept plan or part;
- ``responses``: per call, the id of its background response (``service_runtime.llm.responses``),
  so a redelivery re-attaches to it;
- ``cancelled``: requests cancelled, for a replica that was down when the cancel was published;
- ``known``: a sample of the exercise names the catalogue already describes (the profiler's
  bucket, read only), to steer new plans toward them.
"""

import logging
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

import pydantic
from nats.js import JetStreamContext

from contracts.events import LlmCallRecorded, LlmUsage, PlanGenerated
from contracts.plan import ExerciseProfile
from contracts.streams import EXERCISE_PROFILES, BucketSpec
from service_runtime.buckets import Bucket, Conflict
from service_runtime.llm.response_ids import RecordConflict, ResponseRecord
from service_runtime.logs import reason

__all__ = ["CatalogueNames", "FinishedParts", "GeneratedPlans", "KeptPart", "PlannerState", "RecordedResponses"]

log = logging.getLogger(__name__)

# A request ends (or times out) within hours; what a late redelivery may still need lives two days.
KEPT_SECONDS = 2 * 24 * 3600.0
# Read directly (``BucketSpec.direct_reads``): a plan or part is read back by a redelivery seconds
# after it was written, a cancellation checked as the request is delivered again; the responses'
# compare-and-set records read from the leader.
DRAFTS = BucketSpec("planner-drafts", KEPT_SECONDS, direct_reads=True)
RESPONSES = BucketSpec("planner-responses", KEPT_SECONDS)
CANCELLATIONS = BucketSpec("planner-cancellations", KEPT_SECONDS, direct_reads=True)
# How many catalogue names steer a skeleton, and how often the sample is read again.
KNOWN_NAMES = 60
KNOWN_REFRESH_SECONDS = 300.0


class KeptPart(pydantic.BaseModel):
    """A finished part (its validated reply, as JSON), what it cost, and the ledger records of the
    calls that wrote it (and of the part it replaced), which travel on with the plan."""

    reply: str
    usage: LlmUsage
    calls: tuple[LlmCallRecorded, ...] = ()


class GeneratedPlans:
    def __init__(self, bucket: Bucket[PlanGenerated]) -> None:
        self._bucket = bucket
        # ``<request id>.begun``, beside the request's plan and parts (and kept as long).
        self._begun: Bucket[str] = Bucket.beside(bucket, str)

    async def begin(self, request_id: uuid.UUID) -> bool:
        try:
            await self._begun.create(f"{request_id}.begun", "begun")
        except Conflict:
            return False
        return True

    async def get(self, request_id: uuid.UUID) -> PlanGenerated | None:
        return await self._bucket.get(str(request_id))

    async def put(self, event: PlanGenerated) -> None:
        await self._bucket.put(str(event.request_id), event)


class FinishedParts:
    def __init__(self, bucket: Bucket[KeptPart]) -> None:
        self._bucket = bucket

    async def get(self, request_id: uuid.UUID, part: str) -> KeptPart | None:
        return await self._bucket.get(f"{request_id}.{part}")

    async def put(self, request_id: uuid.UUID, part: str, kept: KeptPart) -> None:
        await self._bucket.put(f"{request_id}.{part}", kept)


class RecordedResponses:
    """``ResponseIds`` in a bucket: compare-and-set on the key's revision, so two replicas racing
    on one call agree on one response."""

    def __init__(self, bucket: Bucket[ResponseRecord]) -> None:
        self._bucket = bucket

    async def get(self, key: str) -> ResponseRecord | None:
        found = await self._bucket.entry(key)
        return None if found is None else replace(found.value, revision=found.revision)

    async def record(self, key: str, record: ResponseRecord, replacing: ResponseRecord | None) -> ResponseRecord:
        """Store ``record`` if the key still holds ``replacing`` (None: if it holds nothing);
        ``RecordConflict`` when another process wrote the key in between."""
        stored = replace(record, revision=0)
        try:
            if replacing is None:
                revision = await self._bucket.create(key, stored)
            else:
                revision = await self._bucket.update(key, stored, last=replacing.revision)
        except Conflict as exc:
            raise RecordConflict(key) from exc
        return replace(record, revision=revision)

    async def forget(self, key: str, record: ResponseRecord) -> None:
        """Remove ``record`` (its response cannot be used), unless another process replaced it:
        the newer record is someone's live response."""
        await self._bucket.delete(key, last=record.revision)


class CancelledRequests:
    """Durable marks on cancelled requests (``cancellation.CancelledMarks``)."""

    def __init__(self, bucket: Bucket[str]) -> None:
        self._bucket = bucket

    async def is_marked(self, request_id: uuid.UUID) -> bool:
        return await self._bucket.has(str(request_id))

    async def mark(self, request_id: uuid.UUID) -> None:
        await self._bucket.put(str(request_id), "cancelled")


class CatalogueNames:
    """Up to ``limit`` exercise names from the catalogue, read again every ``refresh_seconds``
    (the last read while the bucket cannot be read)."""

    def __init__(self, bucket: Bucket[ExerciseProfile], *, limit: int, refresh_seconds: float) -> None:
        self._bucket = bucket
        self._limit = limit
        self._refresh = refresh_seconds
        self._names: list[str] = []
        self._read_at = float("-inf")

    async def names(self) -> list[str]:
        if time.monotonic() - self._read_at < self._refresh:
            return self._names
        self._read_at = time.monotonic()
        try:
            keys = sorted(await self._bucket.keys())[: self._limit]
            profiles = [await self._bucket.get(key) for key in keys]
        except Exception as exc:
            log.warning("could not read the exercise catalogue: %s", reason(exc))
            return self._names
        self._names = [profile.name for profile in profiles if profile is not None]
        return self._names


@dataclass(frozen=True)
class PlannerState:
    plans: GeneratedPlans
    parts: FinishedParts
    responses: RecordedResponses
    cancelled: CancelledRequests
    known: CatalogueNames

    @classmethod
    async def open(cls, js: JetStreamContext, *, replicas: int = 1) -> "PlannerState":
        drafts: Bucket[Any] = await Bucket.open(js, DRAFTS, PlanGenerated, replicas=replicas)
        return cls(
            plans=GeneratedPlans(drafts),
            parts=FinishedParts(Bucket.beside(drafts, KeptPart)),
            responses=RecordedResponses(await Bucket.open(js, RESPONSES, ResponseRecord, replicas=replicas)),
            cancelled=CancelledRequests(await Bucket.open(js, CANCELLATIONS, str, replicas=replicas)),
            known=CatalogueNames(
                await Bucket.open(js, EXERCISE_PROFILES, ExerciseProfile, replicas=replicas),
                limit=KNOWN_NAMES,
                refresh_seconds=KNOWN_REFRESH_SECONDS,
            ),
        )
