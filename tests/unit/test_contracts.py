import uuid

import pytest
from pydantic import ValidationError

from contracts.events import EVENTS, PlanRequested
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
