"""The simulator refuses what OpenAI refuses, with the API's status, body and headers.

Most expected bodies are the API's own, observed with raw requests (see ``llm_simulator.refusals``
for where each was seen); the SDK's real client reads them into its exceptions.
"""

import json
from typing import Any, NamedTuple

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from contracts.plan import ExerciseProfile
from llm_simulator import openapi_extract
from llm_simulator.config import FAULT_PROBABILITY_FIELDS
from llm_simulator.model_table import MODELS
from llm_simulator.request_validation import _chat_verdict, refusal
from service_runtime.strict_schema import chat_response_format, responses_text_format
from tests.simulator_server import reset_simulator

MODEL = "gpt-4o-mini"
AUTH = {"Authorization": "Bearer sim"}
_MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
BASELINE: dict[str, Any] = {
    "tokens_per_second": 0,
    "first_token_delay_seconds": 0,
    **{name: 0 for name in FAULT_PROBABILITY_FIELDS},
    "models": list(MODELS),
    "seed": 3,
}


def _message(error: openai.APIStatusError) -> str:
    """The API's own message (the SDK's ``.message`` prefixes the status)."""
    assert isinstance(error.body, dict)
    return str(error.body["message"])


@pytest.fixture(autouse=True)
async def fresh_simulator(admin: httpx.AsyncClient) -> None:
    await reset_simulator(admin, BASELINE)


def test_committed_openapi_extract_is_what_the_pinned_reference_gives() -> None:
    reference = openapi_extract.find_reference()
    if reference is None:
        pytest.skip("OpenAI's OpenAPI reference is not on this machine (CI keeps it in ../shared/reference)")

    expected = openapi_extract.render(openapi_extract.extract(json.loads(reference.read_text(encoding="utf-8"))))

    assert openapi_extract.EXTRACT_PATH.read_text(encoding="utf-8") == expected, (
        "regenerate with: python -m llm_simulator extract-openapi"
    )


def test_the_extract_carries_openais_licence() -> None:
    licence = (openapi_extract.EXTRACT_DIR / "LICENSE").read_text(encoding="utf-8")
    assert "MIT License" in licence
    assert "Copyright (c) OpenAI" in licence


class Refused(NamedTuple):
    route: str
    body: dict[str, Any]
    param: str | None
    code: str | None
    message: str


