"""The strict-schema subset: every schema our services send passes it; what OpenAI refuses, it names."""

from types import ModuleType
from typing import Annotated, Any

import pydantic
import pytest

from contracts.plan import (
    ExerciseProfile,
    PlanOutline,
    PlanOverview,
    PlanSkeleton,
    TrainingDay,
    TrainingWeek,
    WorkoutPlan,
)
from service_runtime.llm import check_llm_setup
from service_runtime.model_limits import limits_of, output_cap
from service_runtime.strict_schema import (
    MAX_NESTING_DEPTH,
    WireSchemaError,
    chat_response_format,
    responses_text_format,
    sdk_strict_schema,
    strict_schema_problems,
    wire_schema,
)
from services.planner import app as planner_app
from services.profiler import app as profiler_app

# Every reply type the planner (both generation modes) and the profiler send.
SENT = [WorkoutPlan, PlanSkeleton, TrainingWeek, PlanOutline, PlanOverview, TrainingDay, ExerciseProfile]


def messages(schema: dict[str, Any]) -> list[str]:
    return [p.message for p in strict_schema_problems(schema)]


def obj(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


@pytest.mark.parametrize("reply_type", SENT, ids=lambda t: t.__name__)
def test_every_wire_schema_we_send_is_inside_the_strict_subset(reply_type: type[pydantic.BaseModel]) -> None:
    assert strict_schema_problems(wire_schema(reply_type)) == []
    assert chat_response_format(reply_type)["json_schema"]["strict"] is True
    assert responses_text_format(reply_type)["schema"] is wire_schema(reply_type)


@pytest.mark.parametrize("reply_type", SENT, ids=lambda t: t.__name__)
def test_the_sdks_own_schema_of_our_models_is_what_the_api_refused(reply_type: type[pydantic.BaseModel]) -> None:
    # What the planner sent before: the openai SDK's strict schema keeps string lengths.
    assert any("'maxLength' is not permitted" in m for m in messages(sdk_strict_schema(reply_type)))


def test_the_first_problem_is_worded_as_the_api_answered_it() -> None:
    first = strict_schema_problems(sdk_strict_schema(PlanSkeleton))[0]
    # The provider's words for this very schema: "Invalid schema for response_format 'PlanSkeleton':
    # In context=('properties', 'title'), 'maxLength' is not permitted."
    assert first.message == "In context=('properties', 'title'), 'maxLength' is not permitted."
    assert (first.path, first.keyword) == (("properties", "title"), "maxLength")


def test_the_wire_restates_string_bounds_and_pydantic_still_enforces_them() -> None:
    title = wire_schema(PlanSkeleton)["properties"]["title"]
    assert "maxLength" not in title
    assert title["description"] == "1 to 160 characters"
    with pytest.raises(pydantic.ValidationError, match="at most 160 characters"):
        PlanSkeleton.model_validate({**_skeleton(), "title": "x" * 161})


def test_array_and_number_bounds_stay_on_the_wire() -> None:
    week = wire_schema(TrainingWeek)
    assert (week["properties"]["days"]["minItems"], week["properties"]["days"]["maxItems"]) == (1, 7)
    assert (week["properties"]["week"]["minimum"], week["properties"]["week"]["maximum"]) == (1, 8)


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (
            obj(name={"type": "string", "minLength": 1}),
            "In context=('properties', 'name'), 'minLength' is not permitted.",
        ),
        (obj(n={"type": "integer", "default": 3}), "In context=('properties', 'n'), 'default' is not permitted."),
        (
            obj(tags={"type": "array", "items": {"type": "string"}, "uniqueItems": True}),
            "'uniqueItems' is not permitted",
        ),
        (obj(x={"allOf": [{"type": "string"}]}), "In context=('properties', 'x'), 'allOf' is not permitted."),
        (obj(x={"type": "string", "not": {"const": "a"}}), "In context=('properties', 'x'), 'not' is not permitted."),
        (obj(x={"oneOf": [{"type": "string"}], "type": "string"}), "'oneOf' is not permitted"),
        (
            obj(meta={"type": "object", "properties": {}, "minProperties": 1, "additionalProperties": False}),
            "'minProperties' is not permitted",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            "In context=(), 'additionalProperties' is required to be supplied and to be false.",
        ),
        (
            {**obj(a={"type": "string"}, b={"type": "string"}), "required": ["a"]},
            "In context=(), 'required' is required to be supplied and to be an array including every key in"
            " properties. Missing 'b'.",
        ),
        ({"anyOf": [obj(a={"type": "string"})]}, "'anyOf' is not permitted at the root of the schema."),
        (
            {"type": "array", "items": {"type": "string"}},
            "schema must be a JSON Schema of 'type: \"object\"', got 'type: \"array\"'.",
        ),
        (obj(x={"description": "no type"}), "In context=('properties', 'x'), schema must have a 'type' key."),
        (obj(a={"$ref": "#/$defs/Missing"}), "reference to component '#/$defs/Missing' which was not found"),
        (obj(a={"type": "string", "format": "uuid"}), None),
        (obj(a={"anyOf": [{"type": "string"}, {"type": "null"}]}), None),
        (obj(a={"type": ["string", "null"], "enum": ["x", None]}), None),
    ],
)
def test_what_the_subset_refuses_is_named_with_its_path(schema: dict[str, Any], expected: str | None) -> None:
    found = messages(schema)
    if expected is None:
        assert found == []
    else:
        assert any(expected in m for m in found), found


