import uuid

import orjson
import pytest
from pydantic import ValidationError

from contracts.events import EVENTS, LlmUsage, PlanGenerated, PlanRequested, TrustedPlanGenerated
from contracts.exercise_keys import exercise_refs
from contracts.schemas.__main__ import HERE, rendered
from tests.fakes import sample_plan


def test_committed_json_schemas_match_the_models() -> None:
    for name, text in rendered().items():
        committed = HERE / name
        assert committed.exists(), f"{name} is not committed: run `python -m contracts.schemas`"
        assert committed.read_text() == text, f"{name} drifted from the code: run `python -m contracts.schemas`"


def test_every_subject_has_exactly_one_event_model() -> None:
    subjects = [event.subject for event in EVENTS]
    assert len(subjects) == len(set(subjects))
    assert {"plan.requested", "plan.generated", "exercise.profile.needed", "plan.persisted"} <= set(subjects)


def test_events_ignore_unknown_fields_and_are_frozen() -> None:
    event = PlanRequested.model_validate(
        {"request_id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()), "user_profile": "x", "added_later": 1}
    )
    with pytest.raises(ValidationError):
        event.user_profile = "changed"  # type: ignore[misc]
    assert PlanRequested.model_validate_json(event.model_dump_json()) == event


def test_a_plan_without_exactly_weeks_one_to_eight_is_rejected() -> None:
    plan = sample_plan(["Squat", "Push-Up"])
    data = plan.model_dump()
    data["weeks"][7]["week"] = 3
    with pytest.raises(ValidationError, match=r"weeks 1\.\.8"):
        type(plan).model_validate(data)
    data["weeks"] = data["weeks"][:7]
    with pytest.raises(ValidationError):
        type(plan).model_validate(data)


def test_trusted_plan_generated_reads_every_field_of_plan_generated_and_checks_all_but_the_plan() -> None:
    fields, trusted = PlanGenerated.model_fields, TrustedPlanGenerated.model_fields
    assert list(trusted) == list(fields)
    for name, field in fields.items():
        assert trusted[name].is_required() == field.is_required(), name
        if name not in {"plan", "skeleton"}:
            assert trusted[name].annotation == field.annotation, name
    plan = sample_plan(["Squat", "Push-Up"])
    event = PlanGenerated(
        request_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        plan=plan,
        exercises=exercise_refs(plan),
        usage=LlmUsage(model="gpt-4o-mini"),
        quality={"overall": 0.9},
    )
    read = TrustedPlanGenerated.of(event)
    assert read.plan == orjson.loads(plan.model_dump_json()) and read.skeleton is None
    assert read.model_dump(exclude={"plan"}) == event.model_dump(exclude={"plan"})
    envelope = orjson.loads(event.wire)
    with pytest.raises(ValidationError):  # the envelope is checked as PlanGenerated checks it
        TrustedPlanGenerated.read(orjson.dumps({**envelope, "user_id": "not a uuid"}))
    with pytest.raises(ValidationError):  # and the plan is a JSON object
        TrustedPlanGenerated.read(orjson.dumps({**envelope, "plan": [1, 2]}))
    with pytest.raises(orjson.JSONDecodeError):  # a ValueError, as the consumer expects
        TrustedPlanGenerated.read(b"{not json")