# Observed on the real API (stdapi-ai/stdapi.ai's request-validation probe, 2026-09-23), plus chat's
# "Unrecognized request argument supplied" and the Responses API's top-level unknown parameter.
REFUSED = {
    "responses_unknown_top_level": Refused(
        "responses", {"input": "hi", "foo": 1}, "foo", "unknown_parameter", "Unknown parameter: 'foo'."
    ),
    "responses_unknown_nested": Refused(
        "responses",
        {"input": "hi", "reasoning": {"effort": "low", "bogus": 1}},
        "reasoning.bogus",
        "unknown_parameter",
        "Unknown parameter: 'reasoning.bogus'.",
    ),
    "responses_unknown_in_an_item": Refused(
        "responses",
        {"input": [{"role": "user", "content": "hi", "bogus": 1}]},
        "input[0].bogus",
        "unknown_parameter",
        "Unknown parameter: 'input[0].bogus'.",
    ),
    "chat_unrecognized_argument": Refused(
        "chat/completions", {"messages": _MESSAGES, "foo": 1}, None, None, "Unrecognized request argument supplied: foo"
    ),
    "missing_messages": Refused(
        "chat/completions", {}, "messages", "missing_required_parameter", "Missing required parameter: 'messages'."
    ),
    "missing_role": Refused(
        "chat/completions",
        {"messages": [{"content": "hi"}]},
        "messages[0].role",
        "missing_required_parameter",
        "Missing required parameter: 'messages[0].role'.",
    ),
    "missing_in_a_nested_object": Refused(
        "chat/completions",
        {"messages": _MESSAGES, "tools": [{"type": "function", "function": {}}]},
        "tools[0].function.name",
        "missing_required_parameter",
        "Missing required parameter: 'tools[0].function.name'.",
    ),
    "invalid_type": Refused(
        "chat/completions",
        {"messages": _MESSAGES, "max_completion_tokens": "abc"},
        "max_completion_tokens",
        "invalid_type",
        "Invalid type for 'max_completion_tokens': expected an integer, but got a string instead.",
    ),
    "invalid_type_of_a_decimal": Refused(
        "chat/completions",
        {"messages": _MESSAGES, "seed": 1.5},
        "seed",
        "invalid_type",
        "Invalid type for 'seed': expected an integer, but got a decimal number instead.",
    ),
    "invalid_value": Refused(
        "chat/completions",
        {"messages": _MESSAGES, "response_format": {"type": "bogus"}},
        "response_format.type",
        "invalid_value",
        "Invalid value: 'bogus'. Supported values are: 'text', 'json_schema', and 'json_object'.",
    ),
    "invalid_role": Refused(
        "chat/completions",
        {"messages": [{"role": "bogus", "content": "hi"}]},
        "messages[0].role",
        "invalid_value",
        "Invalid value: 'bogus'. Supported values are: "
        "'developer', 'system', 'user', 'assistant', 'tool', and 'function'.",
    ),
    "integer_below_min_value": Refused(
        "chat/completions",
        {"messages": _MESSAGES, "n": 0},
        "n",
        "integer_below_min_value",
        "Invalid 'n': integer below minimum value. Expected a value >= 1, but got 0 instead.",
    ),
    "max_output_tokens_below_16": Refused(
        "responses",
        {"input": "hi", "max_output_tokens": 5},
        "max_output_tokens",
        "integer_below_min_value",
        "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got 5 instead.",
    ),
    "integer_above_max_value": Refused(
        "responses",
        {"input": "hi", "top_logprobs": 50},
        "top_logprobs",
        "integer_above_max_value",
        "Invalid 'top_logprobs': integer above maximum value. Expected a value <= 20, but got 50 instead.",
    ),
    "empty_array": Refused(
        "chat/completions",
        {"messages": []},
        "messages",
        "empty_array",
        "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
    ),
    "chat_without_a_model": Refused(
        "chat/completions", {"messages": _MESSAGES, "model": None}, None, None, "you must provide a model parameter"
    ),
}


@pytest.mark.parametrize("case", REFUSED.values(), ids=REFUSED)
async def test_an_invalid_body_is_refused_as_the_api_refuses_it(admin: httpx.AsyncClient, case: Refused) -> None:
    body = {"model": MODEL, **case.body}
    if body["model"] is None:
        del body["model"]

    response = await admin.post(f"/v1/{case.route}", json=body, headers=AUTH)

    assert response.status_code == 400
    assert response.headers["x-request-id"].startswith("req_")
    assert response.json() == {
        "error": {"message": case.message, "type": "invalid_request_error", "param": case.param, "code": case.code}
    }


async def test_a_body_that_is_not_an_object_cannot_be_parsed(admin: httpx.AsyncClient) -> None:
    response = await admin.post("/v1/chat/completions", content=b"[1, 2]", headers=AUTH)

    assert response.status_code == 400
    assert response.json()["error"] == {
        "message": "We could not parse the JSON body of your request.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


async def test_the_sdks_own_requests_are_accepted(llm: openai.AsyncOpenAI) -> None:
    """Everything the services send passes the published schema (a false refusal would be a bug here)."""
    await llm.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "Coach."},
            {"role": "user", "content": [{"type": "text", "text": "x"}]},
        ],
        response_format=chat_response_format(ExerciseProfile),
        max_completion_tokens=4000,
        stream_options=None,
        temperature=0.2,
    )
    await llm.responses.create(
        model=MODEL,
        input=[{"role": "user", "content": [{"type": "input_text", "text": "Exercise: Plank"}]}],
        instructions="Coach.",
        text={"format": responses_text_format(ExerciseProfile)},
        max_output_tokens=4000,
        metadata={"request_id": "r1"},
        store=False,
    )


LOOSE_SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string", "maxLength": 80}},
    "required": ["title"],
    "additionalProperties": False,
}
PROBLEM = "In context=('properties', 'title'), 'maxLength' is not permitted."


