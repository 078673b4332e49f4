"""The fallback model: the same call made on it when the primary's provider is down or refuses, and
only then (``service_runtime/llm/fallback.py``), over the in-memory ``ScriptedCalls``."""

import asyncio
import uuid
from typing import Any

import pydantic
import pytest

from contracts.events import LlmCallRecorded
from service_runtime.llm import InvalidReply, Prompt, first_usable
from service_runtime.llm.fake import ScriptedCalls
from service_runtime.llm.fallback import FALLBACK_REASONS, WithFallback
from service_runtime.llm.metering import LlmMeter
from service_runtime.logs import bind_request_id
from service_runtime.metrics import LLM_FALLBACKS
from service_runtime.outcomes import GiveUp, Misconfigured, RetryLater
from services.planner.settings import PlannerSettings
from services.profiler.settings import ProfilerSettings
from tests.fakes import RecordingPublisher

PRIMARY = "gpt-4o-mini"
FALLBACK = "gpt-4.1-mini"
PROMPT = Prompt(("You write greetings.",), "Say hello.", cache_key="req-1")


class Greeting(pydantic.BaseModel):
    text: str


def failing(outcome: BaseException, model: str = PRIMARY, **kwargs: Any) -> ScriptedCalls:
    return ScriptedCalls(lambda key, prompt, reply_type: outcome, model=model, **kwargs)


def answering(text: str, model: str = FALLBACK, **kwargs: Any) -> ScriptedCalls:
    return ScriptedCalls(lambda key, prompt, reply_type: Greeting(text=text), model=model, **kwargs)


def fallbacks(reason: str, stage: str = "test-fallback") -> float:
    value: float = LLM_FALLBACKS.labels(stage, PRIMARY, FALLBACK, reason)._value.get()
    return value


PROVIDER_FAILURES = [
    RetryLater("llm_server_error"),
    RetryLater("llm_unreachable"),
    RetryLater("llm_timeout"),
    RetryLater("llm_stuck_queued"),
    RetryLater("llm_rate_limited", 2.0),
    GiveUp("llm_model_not_found", "HTTP 404: The model `gpt-4o-mni` does not exist"),
]


@pytest.mark.parametrize("failure", PROVIDER_FAILURES, ids=lambda f: f.reason)
async def test_a_provider_failure_of_the_primary_makes_the_same_call_on_the_fallback(
    failure: RetryLater | GiveUp,
) -> None:
    seen: list[tuple[str, Prompt, type[Any]]] = []

    def fallback_answer(key: str, prompt: Prompt, reply_type: type[Any]) -> Greeting:
        seen.append((key, prompt, reply_type))
        return Greeting(text="hello from the fallback")

    primary = failing(failure)
    fallback = ScriptedCalls(fallback_answer, model=FALLBACK)
    before = fallbacks(failure.reason)

    reply = await WithFallback(primary, fallback, stage="test-fallback").call("req-1.week.3", PROMPT, Greeting)

    assert reply.parsed == Greeting(text="hello from the fallback")
    assert reply.usage.model == FALLBACK
    assert primary.paid == ["req-1.week.3"]
    # Its own key, so a background response recorded for one model is never re-attached to as the other's.
    assert seen == [("req-1.week.3.fallback", PROMPT, Greeting)]
    assert fallbacks(failure.reason) - before == 1


@pytest.mark.parametrize(
    "failure",
    [
        InvalidReply("the model refused: no"),
        RetryLater("invalid_llm_reply"),
        RetryLater("llm_capacity_unavailable"),
        RetryLater("llm_conflict"),
        RetryLater("llm_response_lost"),
        GiveUp("llm_quota_exhausted", "the LLM account has no quota left"),
        GiveUp("llm_rejected_request", "HTTP 400: bad"),
        GiveUp("llm_cancelled"),
        Misconfigured("llm_misconfigured", "HTTP 400: Invalid schema for response_format 'Greeting'"),
    ],
    ids=lambda f: getattr(f, "reason", type(f).__name__),
)
async def test_other_failures_are_not_fallback_cases(failure: Exception) -> None:
    fallback = answering("unused")

    with pytest.raises(type(failure)) as raised:
        await WithFallback(failing(failure), fallback, stage="test-fallback").call("k", PROMPT, Greeting)

    assert str(raised.value) == str(failure)
    assert fallback.paid == []


