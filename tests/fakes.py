"""One fake per port, for the use-case tests. Integration tests use the real adapters."""

import asyncio
import uuid

from contracts.events import Event, LlmUsage, PlanGenerated
from contracts.plan import ExerciseProfile, PrescribedExercise, TrainingDay, TrainingWeek, WorkoutPlan
from contracts.progress import PlanProgress
from services.planner.planning import CheckedPlan, PlanPrompt
from services.planner.state import KeptPart
from services.profiler.profiles import ProfileDraft


class RecordingPublisher:
    """Records events and progress notices (it stands in for the ``EventBus`` in both roles)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.notices: list[PlanProgress] = []

    async def publish(self, event: Event) -> None:
        self.events.append(event)

    async def announce(self, progress: PlanProgress) -> None:
        self.notices.append(progress)

    def of_type(self, kind: type[Event]) -> list[Event]:
        return [e for e in self.events if isinstance(e, kind)]


def sample_plan(exercise_names: list[str], days_per_week: int = 3) -> WorkoutPlan:
    """A valid plan cycling through ``exercise_names``."""
    weeks = []
    for week in range(1, 9):
        days = []
        for d in range(days_per_week):
            names = [exercise_names[(d + i) % len(exercise_names)] for i in range(min(4, len(exercise_names)))]
            sets = 2 if week == 4 else 3 if week < 4 else 4  # build, deload, build again
            items = [PrescribedExercise(name=n, sets=sets, reps="8-10", rest_seconds=90, notes="") for n in names]
            days.append(TrainingDay(day=1 + 2 * d, focus="Full body", exercises=list(dict.fromkeys(items))))
        weeks.append(TrainingWeek(week=week, theme="Deload" if week == 4 else "Build", days=days))
    return WorkoutPlan(title="Test plan", summary="A plan for tests.", weeks=weeks)


def sample_profile(name: str) -> ExerciseProfile:
    return ExerciseProfile(
        name=name,
        description=f"How to do {name}.",
        instructions=["Set up.", "Move.", "Return."],
        primary_muscles=["quadriceps"],
        secondary_muscles=[],
        equipment=["barbell"],
        cues=["Brace."],
        difficulty="intermediate",
    )


class FakePlanWriter:
    """Writes ``plan``; with ``gate``, each call first waits for the gate to open (a long call)."""

    prompt_version = "fake-v1"

    def __init__(self, plan: WorkoutPlan, gate: asyncio.Event | None = None) -> None:
        self.plan = plan
        self.gate = gate
        self.calls = 0
        self.started = asyncio.Event()
        self.abandoned: list[uuid.UUID] = []
        self.prompts: list[tuple[list[str], str]] = []

    async def write(self, request_id: uuid.UUID, prompt: PlanPrompt) -> CheckedPlan:
        self.calls += 1
        self.prompts.append((prompt.instructions, prompt.user))
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        return CheckedPlan(self.plan, LlmUsage(model="fake", prompt_tokens=100, completion_tokens=1000))

    async def abandon(self, request_id: uuid.UUID) -> None:
        self.abandoned.append(request_id)


class InMemoryCancelledMarks:
    def __init__(self) -> None:
        self.marked: set[uuid.UUID] = set()

    async def is_marked(self, request_id: uuid.UUID) -> bool:
        return request_id in self.marked

    async def mark(self, request_id: uuid.UUID) -> None:
        self.marked.add(request_id)


class InMemoryGeneratedPlans:
    def __init__(self) -> None:
        self.drafts: dict[uuid.UUID, PlanGenerated] = {}
        self.begun: set[uuid.UUID] = set()

    async def begin(self, request_id: uuid.UUID) -> bool:
        if request_id in self.begun:
            return False
        self.begun.add(request_id)
        return True

    async def get(self, request_id: uuid.UUID) -> PlanGenerated | None:
        return self.drafts.get(request_id)

    async def put(self, event: PlanGenerated) -> None:
        self.drafts[event.request_id] = event


class FakeProfileWriter:
    def __init__(self, delay_seconds: float = 0.0) -> None:
        self.calls: list[str] = []
        self._delay = delay_seconds

    async def write(self, exercise_name: str) -> ProfileDraft:
        self.calls.append(exercise_name)
        await asyncio.sleep(self._delay)
        return ProfileDraft(
            sample_profile(exercise_name), LlmUsage(model="fake", prompt_tokens=10, completion_tokens=50)
        )


class InMemoryProfileCache:
    def __init__(self) -> None:
        self.profiles: dict[str, ExerciseProfile] = {}
        self.claims: set[str] = set()

    async def get(self, key: str) -> ExerciseProfile | None:
        return self.profiles.get(key)

    async def claim(self, key: str) -> bool:
        if key in self.claims:
            return False
        self.claims.add(key)
        return True

    async def refresh(self, key: str) -> bool:
        return key in self.claims

    async def put(self, key: str, profile: ExerciseProfile) -> None:
        self.profiles[key] = profile
        self.claims.discard(key)

    async def create(self, key: str, profile: ExerciseProfile) -> bool:
        if key in self.profiles:
            return False
        self.profiles[key] = profile
        return True

    async def release(self, key: str) -> None:
        self.claims.discard(key)


class InMemoryParts:
    """``FinishedParts`` in a dict: a plan's kept parts, for the strategies' tests."""

    def __init__(self) -> None:
        self.kept: dict[tuple[uuid.UUID, str], KeptPart] = {}
        self.reads = 0

    async def get(self, request_id: uuid.UUID, part: str) -> KeptPart | None:
        self.reads += 1
        return self.kept.get((request_id, part))

    async def put(self, request_id: uuid.UUID, part: str, kept: KeptPart) -> None:
        self.kept[(request_id, part)] = kept