async def test_a_strict_chat_schema_outside_the_subset_is_refused(llm: openai.AsyncOpenAI) -> None:
    response_format: Any = {
        "type": "json_schema",
        "json_schema": {"name": "Note", "schema": LOOSE_SCHEMA, "strict": True},
    }
    with pytest.raises(openai.BadRequestError) as caught:
        await llm.chat.completions.create(model=MODEL, messages=_MESSAGES, response_format=response_format)

    assert caught.value.status_code == 400
    assert (caught.value.type, caught.value.param, caught.value.code) == (
        "invalid_request_error",
        "response_format",
        None,
    )
    assert _message(caught.value) == f"Invalid schema for response_format 'Note': {PROBLEM}"


async def test_a_strict_responses_schema_outside_the_subset_is_refused(llm: openai.AsyncOpenAI) -> None:
    text: Any = {"format": {"type": "json_schema", "name": "Note", "schema": LOOSE_SCHEMA, "strict": True}}
    with pytest.raises(openai.BadRequestError) as caught:
        await llm.responses.create(model=MODEL, input="hi", text=text, background=True)

    assert (caught.value.type, caught.value.param, caught.value.code) == (
        "invalid_request_error",
        "text.format.schema",
        "invalid_json_schema",
    )
    assert _message(caught.value) == f"Invalid schema for response_format 'Note': {PROBLEM}"


async def test_the_same_schema_without_strict_is_accepted(llm: openai.AsyncOpenAI) -> None:
    response_format: Any = {"type": "json_schema", "json_schema": {"name": "Note", "schema": LOOSE_SCHEMA}}
    completion = await llm.chat.completions.create(model=MODEL, messages=_MESSAGES, response_format=response_format)

    assert json.loads(completion.choices[0].message.content or "")["title"]


@pytest.mark.parametrize("model", ["xyz", "gpt-4o-mini-typo"])
async def test_an_unknown_model_is_not_found(llm: openai.AsyncOpenAI, model: str) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await llm.chat.completions.create(model=model, messages=_MESSAGES)
    with pytest.raises(openai.NotFoundError) as caught_responses:
        await llm.responses.create(model=model, input="hi")

    for error in (caught.value, caught_responses.value):
        assert error.status_code == 404
        assert _message(error) == f"The model `{model}` does not exist or you do not have access to it."
        assert (error.type, error.param, error.code) == ("invalid_request_error", None, "model_not_found")


async def test_a_model_the_account_may_not_use_is_not_found(llm: openai.AsyncOpenAI, admin: httpx.AsyncClient) -> None:
    (await admin.patch("/_sim/config", json={"models": ["gpt-4o-mini"]})).raise_for_status()

    with pytest.raises(openai.NotFoundError):
        await llm.chat.completions.create(model="gpt-5", messages=_MESSAGES)
    assert [m.id async for m in llm.models.list()] == ["gpt-4o-mini"]
    assert (await admin.patch("/_sim/config", json={"models": ["m-one"]})).status_code == 422


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
async def test_a_chat_output_cap_above_the_models_is_refused(llm: openai.AsyncOpenAI, field: str) -> None:
    caps: Any = {field: 20000}
    with pytest.raises(openai.BadRequestError) as caught:
        await llm.chat.completions.create(model=MODEL, messages=_MESSAGES, **caps)

    assert _message(caught.value) == (
        f"{field} is too large: 20000. This model supports at most 16384 completion tokens, whereas you provided 20000."
    )
    assert (caught.value.param, caught.value.code) == (field, "invalid_value")


