"""The persister's announcements: a completion is published once per process, however often it is reported."""

import uuid

from contracts.events import (
    ExerciseProfiled,
    ExerciseProfileNeeded,
    ExerciseRef,
    LlmUsage,
    PlanCancelled,
    PlanFailed,
    PlanGenerated,
    PlanPersisted,
    TrustedPlanGenerated,
)
from services.persister.plans import Completion, Persisting, Waiting
from tests.fakes import RecordingPublisher, sample_plan, sample_profile


class ScriptedStore:
    """A ``PlanStore`` that reports the outcomes it is given, in order."""

    def __init__(self, *outcomes: Completion | Waiting | None) -> None:
        self._outcomes = list(outcomes)
        self.dropped: list[uuid.UUID] = []

    async def store_plan(self, event: TrustedPlanGenerated) -> Completion | Waiting | None:
        return self._outcomes.pop(0)

    async def store_profile(self, event: ExerciseProfiled) -> Completion | Waiting | None:
        return self._outcomes.pop(0)

    async def mark_failed(self, event: PlanFailed) -> str | None:
        return None

    async def drop_cancelled_plan(self, event: PlanCancelled) -> None:
        self.dropped.append(event.request_id)


def profiled(request_id: uuid.UUID, name: str) -> ExerciseProfiled:
    ref = ExerciseRef(key=name.lower().replace(" ", "-"), name=name)
    return ExerciseProfiled(request_id=request_id, exercise=ref, profile=sample_profile(name), source="cache")


async def test_late_profiles_of_a_completed_plan_do_not_announce_it_again() -> None:
    request_id, user_id, plan_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    first = Completion(request_id, user_id, plan_id, total_seconds=12.0, profiling_seconds=3.0)
    repeat = Completion(request_id, user_id, plan_id)
    bus = RecordingPublisher()
    persisting = Persisting(ScriptedStore(first, repeat, repeat), bus, progress=bus)

    for name in ("Goblet Squat", "Push-Up", "Plank"):
        await persisting.exercise_profiled(profiled(request_id, name))

    assert len(bus.of_type(PlanPersisted)) == 1
    assert [notice.status for notice in bus.notices] == ["completed"]


async def test_a_completion_this_process_never_announced_is_announced_again() -> None:
    # Another replica completed it, or this one crashed between its commit and its publish.
    request_id = uuid.uuid4()
    bus = RecordingPublisher()
    persisting = Persisting(ScriptedStore(Completion(request_id, uuid.uuid4(), uuid.uuid4())), bus, progress=bus)

    await persisting.exercise_profiled(profiled(request_id, "Plank"))

    assert len(bus.of_type(PlanPersisted)) == 1


def generated(request_id: uuid.UUID) -> TrustedPlanGenerated:
    plan = sample_plan(["Goblet Squat", "Plank"])
    event = PlanGenerated(
        request_id=request_id,
        user_id=uuid.uuid4(),
        plan=plan,
        exercises=tuple(
            ExerciseRef(key=name.lower().replace(" ", "-"), name=name) for name in ("Goblet Squat", "Plank")
        ),
        usage=LlmUsage(model="fake"),
    )
    return TrustedPlanGenerated.of(event)


async def test_a_stored_plan_asks_only_for_the_profiles_the_catalogue_lacks() -> None:
    request_id = uuid.uuid4()
    lacking = (ExerciseRef(key="plank", name="Plank"),)
    bus = RecordingPublisher()

    await Persisting(ScriptedStore(Waiting(request_id, 2, 1, lacking)), bus, progress=bus).plan_generated(
        generated(request_id)
    )

    needed = bus.of_type(ExerciseProfileNeeded)
    assert [(e.request_id, e.exercise) for e in needed if isinstance(e, ExerciseProfileNeeded)] == [
        (request_id, lacking[0])
    ]
    assert [(n.stage, n.exercises_total, n.exercises_profiled) for n in bus.notices] == [("profiling", 2, 1)]


async def test_a_plan_over_a_warm_catalogue_completes_with_no_profile_message() -> None:
    request_id = uuid.uuid4()
    bus = RecordingPublisher()
    done = Completion(request_id, uuid.uuid4(), uuid.uuid4(), total_seconds=1.0, profiling_seconds=0.0)

    await Persisting(ScriptedStore(done), bus, progress=bus).plan_generated(generated(request_id))

    assert [type(e) for e in bus.events] == [PlanPersisted]


async def test_a_cancellation_drops_the_requests_plan_and_announces_nothing() -> None:
    # The gateway already announced the cancel; the persister only removes what it had stored.
    request_id = uuid.uuid4()
    store, bus = ScriptedStore(), RecordingPublisher()

    await Persisting(store, bus, progress=bus).plan_cancelled(
        PlanCancelled(request_id=request_id, user_id=uuid.uuid4())
    )

    assert store.dropped == [request_id]
    assert (bus.events, bus.notices) == ([], [])
