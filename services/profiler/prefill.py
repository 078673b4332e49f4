"""Catalogue pre-fill: profiles for exercises no plan has used yet, bought together through the
Batch API (half the price of the one call per exercise the profiler makes while a plan waits,
answered within a day), so later plans find them in the cache.

Idempotent: an exercise whose profile is already in the cache (by catalogue key) is not bought
again, so running the same list twice buys nothing the second time. Each profile bought goes into
the cache with a create-if-absent write (one written meanwhile, by a profiler replica or another
pre-fill, is kept) and out as ``exercise.profiled``, which the persister stores in the catalogue.
A reply that is not a usable profile is reported and skipped; a later run asks for it again.

The events and the ledger's records of one run carry one fresh request id (there is no plan
request behind a pre-fill): the persister stores the profiles in the catalogue only, and the
ledger's rows for the batch's calls are counted under that id.
"""

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from contracts.events import ExerciseProfiled, ExerciseRef
from contracts.exercise_keys import exercise_key
from contracts.plan import ExerciseProfile
from service_runtime.bus import EventPublisher
from service_runtime.llm.batch import BatchAnswer, BatchItem, StructuredBatches
from service_runtime.logs import bind_request_id
from services.profiler.llm import profile_prompt

__all__ = ["Prefill", "PrefillReport", "ProfileCatalogue", "distinct_exercises"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class ProfileCatalogue(Protocol):
    """The part of the profile cache a pre-fill needs."""

    async def get(self, key: str) -> ExerciseProfile | None: ...

    async def create(self, key: str, profile: ExerciseProfile) -> bool:
        """Store ``profile`` unless ``key`` has one already; False when it had."""
        ...


@dataclass
class PrefillReport:
    """What a run did, by exercise name (the spelling the input used first)."""

    asked: int = 0
    cached: list[str] = field(default_factory=list)  # had a profile: nothing bought
    profiled: list[str] = field(default_factory=list)  # bought, cached and published
    kept: list[str] = field(default_factory=list)  # bought, but a profile written meanwhile was kept
    unusable: dict[str, str] = field(default_factory=dict)  # why no profile came back
    request_id: uuid.UUID | None = None
    batch_ids: list[str] = field(default_factory=list)


def distinct_exercises(names: Iterable[str]) -> list[ExerciseRef]:
    """One exercise per catalogue key, named as the input first spells it; blank lines and lines
    starting with ``#`` are skipped."""
    by_key: dict[str, ExerciseRef] = {}
    for raw in names:
        name = raw.strip()
        if name and not name.startswith("#") and (key := exercise_key(name)):
            by_key.setdefault(key, ExerciseRef(key=key, name=name))
    return list(by_key.values())


class Prefill:
    def __init__(
        self,
        batches: StructuredBatches,
        catalogue: ProfileCatalogue,
        publisher: EventPublisher,
        *,
        concurrency: int = 64,
    ) -> None:
        self._batches = batches
        self._catalogue = catalogue
        self._publisher = publisher
        self._gate = asyncio.Semaphore(concurrency)

    async def run(self, names: Iterable[str]) -> PrefillReport:
        exercises = distinct_exercises(names)
        report = PrefillReport(asked=len(exercises))
        found = await self._all(self._catalogue.get(ref.key) for ref in exercises)
        report.cached = [ref.name for ref, profile in zip(exercises, found, strict=True) if profile is not None]
        missing = [ref for ref, profile in zip(exercises, found, strict=True) if profile is None]
        if not missing:
            return report
        report.request_id = uuid.uuid4()
        # From here on, log lines and the ledger's records of the batch's calls name it.
        bind_request_id(report.request_id)
        items = [BatchItem(f"exercise-{i}", profile_prompt(ref.name)) for i, ref in enumerate(missing)]
        log.info("pre-fill: %d of %d exercises to profile in a batch", len(missing), len(exercises))
        answers = await self._batches.run(items, ExerciseProfile)
        report.batch_ids = sorted({answer.batch_id for answer in answers})
        await self._all(self._keep(report, ref, answer) for ref, answer in zip(missing, answers, strict=True))
        return report

    async def _keep(self, report: PrefillReport, ref: ExerciseRef, answer: BatchAnswer[ExerciseProfile]) -> None:
        if answer.reply is None:
            log.warning("pre-fill: no usable profile for %r: %s", ref.name, answer.problem)
            report.unusable[ref.name] = answer.problem
            return
        # Cached before published: should publishing fail, the profile is not lost (nor bought again
        # by a rerun): the first plan that uses the exercise publishes it from the cache.
        if not await self._catalogue.create(ref.key, answer.reply):
            report.kept.append(ref.name)
            return
        assert report.request_id is not None
        await self._publisher.publish(
            ExerciseProfiled(
                request_id=report.request_id, exercise=ref, profile=answer.reply, source="llm", usage=answer.usage
            )
        )
        report.profiled.append(ref.name)

    async def _all(self, work: Iterable[Awaitable[T]]) -> list[T]:
        async def gated(step: Awaitable[T]) -> T:
            async with self._gate:
                return await step

        return await asyncio.gather(*(gated(step) for step in work))