async def test_a_responses_output_cap_above_the_models_is_refused(llm: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await llm.responses.create(model="gpt-4.1-mini", input="hi", max_output_tokens=40000)

    assert (caught.value.param, caught.value.code) == ("max_output_tokens", "invalid_value")
    assert "supports at most 32768" in _message(caught.value)


async def test_caps_up_to_the_models_limit_are_accepted(llm: openai.AsyncOpenAI) -> None:
    await llm.chat.completions.create(model="gpt-5-nano", messages=_MESSAGES, max_completion_tokens=128000)
    await llm.responses.create(model="o4-mini", input="hi", max_output_tokens=100000)


def _long_prompt(tokens: int) -> str:
    return "word " * (tokens * 4 // 5)


def _said(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


async def test_a_prompt_beyond_the_context_window_is_refused(llm: openai.AsyncOpenAI) -> None:
    prompt = _long_prompt(130_000)
    with pytest.raises(openai.BadRequestError) as chat:
        await llm.chat.completions.create(model=MODEL, messages=_said(prompt))
    with pytest.raises(openai.BadRequestError) as responses:
        await llm.responses.create(model=MODEL, input=prompt)

    assert _message(chat.value).startswith(
        "This model's maximum context length is 128000 tokens. However, your messages"
    )
    assert (chat.value.param, chat.value.code) == ("messages", "context_length_exceeded")
    assert _message(responses.value) == (
        "Your input exceeds the context window of this model. Please adjust your input and try again."
    )
    assert (responses.value.param, responses.value.code) == ("input", "context_length_exceeded")


async def test_a_prompt_and_a_cap_beyond_the_context_window_are_refused(llm: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await llm.chat.completions.create(model=MODEL, messages=_said(_long_prompt(120_000)), max_tokens=10_000)

    assert "(120007 in the messages, 10000 in the completion)" in _message(caught.value)
    assert caught.value.code == "context_length_exceeded"


async def test_a_reply_is_cut_where_the_context_window_ends(llm: openai.AsyncOpenAI) -> None:
    """Without a cap, the reply may use what the prompt left of the window, and no more."""
    completion = await llm.chat.completions.create(model=MODEL, messages=_said(_long_prompt(127_990)))

    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens + completion.usage.completion_tokens == 128_000


async def test_a_reasoning_model_refuses_max_tokens_and_a_temperature_but_the_default(llm: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as max_tokens:
        await llm.chat.completions.create(model="gpt-5-mini", messages=_MESSAGES, max_tokens=100)
    with pytest.raises(openai.BadRequestError) as temperature:
        await llm.chat.completions.create(model="o4-mini", messages=_MESSAGES, temperature=0.2)

    assert _message(max_tokens.value) == (
        "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."
    )
    assert (max_tokens.value.param, max_tokens.value.code) == ("max_tokens", "unsupported_parameter")
    assert _message(temperature.value) == (
        "Unsupported value: 'temperature' does not support 0.2 with this model. "
        "Only the default (1) value is supported."
    )
    assert (temperature.value.param, temperature.value.code) == ("temperature", "unsupported_value")
    await llm.chat.completions.create(model="gpt-5-mini", messages=_MESSAGES, max_completion_tokens=100, temperature=1)


async def test_stream_options_without_stream_are_refused(llm: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await llm.chat.completions.create(model=MODEL, messages=_MESSAGES, stream_options={"include_usage": True})

    assert _message(caught.value) == "The 'stream_options' parameter is only allowed when 'stream' is enabled."
    assert caught.value.param == "stream_options"


def test_chat_bodies_that_differ_only_in_their_words_get_one_verdict_and_other_differences_count() -> None:
    # The verdict is kept per shape (message texts blanked); what the schemas constrain still decides.

    def body(content: object, role: str = "user") -> dict[str, Any]:
        return {
            "model": "gpt-4o-mini",
            "messages": [{"role": "system", "content": "be brief"}, {"role": role, "content": content}],
        }

    assert refusal("create_chat_completion", body("hello")) is None
    assert refusal("create_chat_completion", body("a different text entirely")) is None
    not_text = refusal("create_chat_completion", body(5))
    bad_role = refusal("create_chat_completion", body("hello", role="robot"))
    assert not_text is not None and not_text.status == 400 and not_text.param == "messages[1].content"
    assert bad_role is not None and bad_role.status == 400
    assert refusal("create_chat_completion", body("hello")) is None  # a refusal of one shape stays with it


def test_bodies_that_differ_only_in_their_prompt_cache_key_share_a_verdict_and_a_non_string_key_is_refused() -> None:
    # Each request's calls name their own cache key; it is any string to the schema, so it is
    # blanked in the shape (one check per shape, not per request), and a key that is not a string
    # is still refused.
    def body(key: object) -> dict[str, Any]:
        return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "prompt_cache_key": key}

    _chat_verdict.cache_clear()
    assert refusal("create_chat_completion", body("request-1")) is None
    assert refusal("create_chat_completion", body("request-2")) is None
    assert _chat_verdict.cache_info().misses == 1
    not_text = refusal("create_chat_completion", body(7))
    assert not_text is not None and not_text.status == 400 and not_text.param == "prompt_cache_key"
