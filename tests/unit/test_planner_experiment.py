"""Experiments: variants parsed with clear errors, each request's variant fixed by its id, shares by weight."""

import uuid
from collections import Counter

import pydantic
import pytest

from contracts.events import LlmUsage
from services.planner.experiment import Experiment, Variant, parse_variants
from services.planner.planning import CheckedPlan, PlanPrompt
from services.planner.settings import PlannerSettings
from tests.fakes import sample_plan


def test_variants_name_a_generation_an_optional_model_and_a_weight() -> None:
    variants = parse_variants("progressive=80, parallel:gpt-4.1-mini = 20", default_model="gpt-4o-mini")

    assert variants == (
        Variant("progressive", "gpt-4o-mini", 80),
        Variant("parallel", "gpt-4.1-mini", 20),
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("fast=50", "is not a variant"),
        ("progressive", "is not a variant"),
        ("progressive=-1", "is not a variant"),
        ("progressive=1,progressive=2", "listed twice"),
        ("progressive=0,parallel=0", "weight 0"),
    ],
)
def test_a_malformed_experiment_is_refused_at_start_saying_what_is_wrong(
    text: str, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANNER_EXPERIMENT", text)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with pytest.raises(pydantic.ValidationError, match=says):
        PlannerSettings()


def test_without_an_experiment_every_plan_is_the_generation_and_model_set() -> None:
    settings = PlannerSettings(OPENAI_API_KEY="sk-test", PLANNER_GENERATION="progressive")  # type: ignore[call-arg]

    assert settings.variants == (Variant("progressive", settings.model, 1),)


class Writer:
    def __init__(self, name: str) -> None:
        self.prompt_version = name
        self.wrote: list[uuid.UUID] = []
        self.abandoned: list[uuid.UUID] = []

    async def write(self, request_id: uuid.UUID, prompt: PlanPrompt) -> CheckedPlan:
        self.wrote.append(request_id)
        return CheckedPlan(sample_plan(["Squat"]), LlmUsage(model="m"), prompt_version=self.prompt_version)

    async def abandon(self, request_id: uuid.UUID) -> None:
        self.abandoned.append(request_id)


async def test_each_request_keeps_its_variant_and_the_shares_follow_the_weights() -> None:
    a, b, off = Writer("a"), Writer("b"), Writer("off")
    experiment = Experiment(
        [(Variant("progressive", "m", 3), a), (Variant("parallel", "m", 1), b), (Variant("single", "m", 0), off)]
    )
    ids = [uuid.uuid4() for _ in range(4000)]

    shares = Counter(experiment.variant_of(request_id).generation for request_id in ids)

    assert shares["single"] == 0
    assert 0.70 < shares["progressive"] / len(ids) < 0.80
    request_id = ids[0]
    variant = experiment.variant_of(request_id)
    assert all(experiment.variant_of(request_id) == variant for _ in range(5))
    checked = await experiment.write(request_id, PlanPrompt(["rules"], "3x per week"))
    await experiment.abandon(request_id)
    chosen = a if variant.generation == "progressive" else b
    assert (chosen.wrote, chosen.abandoned) == ([request_id], [request_id])
    assert checked.prompt_version == chosen.prompt_version