def test_nesting_deeper_than_the_guide_allows_is_refused_through_refs_too() -> None:
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(MAX_NESTING_DEPTH):
        deep = obj(inner=deep)
    assert messages(deep) == []
    assert any("nests objects 11 levels deep" in m for m in messages(obj(outer=deep)))
    chain = {
        "$defs": {f"D{i}": obj(next={"$ref": f"#/$defs/D{i + 1}"}) for i in range(11)},
        **obj(start={"$ref": "#/$defs/D0"}),
    }
    chain["$defs"]["D11"] = obj(leaf={"type": "string"})
    assert any("levels deep" in m for m in messages(chain))


def test_a_recursive_schema_is_allowed() -> None:
    node = {
        "$defs": {"Node": obj(children={"type": "array", "items": {"$ref": "#/$defs/Node"}})},
        **obj(root={"$ref": "#/$defs/Node"}),
    }
    assert messages(node) == []


def test_size_limits_of_the_guide() -> None:
    many = obj(**{f"p{i}": {"type": "string"} for i in range(5001)})
    assert any("at most 5000 object properties" in m for m in messages(many))
    enums = obj(**{f"e{i}": {"type": "string", "enum": [f"v{j}" for j in range(11)]} for i in range(100)})
    assert any("at most 1000 enum values" in m for m in messages(enums))
    big_enum = obj(e={"type": "string", "enum": [f"{j:04d}" + "x" * 60 for j in range(251)]})
    assert any("enum of more than 250 string values" in m for m in messages(big_enum))
    long_names = obj(**{"n" * 100 + str(i): {"type": "string"} for i in range(1300)})
    assert any("may not exceed 120000 characters" in m for m in messages(long_names))


class Scores(pydantic.BaseModel):
    """A reply type outside the subset: a dict is an object without named properties."""

    scores: dict[str, int]
    label: Annotated[str, pydantic.Field(max_length=10)]


def test_a_service_with_a_schema_outside_the_subset_does_not_start_and_says_where() -> None:
    with pytest.raises(WireSchemaError) as raised:
        check_llm_setup([ExerciseProfile, Scores])
    assert raised.value.name == "Scores"
    assert "'additionalProperties' at properties/scores" in str(raised.value)
    check_llm_setup(SENT)


def test_every_call_is_capped_by_its_reply_type_and_the_models_limit() -> None:
    assert output_cap("gpt-4o-mini", WorkoutPlan) == 16_384  # the whole plan: all the model can write
    assert output_cap("gpt-4o-mini-2024-07-18", TrainingWeek) == 8192
    assert output_cap("gpt-4.1-mini", WorkoutPlan) == 32_768
    assert output_cap("a-local-model", ExerciseProfile) == 2048
    assert output_cap("a-local-model", WorkoutPlan) is None  # unknown: the server's own default
    assert limits_of("gpt-4o-mini") is not None


def _skeleton() -> dict[str, Any]:
    return {
        "title": "Strength",
        "summary": "Eight weeks.",
        "days_per_week": 3,
        "progression": "Add load.",
        "blocks": [{"weeks": list(range(1, 9)), "days": [{"day": 1, "focus": "Full body", "exercises": ["Squat"]}]}],
        "weeks": [{"week": n, "theme": "Build", "deload": n == 4} for n in range(1, 9)],
    }


@pytest.mark.parametrize(
    ("composition_root", "reply_type"), [(planner_app, "TrainingWeek"), (profiler_app, "ExerciseProfile")]
)
def test_the_planner_and_profiler_refuse_to_start_with_a_schema_outside_the_subset(
    composition_root: ModuleType, reply_type: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setattr(composition_root, reply_type, Scores)  # what a careless change to a reply model does
    with pytest.raises(WireSchemaError, match="'additionalProperties' at properties/scores"):
        composition_root.create_app()


class _Pinned(pydantic.BaseModel):
    """What we rely on the SDK's private helper for, on a model with a nested type and a default."""

    class Inner(pydantic.BaseModel):
        label: str

    items: list[Inner]
    note: str | None = None


def test_the_sdks_private_strict_helper_still_does_what_we_rely_on() -> None:
    # If an openai upgrade changes openai.lib._pydantic.to_strict_json_schema, this fails first.
    schema = sdk_strict_schema(_Pinned)
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["items", "note"]  # every property, defaults included
    inner = schema["$defs"]["Inner"]
    assert (inner["additionalProperties"], inner["required"]) == (False, ["label"])
    assert schema["properties"]["items"]["items"] == {"$ref": "#/$defs/Inner"}
    assert "default" not in schema["properties"]["note"]  # a None default is dropped
    assert strict_schema_problems(wire_schema(_Pinned)) == []
