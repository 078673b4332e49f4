"""What the simulator answers parses as the real API's answers: the SDK's own response types,
validated (the client builds them with ``construct``, which checks nothing), OpenAI's published
response schemas when the reference is on this machine, and errors through the SDK's real client."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import httpx2
import openai
import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from starlette.applications import Starlette

from llm_simulator import SimulatorConfig, create_app, openapi_extract
from llm_simulator.request_validation import read_as_json_schema

MODEL = "gpt-4o-mini"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "Any tips for squats?"}]}
# Where the real API sends null although the description does not say it may (the SDK's types
# allow it): ``user`` on every response, and ``usage`` before a background response has any.
_NULL_IN_PRACTICE = {("Response", "user"), ("Response", "usage")}


@pytest.fixture
def app() -> Starlette:
    return create_app(SimulatorConfig(tokens_per_second=0, first_token_delay_seconds=0, seed=5))


@pytest.fixture
async def wire(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """Raw HTTP to a fresh in-process simulator (no server: ``httpx.ASGITransport``)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sim", headers={"Authorization": "Bearer k"}
    ) as c:
        yield c


@pytest.fixture
async def sdk(app: Starlette) -> AsyncIterator[openai.AsyncOpenAI]:
    """The SDK's real client over its own HTTP stack (``httpx2``), into the same in-process app."""
    http = openai.DefaultAsyncHttpxClient(transport=httpx2.ASGITransport(app=app))
    async with openai.AsyncOpenAI(base_url="http://sim/v1", api_key="k", http_client=http, max_retries=0) as client:
        yield client


async def _chunks(wire: httpx.AsyncClient, body: dict[str, Any]) -> list[dict[str, Any]]:
    async with wire.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as stream:
        lines = [line async for line in stream.aiter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    return [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]


@pytest.mark.parametrize("directive", ["", "[[sim:fault=refusal]] ", "[[sim:fault=truncate]] "])
async def test_chat_completions_validate_as_the_sdks_chat_completion(wire: httpx.AsyncClient, directive: str) -> None:
    body = {**CHAT, "messages": [{"role": "user", "content": f"{directive}Any tips?"}]}
    completion = (await wire.post("/v1/chat/completions", json=body)).json()

    parsed = ChatCompletion.model_validate(completion, strict=True)

    assert parsed.choices[0].finish_reason in ("stop", "length")
    _check_against_openapi("CreateChatCompletionResponse", completion)


async def test_stream_chunks_validate_as_the_sdks_chunk(wire: httpx.AsyncClient) -> None:
    chunks = await _chunks(wire, {**CHAT, "stream_options": {"include_usage": True}})

    parsed = [ChatCompletionChunk.model_validate(chunk, strict=True) for chunk in chunks]

    assert parsed[0].choices[0].delta.role == "assistant"
    assert parsed[-1].choices == []
    assert parsed[-1].usage is not None
    for chunk in chunks:
        _check_against_openapi("CreateChatCompletionStreamResponse", chunk)


async def test_responses_in_every_status_validate_as_the_sdks_response(wire: httpx.AsyncClient) -> None:
    def create(text: str, **extra: Any) -> dict[str, Any]:
        return {"model": MODEL, "input": text, **extra}

    answered = (await wire.post("/v1/responses", json=create("Tips?"))).json()
    cut = (await wire.post("/v1/responses", json=create("Tips?", max_output_tokens=16))).json()
    queued = (await wire.post("/v1/responses", json=create("Tips?", background=True))).json()
    failed = (await wire.post("/v1/responses", json=create("[[sim:fault=server_error]] Tips?", background=True))).json()
    hanging = (await wire.post("/v1/responses", json=create("[[sim:fault=hang]] Tips?", background=True))).json()
    cancelled = (await wire.post(f"/v1/responses/{hanging['id']}/cancel")).json()
    await asyncio.sleep(0.05)
    completed = (await wire.get(f"/v1/responses/{queued['id']}")).json()
    failed = (await wire.get(f"/v1/responses/{failed['id']}")).json()

    statuses = []
    for body in (answered, cut, queued, completed, failed, cancelled):
        statuses.append(Response.model_validate(body, strict=True).status)
        _check_against_openapi("Response", body)
    assert statuses == ["completed", "incomplete", "queued", "completed", "failed", "cancelled"]


async def test_models_and_errors_match_openais_schemas(wire: httpx.AsyncClient) -> None:
    _check_against_openapi("ListModelsResponse", (await wire.get("/v1/models")).json())
    for response in (
        await wire.get("/v1/responses/resp_nope"),
        await wire.post("/v1/chat/completions", json={**CHAT, "foo": 1}),
        await wire.post("/v1/chat/completions", json={**CHAT, "model": "xyz"}),
    ):
        assert response.headers["x-request-id"].startswith("req_")
        _check_against_openapi("ErrorResponse", response.json())


async def test_errors_reach_the_sdk_as_the_apis_exceptions(sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as unknown:
        await sdk.responses.create(model=MODEL, input="hi", extra_body={"foo": 1})
    with pytest.raises(openai.BadRequestError) as unrecognized:
        await sdk.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], extra_body={"x": 1}
        )
    with pytest.raises(openai.NotFoundError) as missing:
        await sdk.responses.retrieve("resp_nope")
    answered = await sdk.responses.create(model=MODEL, input="hi")
    with pytest.raises(openai.BadRequestError) as not_background:
        await sdk.responses.cancel(answered.id)

    assert (unknown.value.type, unknown.value.param, unknown.value.code) == (
        "invalid_request_error",
        "foo",
        "unknown_parameter",
    )
    assert (unrecognized.value.type, unrecognized.value.param, unrecognized.value.code) == (
        "invalid_request_error",
        None,
        None,
    )
    assert missing.value.status_code == 404
    assert not_background.value.status_code == 400
    for error in (unknown.value, unrecognized.value, missing.value, not_background.value):
        assert error.request_id is not None
        assert error.request_id.startswith("req_")


