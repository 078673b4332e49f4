"""The simulator's Files and Batch APIs through the real ``openai`` SDK: a batch runs validating ->
in_progress -> completed and its output lines are chat completions (the profile a chat call gets),
input errors fail the batch line by line, a request the chat endpoint refuses is its error-file
line with the endpoint's own body, faults land per line, and cancel and the refusals are the API's."""

import asyncio
import json
from typing import Any, Final

import openai
import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from openai.types import Batch, FileObject
from openai.types.chat import ChatCompletion
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from contracts.plan import ExerciseProfile
from llm_simulator import openapi_extract
from llm_simulator.request_validation import read_as_json_schema
from service_runtime.strict_schema import chat_response_format
from tests.unit.llm_simulator_in_process import Clock, InProcess, message

CHAT: Final = "/v1/chat/completions"
MODEL = "gpt-4o-mini"
FINISHED = ("completed", "failed", "cancelled", "expired")


def profile_body(name: str, **changes: Any) -> dict[str, Any]:
    """The body the profiler sends for one exercise (its prompt shape, strict schema and cap)."""
    return {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Profile the exercise."},
            {"role": "user", "content": f"Exercise: {name}"},
        ],
        "response_format": chat_response_format(ExerciseProfile),
        "max_completion_tokens": 2048,
        **changes,
    }


