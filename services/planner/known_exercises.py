"""The exercises the catalogue already describes, for steering new plans toward them.

Read from the profiler's bucket of profiles, a sample of names refreshed every few minutes: a
plan that picks these gets its profiles from the catalogue instead of new LLM calls, and the app
shows consistent names. Read-only: the profiler owns the bucket.
"""

import logging
import time

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from contracts.plan import ExerciseProfile
from contracts.streams import EXERCISE_PROFILES_BUCKET
from service_runtime.bus import open_bucket

__all__ = ["KeyValueKnownExercises"]

log = logging.getLogger(__name__)


class KeyValueKnownExercises:
    def __init__(self, kv: KeyValue, *, limit: int, refresh_seconds: float) -> None:
        self._kv = kv
        self._limit = limit
        self._refresh = refresh_seconds
        self._names: list[str] = []
        self._read_at = float("-inf")

    @classmethod
    async def open(
        cls, js: JetStreamContext, *, limit: int = 60, refresh_seconds: float = 300.0, replicas: int = 1
    ) -> "KeyValueKnownExercises":
        return cls(
            await open_bucket(js, EXERCISE_PROFILES_BUCKET, replicas=replicas),
            limit=limit,
            refresh_seconds=refresh_seconds,
        )

    async def names(self) -> list[str]:
        """Up to ``limit`` exercise names (the last read, if the bucket cannot be read now)."""
        if time.monotonic() - self._read_at < self._refresh:
            return self._names
        self._read_at = time.monotonic()
        try:
            keys = sorted(await self._kv.keys())[: self._limit]
        except nats.js.errors.NoKeysError:
            return self._names
        except Exception as exc:
            log.warning("could not read the exercise catalogue: %s", exc)
            return self._names
        names = []
        for key in keys:
            try:
                entry = await self._kv.get(key)
            except nats.js.errors.KeyNotFoundError:
                continue
            if entry.value:
                names.append(ExerciseProfile.model_validate_json(entry.value).name)
        self._names = names
        return names