def _check_against_openapi(schema: str, body: object) -> None:
    """``body`` against OpenAI's published schema, when the reference is on this machine."""
    validator = _reference_validator(schema)
    if validator is None:
        return
    problems = [
        error
        for error in validator.iter_errors(body)
        if not (error.instance is None and (schema, ".".join(map(str, error.absolute_path))) in _NULL_IN_PRACTICE)
    ]
    assert not problems, [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in problems]


_VALIDATORS: dict[str, Draft202012Validator] = {}
_REPLY_SCHEMAS = (
    "CreateChatCompletionResponse",
    "CreateChatCompletionStreamResponse",
    "Response",
    "ListModelsResponse",
    "ErrorResponse",
)


def _reference_validator(schema: str) -> Draft202012Validator | None:
    reference = openapi_extract.find_reference()
    if reference is None:
        return None
    if not _VALIDATORS:
        schemas = json.loads(reference.read_text(encoding="utf-8"))["components"]["schemas"]
        read = {name: read_as_json_schema(s, close_objects=False) for name, s in schemas.items()}
        resource = Resource.from_contents({"components": {"schemas": read}}, default_specification=DRAFT202012)
        registry: Registry[Any] = Registry().with_resource("urn:openai", resource)
        for name in ("CreateChatCompletionResponse", "CreateChatCompletionStreamResponse", "Response"):
            _VALIDATORS[name] = Draft202012Validator(
                {"$ref": f"urn:openai#/components/schemas/{name}"}, registry=registry
            )
        for name in ("ListModelsResponse", "ErrorResponse"):
            _VALIDATORS[name] = Draft202012Validator(
                {"$ref": f"urn:openai#/components/schemas/{name}"}, registry=registry
            )
    return _VALIDATORS[schema]