def line(custom_id: str, body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": CHAT, "body": body, **changes}


def jsonl(*lines: object) -> bytes:
    return "".join((item if isinstance(item, str) else json.dumps(item)) + "\n" for item in lines).encode()


async def run(sim: InProcess, content: bytes) -> tuple[Batch, list[str]]:
    """Upload ``content``, create its batch and poll it to the end: the batch and the statuses seen."""
    uploaded = await sim.sdk.files.create(file=("input.jsonl", content), purpose="batch")
    batch = await sim.sdk.batches.create(input_file_id=uploaded.id, endpoint=CHAT, completion_window="24h")
    seen: list[str] = [batch.status]
    while batch.status not in FINISHED:
        await asyncio.sleep(0.02)
        batch = await sim.sdk.batches.retrieve(batch.id)
        if batch.status != seen[-1]:
            seen.append(batch.status)
    return batch, seen


async def lines_of(sim: InProcess, file_id: str | None) -> dict[str, dict[str, Any]]:
    if file_id is None:
        return {}
    content = await sim.sdk.files.content(file_id)
    return {(item := json.loads(raw))["custom_id"]: item for raw in content.text.splitlines()}


async def test_a_batch_runs_to_completed_and_each_output_line_is_a_chat_completion_of_its_profile() -> None:
    names = ["Goblet Squat", "Romanian Deadlift", "Zercher Carry"]
    async with InProcess(Clock(), batch_seconds=0.2) as sim:
        batch, seen = await run(sim, jsonl(*(line(f"e{i}", profile_body(n)) for i, n in enumerate(names))))
        output = await lines_of(sim, batch.output_file_id)
        output_file = await sim.sdk.files.retrieve(batch.output_file_id or "")
        wire_batch = (await sim.wire.get(f"/v1/batches/{batch.id}")).json()
        stats = await sim.stats()

    assert seen == ["validating", "in_progress", "finalizing", "completed"]
    assert (batch.model, batch.error_file_id, batch.errors) == (MODEL, None, None)
    assert batch.request_counts is not None and batch.request_counts.model_dump() == {
        "total": 3,
        "completed": 3,
        "failed": 0,
    }
    for i, name in enumerate(names):
        response = output[f"e{i}"]["response"]
        assert response["status_code"] == 200 and response["request_id"].startswith("req_")
        assert output[f"e{i}"]["error"] is None and output[f"e{i}"]["id"].startswith("batch_req_")
        completion = ChatCompletion.model_validate(response["body"], strict=True)
        assert ExerciseProfile.model_validate_json(completion.choices[0].message.content or "").name == name
    bodies = [item["response"]["body"]["usage"] for item in output.values()]
    assert batch.usage is not None
    assert batch.usage.input_tokens == sum(u["prompt_tokens"] for u in bodies)
    assert batch.usage.output_tokens == sum(u["completion_tokens"] for u in bodies)
    assert (output_file.purpose, output_file.filename) == ("batch_output", f"{batch.id}_output.jsonl")
    Batch.model_validate(wire_batch, strict=True)
    _check_against_openapi("Batch", wire_batch)
    assert stats["profiles_by_exercise"] == dict.fromkeys(names, 1)
    assert (stats["batches_created_total"], stats["batch_requests_total"]) == (1, 3)


async def test_a_batched_profile_is_the_one_a_chat_call_gets_from_the_same_seed() -> None:
    async with InProcess(Clock(), seed=11) as chat:
        direct = await chat.sdk.chat.completions.create(**profile_body("Goblet Squat"))
    async with InProcess(Clock(), seed=11, batch_seconds=0) as batched:
        batch, _ = await run(batched, jsonl(line("only", profile_body("Goblet Squat"))))
        output = await lines_of(batched, batch.output_file_id)

    assert output["only"]["response"]["body"]["choices"][0]["message"]["content"] == direct.choices[0].message.content


async def test_an_input_file_with_broken_lines_fails_the_batch_with_each_lines_error() -> None:
    good = profile_body("Goblet Squat")
    content = jsonl(
        line("a", good),
        "{not json",
        {"method": "POST", "url": CHAT, "body": good},
        line("b", good, url="/v1/embeddings"),
        line("a", good),
        line("c", good, method="GET"),
        line("d", {**good, "stream": True}),
        line("e", {**good, "model": "gpt-4o"}),
        line("f", {**good, "model": "gpt-nonexistent"}),
        line("g", {"messages": good["messages"]}),
    )
    async with InProcess(Clock(), batch_seconds=0.1) as sim:
        batch, seen = await run(sim, content)
        wire_batch = (await sim.wire.get(f"/v1/batches/{batch.id}")).json()

    assert seen == ["validating", "failed"]
    assert batch.failed_at is not None and batch.output_file_id is None and batch.error_file_id is None
    assert batch.errors is not None and batch.errors.data is not None
    found = [(e.line, e.code, e.param) for e in batch.errors.data]
    assert found == [
        (2, "invalid_json_line", None),
        (3, "missing_required_parameter", "custom_id"),
        (4, "invalid_url", "url"),
        (5, "duplicate_custom_id", "custom_id"),
        (6, "invalid_value", "method"),
        (7, "streaming_unsupported", "body.stream"),
        (8, "model_mismatch", "body.model"),
        (9, "model_not_found", "body.model"),
        (10, "invalid_request", "body.model"),
    ]
    assert batch.errors.data[0].message == "This line is not parseable as valid JSON."
    assert batch.errors.data[2].message == "The URL provided for this request does not match the batch endpoint."
    Batch.model_validate(wire_batch, strict=True)
    _check_against_openapi("Batch", wire_batch)


async def test_a_request_the_chat_endpoint_refuses_is_its_error_file_line_with_the_endpoints_own_body() -> None:
    too_long = profile_body("Goblet Squat", max_completion_tokens=50_000)
    unknown = profile_body("Goblet Squat", bogus=1)
    async with InProcess(Clock(), batch_seconds=0.1) as sim:
        refusals = [(await sim.wire.post(CHAT, json=body)).json() for body in (too_long, unknown)]
        batch, seen = await run(
            sim, jsonl(line("good", profile_body("Goblet Squat")), line("cap", too_long), line("param", unknown))
        )
        output = await lines_of(sim, batch.output_file_id)
        errors = await lines_of(sim, batch.error_file_id)

    assert seen[-1] == "completed"
    assert batch.request_counts is not None and (batch.request_counts.completed, batch.request_counts.failed) == (1, 2)
    assert list(output) == ["good"] and list(errors) == ["cap", "param"]
    for custom_id, refused_body in zip(("cap", "param"), refusals, strict=True):
        assert errors[custom_id]["error"] is None
        assert errors[custom_id]["response"]["status_code"] == 400
        assert errors[custom_id]["response"]["body"] == refused_body


async def test_faults_land_on_their_own_lines() -> None:
    def directed(kind: str) -> dict[str, Any]:
        return profile_body(f"Goblet Squat [[sim:fault={kind}]]")

    async with InProcess(Clock(), batch_seconds=0.1) as sim:
        batch, _ = await run(
            sim,
            jsonl(
                line("server", directed("server_error")),
                line("hang", directed("hang")),
                line("malformed", directed("malformed")),
                line("fine", profile_body("Goblet Squat")),
            ),
        )
        output = await lines_of(sim, batch.output_file_id)
        errors = await lines_of(sim, batch.error_file_id)

    assert errors["server"]["response"]["status_code"] == 500
    assert errors["server"]["response"]["body"]["error"]["type"] == "server_error"
    assert errors["hang"]["response"] is None and errors["hang"]["error"]["code"] == "request_timeout"
    content = output["malformed"]["response"]["body"]["choices"][0]["message"]["content"]
    with pytest.raises(ValueError, match="Invalid JSON"):
        ExerciseProfile.model_validate_json(content)
    assert ExerciseProfile.model_validate_json(output["fine"]["response"]["body"]["choices"][0]["message"]["content"])


async def test_a_cancelled_batch_keeps_what_it_answered_and_a_finished_one_cannot_be_cancelled() -> None:
    lines = [line(f"e{i}", profile_body(f"Exercise {i}")) for i in range(40)]
    async with InProcess(Clock(), batch_seconds=2.0) as sim:
        uploaded = await sim.sdk.files.create(file=("input.jsonl", jsonl(*lines)), purpose="batch")
        batch = await sim.sdk.batches.create(input_file_id=uploaded.id, endpoint=CHAT, completion_window="24h")
        while (batch := await sim.sdk.batches.retrieve(batch.id)).status != "in_progress":
            await asyncio.sleep(0.02)
        cancelling = await sim.sdk.batches.cancel(batch.id)
        while (batch := await sim.sdk.batches.retrieve(batch.id)).status == "cancelling":
            await asyncio.sleep(0.02)
        again = await sim.sdk.batches.cancel(batch.id)
        output = await lines_of(sim, batch.output_file_id)
        errors = await lines_of(sim, batch.error_file_id)
        (await sim.wire.patch("/_sim/config", json={"batch_seconds": 0.1})).raise_for_status()
        done, _ = await run(sim, jsonl(line("x", profile_body("Goblet Squat"))))
        with pytest.raises(openai.ConflictError) as conflict:
            await sim.sdk.batches.cancel(done.id)
        with pytest.raises(openai.NotFoundError):
            await sim.sdk.batches.cancel("batch_unknown")

    assert (cancelling.status, batch.status, again.status) == ("cancelling", "cancelled", "cancelled")
    assert batch.cancelling_at is not None and batch.cancelled_at is not None
    assert 0 < len(output) < 40 and len(output) + len(errors) == 40
    assert {item["error"]["code"] for item in errors.values()} == {"batch_cancelled"}
    assert message(conflict.value) == "Cannot cancel a batch with status 'completed'."


async def test_a_batch_on_a_missing_file_fails_and_uploads_and_creates_are_refused_as_the_api_refuses_them() -> None:
    async with InProcess(Clock(), batch_seconds=0.1) as sim:
        batch = await sim.sdk.batches.create(input_file_id="file-missing", endpoint=CHAT, completion_window="24h")
        while (batch := await sim.sdk.batches.retrieve(batch.id)).status not in FINISHED:
            await asyncio.sleep(0.02)
        with pytest.raises(openai.BadRequestError) as not_jsonl:
            await sim.sdk.files.create(file=("notes.txt", b"hello\n"), purpose="batch")
        with pytest.raises(openai.BadRequestError) as purpose:
            await sim.sdk.files.create(file=("input.jsonl", b"{}\n"), purpose="batches")  # type: ignore[arg-type]
        with pytest.raises(openai.NotFoundError) as unknown_file:
            await sim.sdk.files.retrieve("file-missing")
        with pytest.raises(openai.BadRequestError) as window:
            await sim.sdk.batches.create(input_file_id="f", endpoint=CHAT, completion_window="1h")  # type: ignore[arg-type]
        uploaded = await sim.sdk.files.create(file=("input.jsonl", b'{"a": 1}\n'), purpose="batch")
        listed = await sim.sdk.batches.list(limit=10)
        with pytest.raises(openai.NotFoundError):
            await sim.sdk.batches.retrieve("batch_unknown")

    FileObject.model_validate(uploaded.model_dump(), strict=True)
    _check_against_openapi("OpenAIFile", uploaded.model_dump())
    assert batch.status == "failed" and batch.errors is not None and batch.errors.data is not None
    assert (batch.errors.data[0].code, batch.errors.data[0].param) == ("invalid_request", "file_id")
    assert message(not_jsonl.value) == "Invalid file format for Batch API. Must be .jsonl"
    assert (purpose.value.code, purpose.value.param) == ("invalid_value", "purpose")
    assert (message(unknown_file.value), unknown_file.value.param) == ("No such File object: file-missing", "id")
    assert (window.value.code, window.value.param) == ("invalid_value", "completion_window")
    assert [b.id for b in listed.data] == [batch.id]


def _check_against_openapi(schema: str, body: dict[str, Any]) -> None:
    """``body`` against OpenAI's published schema when the reference is on this machine. The API
    sends null for what has not happened yet (the description's own examples do, though its
    types do not say so), so a null where a value is typed is not a problem."""
    reference = openapi_extract.find_reference()
    if reference is None:
        return
    schemas = json.loads(reference.read_text(encoding="utf-8"))["components"]["schemas"]
    read = {name: read_as_json_schema(s, close_objects=False) for name, s in schemas.items()}
    resource = Resource.from_contents({"components": {"schemas": read}}, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource("urn:openai", resource)
    validator = Draft202012Validator({"$ref": f"urn:openai#/components/schemas/{schema}"}, registry=registry)
    problems = [e for e in validator.iter_errors(body) if e.instance is not None]
    assert not problems, [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in problems]
