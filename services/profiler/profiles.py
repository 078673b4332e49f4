"""Profiling: reuse a known profile, or have exactly one worker pay for a new one."""

import asyncio
from dataclasses import dataclass
from typing import Protocol

from contracts.events import ExerciseProfiled, ExerciseProfileNeeded, LlmUsage
from contracts.plan import ExerciseProfile
from service_runtime.bus import EventPublisher
from service_runtime.metrics import PROFILE_CACHE
from service_runtime.outcomes import RetryLater


@dataclass(frozen=True)
class ProfileDraft:
    profile: ExerciseProfile
    usage: LlmUsage


class ProfileWriter(Protocol):
    """Port to the LLM. Raises ``RetryLater``/``GiveUp`` (service_runtime.outcomes) on faults."""

    async def write(self, exercise_name: str) -> ProfileDraft: ...


class ProfileCache(Protocol):
    """The shared profile catalogue, plus claims so concurrent misses make one LLM call."""

    async def get(self, key: str) -> ExerciseProfile | None: ...

    async def claim(self, key: str) -> bool:
        """True if this caller now owns writing ``key``; claims expire if their owner dies."""
        ...

    async def refresh(self, key: str) -> bool:
        """Keep this caller's claim alive; False if it was lost."""
        ...

    async def put(self, key: str, profile: ExerciseProfile) -> None:
        """Store the profile and release the claim."""
        ...

    async def release(self, key: str) -> None: ...


class Profiling:
    def __init__(
        self,
        writer: ProfileWriter,
        cache: ProfileCache,
        publisher: EventPublisher,
        *,
        wait_for_other_seconds: float,
        claim_refresh_seconds: float = 10.0,
        poll_seconds: float = 0.25,
    ) -> None:
        self._writer = writer
        self._cache = cache
        self._publisher = publisher
        self._wait = wait_for_other_seconds
        self._refresh_every = claim_refresh_seconds
        self._poll = poll_seconds

    async def profile_needed(self, event: ExerciseProfileNeeded) -> None:
        key = event.exercise.key
        loop = asyncio.get_running_loop()
        give_up_waiting_at = loop.time() + self._wait
        while True:
            if (profile := await self._cache.get(key)) is not None:
                await self._publish(event, profile, None)
                return
            if await self._cache.claim(key):
                # The last holder may have stored the profile and released its claim between our
                # look-up and our claim: look again before paying for it.
                if (profile := await self._cache.get(key)) is not None:
                    await self._cache.release(key)
                    await self._publish(event, profile, None)
                    return
                refresher = asyncio.create_task(self._keep_claim(key))
                try:
                    draft = await self._writer.write(event.exercise.name)
                except BaseException:
                    await self._cache.release(key)
                    raise
                finally:
                    refresher.cancel()
                await self._cache.put(key, draft.profile)
                await self._publish(event, draft.profile, draft.usage)
                return
            # Another worker is writing this profile: wait for it (our lease keeps beating).
            if loop.time() >= give_up_waiting_at:
                raise RetryLater("profile_being_written_elsewhere")
            await asyncio.sleep(self._poll)

    async def _keep_claim(self, key: str) -> None:
        while True:
            await asyncio.sleep(self._refresh_every)
            await self._cache.refresh(key)

    async def _publish(self, event: ExerciseProfileNeeded, profile: ExerciseProfile, usage: LlmUsage | None) -> None:
        PROFILE_CACHE.labels("hit" if usage is None else "miss").inc()
        await self._publisher.publish(
            ExerciseProfiled(
                request_id=event.request_id,
                exercise=event.exercise,
                profile=profile,
                source="cache" if usage is None else "llm",
                usage=usage,
            )
        )
