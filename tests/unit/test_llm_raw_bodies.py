"""Our adapters build their request bodies and send them as bytes (``service_runtime.llm.raw``);
each must be the body the SDK's typed method sends for the same call, to the same path, with the
same headers but the SDK's per-call ones. Both requests are caught by httpx's own fake transport
before they leave the process."""

import json
import uuid
from typing import Any, Literal

import httpx2  # the SDK's HTTP library
import openai
import pytest
from openai.types.responses import Response

from contracts.plan import TrainingWeek
from llm_simulator.protocol import Usage
from llm_simulator.responses_protocol import ResponseCreateRequest, output_message, response_object
from service_runtime.llm import Prompt
from service_runtime.llm.chat import ChatCompletions
from service_runtime.llm.response_ids import ResponseRecord
from service_runtime.llm.responses import BackgroundResponses
from service_runtime.llm.responses_api import ResponsesApi, Unfinished
from service_runtime.model_limits import output_cap
from service_runtime.strict_schema import chat_response_format, responses_text_format

MODEL = "gpt-4o-mini"
PROMPT = Prompt(("Write one week.",), "Beginner, three days a week.", after=("Week 2 of 8.",), cache_key="plan:v1")
# Headers the SDK sets per call (a fresh idempotency key, the retry count, timeouts), or that tell
# its own code how to hand the reply over: neither is part of what the call asks.
_PER_CALL = {"x-stainless-retry-count", "x-stainless-read-timeout", "idempotency-key", "x-stainless-raw-response"}


class _Caught(Exception):
    pass


def _client(caught: list[httpx2.Request]) -> openai.AsyncOpenAI:
    def handler(request: httpx2.Request) -> httpx2.Response:
        caught.append(request)
        raise _Caught  # nothing answers (and the SDK lets it through): only the request matters

    return openai.AsyncOpenAI(
        api_key="sk-test",
        base_url="http://provider.test/v1",
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)),
    )


def _sent(request: httpx2.Request) -> tuple[str, str, dict[str, str], Any]:
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _PER_CALL}
    return request.method, str(request.url), headers, json.loads(request.content) if request.content else None


class _NoRecords:
    async def get(self, key: str) -> ResponseRecord | None:
        return None

    async def record(self, key: str, record: ResponseRecord, replacing: ResponseRecord | None) -> ResponseRecord:
        return record

    async def forget(self, key: str, record: ResponseRecord) -> None:
        return None


@pytest.mark.parametrize("stream", [True, False])
async def test_a_chat_call_sends_what_the_sdks_create_sends(stream: bool) -> None:
    ours: list[httpx2.Request] = []
    sdks: list[httpx2.Request] = []
    chat = ChatCompletions(_client(ours), model=MODEL, deadline_seconds=5, stream=stream)
    with pytest.raises(_Caught):
        await chat.call("k", PROMPT, TrainingWeek)
    with pytest.raises(_Caught):
        await _client(sdks).chat.completions.create(  # type: ignore[call-overload]  # roles as str
            model=MODEL,
            messages=[{"role": role, "content": text} for role, text in PROMPT.messages()],
            response_format=chat_response_format(TrainingWeek),
            max_completion_tokens=output_cap(MODEL, TrainingWeek) or openai.omit,
            prompt_cache_key=PROMPT.cache_key or openai.omit,
            **({"stream": True, "stream_options": {"include_usage": True}} if stream else {}),
        )
    assert len(ours) == len(sdks) == 1
    assert _sent(ours[0]) == _sent(sdks[0])


async def test_a_background_response_is_created_with_what_the_sdks_create_sends() -> None:
    ours: list[httpx2.Request] = []
    sdks: list[httpx2.Request] = []
    key = f"{uuid.uuid4()}.week2"
    calls = BackgroundResponses(_client(ours), _NoRecords(), model=MODEL, deadline_seconds=5, poll_interval_seconds=0.1)
    with pytest.raises(_Caught):
        await calls.call(key, PROMPT, TrainingWeek)
    with pytest.raises(_Caught):
        await _client(sdks).responses.create(  # type: ignore[call-overload]  # roles as str
            model=MODEL,
            input=[{"role": role, "content": text} for role, text in PROMPT.messages()],
            text={"format": responses_text_format(TrainingWeek)},
            max_output_tokens=output_cap(MODEL, TrainingWeek) or openai.omit,
            background=True,
            store=True,
            metadata={"call": key},
            prompt_cache_key=PROMPT.cache_key or openai.omit,
        )
    assert len(ours) == len(sdks) == 1
    assert _sent(ours[0]) == _sent(sdks[0])


# A background request as the simulator keeps it: its responses echo the reply format.
_BACKGROUND = ResponseCreateRequest.model_validate(
    {"model": MODEL, "input": "Beginner.", "background": True, "text": {"format": responses_text_format(TrainingWeek)}}
)


def _answering(body: dict[str, Any], caught: list[httpx2.Request]) -> openai.AsyncOpenAI:
    """A client whose every request is caught and answered 200 with ``body``."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        caught.append(request)
        return httpx2.Response(200, json=body)

    return openai.AsyncOpenAI(
        api_key="sk-test",
        base_url="http://provider.test/v1",
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)),
    )


async def test_a_poll_asks_what_the_sdks_retrieve_asks_and_reads_what_it_reads_but_the_echoed_format() -> None:
    body = response_object(
        response_id="resp_abc123",
        created_at=1_700_000_000,
        completed_at=1_700_000_042,
        status="completed",
        request=_BACKGROUND,
        output=[output_message("msg_1", '{"week": 1}', "completed")],
        usage=Usage(prompt_tokens=1200, completion_tokens=800, cached_tokens=1024),
    )
    caught: list[httpx2.Request] = []
    client = _answering(body, caught)
    api = ResponsesApi(client, model=MODEL, store=True, max_concurrent_polls=1, meter=None)

    ours = await api.retrieve("resp_abc123")
    sdks = await client.responses.retrieve("resp_abc123")

    assert _sent(caught[0]) == _sent(caught[1])
    assert caught[0].method == "GET" and caught[0].url.path == "/v1/responses/resp_abc123"
    assert isinstance(ours, Response) and ours.text is None and sdks.text is not None
    assert ours.model_dump(exclude={"text"}) == sdks.model_dump(exclude={"text"})
    assert (ours.output_text, ours.status, ours.usage) == ('{"week": 1}', "completed", sdks.usage)


@pytest.mark.parametrize("status", ["queued", "in_progress"])
async def test_a_poll_of_a_response_still_being_written_reads_only_its_status(
    status: Literal["queued", "in_progress"],
) -> None:
    body = response_object(
        response_id="resp_abc123", created_at=1_700_000_000, status=status, request=_BACKGROUND, output=[]
    )
    client = _answering(body, [])
    api = ResponsesApi(client, model=MODEL, store=True, max_concurrent_polls=1, meter=None)

    assert await api.retrieve("resp_abc123") == Unfinished(status)
    assert (await client.responses.retrieve("resp_abc123")).status == status