@pytest.mark.parametrize(
    "fallback_failure",
    [RetryLater("llm_server_error"), GiveUp("llm_model_not_found", "HTTP 404"), Misconfigured("llm_misconfigured")],
    ids=lambda f: f.reason,
)
async def test_when_the_fallback_fails_too_the_primarys_outcome_is_raised(
    fallback_failure: RetryLater | GiveUp | Misconfigured,
) -> None:
    primary_failure = RetryLater("llm_rate_limited", 7.0)
    fallback = failing(fallback_failure, model=FALLBACK)

    with pytest.raises(RetryLater) as raised:
        await WithFallback(failing(primary_failure), fallback, stage="test-fallback").call("k", PROMPT, Greeting)

    assert raised.value is primary_failure
    assert raised.value.delay_seconds == 7.0
    assert raised.value.__cause__ is fallback_failure
    assert fallback.paid == ["k.fallback"]


async def test_an_unusable_reply_of_the_fallback_is_billed_and_left_to_the_retry_ladder() -> None:
    calls = WithFallback(
        failing(RetryLater("llm_server_error")),
        failing(InvalidReply("the reply was truncated (finish_reason=length)"), model=FALLBACK),
        stage="test-fallback",
    )

    with pytest.raises(GiveUp) as raised:
        await first_usable(calls, "k", PROMPT, Greeting, tries=2)

    assert raised.value.reason == "invalid_llm_reply"


async def test_a_reply_failing_its_checks_is_not_a_fallback_case_and_is_forgotten_on_both_models() -> None:
    primary = answering("hi", model=PRIMARY)
    fallback = answering("unused")
    calls = WithFallback(primary, fallback, stage="test-fallback")

    with pytest.raises(GiveUp) as raised:
        await first_usable(calls, "k", PROMPT, Greeting, tries=2, problems_of=lambda g: ["too short"])

    assert raised.value.reason == "reply_quality"
    assert primary.paid == ["k", "k"]
    assert fallback.paid == []
    assert primary.forgotten == ["k", "k"]
    assert fallback.forgotten == ["k.fallback", "k.fallback"]


async def test_abandoning_stops_the_call_on_both_models() -> None:
    primary = failing(RetryLater("llm_timeout"), reattach=True)
    fallback = answering("unused", reattach=True)

    await WithFallback(primary, fallback, stage="test-fallback").abandon("k")

    assert primary.abandoned == ["k"]
    assert fallback.abandoned == ["k.fallback"]


async def test_the_ledger_names_the_model_that_served_the_call() -> None:
    ledger = RecordingPublisher()
    primary = failing(RetryLater("llm_unreachable"), meter=LlmMeter("planner", ledger=ledger, model=PRIMARY))
    fallback = answering("hello", meter=LlmMeter("planner", ledger=ledger, model=FALLBACK))
    calls = WithFallback(primary, fallback, stage="planner")

    async def handling_a_request() -> None:
        bind_request_id(uuid.uuid4())  # in this task only
        await calls.call("k", PROMPT, Greeting)

    await asyncio.create_task(handling_a_request())

    (recorded,) = ledger.of_type(LlmCallRecorded)
    assert isinstance(recorded, LlmCallRecorded)
    assert (recorded.model, recorded.outcome) == (FALLBACK, "ok")


def test_every_fallback_series_starts_at_zero() -> None:
    WithFallback(answering("a", model=PRIMARY), answering("b"), stage="test-zero")

    assert {reason: fallbacks(reason, "test-zero") for reason in FALLBACK_REASONS} == dict.fromkeys(
        FALLBACK_REASONS, 0.0
    )


def test_deadlines_and_fallback_settings_have_their_defaults_and_refuse_nonsense() -> None:
    planner = PlannerSettings(OPENAI_API_KEY="sk-test")
    assert (planner.llm_first_token_seconds, planner.queued_seconds, planner.fallback_model) == (60.0, 300.0, None)
    assert ProfilerSettings(OPENAI_API_KEY="sk-test", PROFILER_FALLBACK_MODEL=" ").fallback_model is None
    assert PlannerSettings(OPENAI_API_KEY="sk-test", PLANNER_FALLBACK_MODEL=FALLBACK).fallback_model == FALLBACK
    with pytest.raises(pydantic.ValidationError, match="LLM_FIRST_TOKEN_SECONDS"):
        PlannerSettings(OPENAI_API_KEY="sk-test", LLM_FIRST_TOKEN_SECONDS=0)
    with pytest.raises(pydantic.ValidationError, match="PLANNER_QUEUED_SECONDS"):
        PlannerSettings(OPENAI_API_KEY="sk-test", PLANNER_QUEUED_SECONDS=-1)
