import asyncio
import contextlib
import uuid

from contracts.events import ExerciseProfiled, ExerciseProfileNeeded, ExerciseRef
from contracts.plan import ExerciseProfile
from services.profiler.profiles import Profiling
from tests.fakes import FakeProfileWriter, InMemoryProfileCache, RecordingPublisher, sample_profile


def needed(key: str = "barbell-back-squat", name: str = "Barbell Back Squat") -> ExerciseProfileNeeded:
    return ExerciseProfileNeeded(request_id=uuid.uuid4(), exercise=ExerciseRef(key=key, name=name))


async def test_a_known_exercise_is_served_from_the_cache_without_an_llm_call() -> None:
    cache, writer, publisher = InMemoryProfileCache(), FakeProfileWriter(), RecordingPublisher()
    cache.profiles["barbell-back-squat"] = sample_profile("Barbell Back Squat")
    await Profiling(writer, cache, publisher, wait_for_other_seconds=1).profile_needed(needed())
    assert writer.calls == []
    (event,) = publisher.of_type(ExerciseProfiled)
    assert isinstance(event, ExerciseProfiled)
    assert event.source == "cache"


async def test_concurrent_requests_for_a_new_exercise_make_one_llm_call() -> None:
    cache, writer, publisher = InMemoryProfileCache(), FakeProfileWriter(delay_seconds=0.2), RecordingPublisher()
    profiling = Profiling(writer, cache, publisher, wait_for_other_seconds=5, poll_seconds=0.01)
    await asyncio.gather(*(profiling.profile_needed(needed()) for _ in range(5)))
    assert writer.calls == ["Barbell Back Squat"]
    sources = sorted(e.source for e in publisher.of_type(ExerciseProfiled) if isinstance(e, ExerciseProfiled))
    assert sources == ["cache"] * 4 + ["llm"]


async def test_a_failed_call_releases_its_claim() -> None:
    class Failing(FakeProfileWriter):
        async def write(self, exercise_name: str):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

    cache = InMemoryProfileCache()
    profiling = Profiling(Failing(), cache, RecordingPublisher(), wait_for_other_seconds=1)
    with contextlib.suppress(RuntimeError):
        await profiling.profile_needed(needed())
    assert cache.claims == set()


async def test_a_profile_stored_between_look_up_and_claim_is_not_bought_again() -> None:
    class RacingCache(InMemoryProfileCache):
        """The previous holder puts the profile and releases its claim right after our first look."""

        looks = 0

        async def get(self, key: str) -> ExerciseProfile | None:
            self.looks += 1
            found = await super().get(key)
            if self.looks == 1:
                self.profiles[key] = sample_profile("Barbell Back Squat")
            return found

    cache, writer, publisher = RacingCache(), FakeProfileWriter(), RecordingPublisher()
    await Profiling(writer, cache, publisher, wait_for_other_seconds=1).profile_needed(needed())
    assert writer.calls == []
    assert cache.claims == set()
    (event,) = publisher.of_type(ExerciseProfiled)
    assert isinstance(event, ExerciseProfiled)
    assert event.source == "cache"
