"""LLM metering: outcomes are a bounded set, costs follow the price table, dated model names match."""

import httpx
import openai
import pytest

from service_runtime.llm import InvalidReply
from service_runtime.llm.errors import METRIC_LABELS, classify
from service_runtime.llm.metering import LlmMeter
from service_runtime.metrics import LLM_CALLS, LLM_COST_USD, LLM_TOKENS
from service_runtime.outcomes import GiveUp, Misconfigured, RetryLater


def _status_error(kind: type[openai.APIStatusError], status: int, code: str | None = None) -> openai.APIStatusError:
    request = httpx.Request("POST", "http://llm/v1/chat/completions")
    body = {"error": {"code": code, "message": "x"}}
    return kind("x", response=httpx.Response(status, request=request, json=body), body=body)


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (InvalidReply("bad"), "invalid_reply"),
        (_status_error(openai.RateLimitError, 429), "rate_limited"),
        (_status_error(openai.RateLimitError, 429, "insufficient_quota"), "quota"),
        (_status_error(openai.InternalServerError, 500), "server_error"),
        (TimeoutError(), "timeout"),
        (openai.APIConnectionError(request=httpx.Request("POST", "http://llm")), "connection"),
        (ValueError("?"), "other"),
    ],
)
def test_failures_map_to_a_bounded_outcome(exc: BaseException, outcome: str) -> None:
    assert classify(exc).label == outcome
    assert outcome in METRIC_LABELS


@pytest.mark.parametrize(
    ("exc", "kind", "reason"),
    [
        (_status_error(openai.RateLimitError, 429), RetryLater, "llm_rate_limited"),
        (_status_error(openai.RateLimitError, 429, "insufficient_quota"), GiveUp, "llm_quota_exhausted"),
        (_status_error(openai.InternalServerError, 500), RetryLater, "llm_server_error"),
        (_status_error(openai.BadRequestError, 400, "invalid_json_schema"), Misconfigured, "llm_misconfigured"),
        (_status_error(openai.BadRequestError, 400, "invalid_value"), GiveUp, "llm_rejected_request"),
        (_status_error(openai.ConflictError, 409), RetryLater, "llm_conflict"),
        (TimeoutError(), RetryLater, "llm_timeout"),
        (openai.APIConnectionError(request=httpx.Request("POST", "http://llm")), RetryLater, "llm_unreachable"),
    ],
)
def test_one_table_gives_each_error_its_delivery_outcome(exc: BaseException, kind: type, reason: str) -> None:
    outcome = classify(exc).outcome
    assert isinstance(outcome, kind)
    assert outcome.reason == reason


def test_errors_that_are_not_the_providers_have_no_delivery_outcome() -> None:
    assert classify(ValueError("a bug")).outcome is None
    assert classify(InvalidReply("bad")).outcome is None


async def test_cost_follows_the_price_table_and_dated_model_names_share_their_entry() -> None:
    meter = LlmMeter("test-stage", {"gpt-4o-mini": (0.15, 0.60)})
    assert meter.cost_usd("gpt-4o-mini-2024-07-18", 1_000_000, 1_000_000) == pytest.approx(0.75)

    before = LLM_COST_USD.labels("test-stage", "gpt-4o-mini", "default")._value.get()
    await meter.record("gpt-4o-mini-2024-07-18", "ok", 12.0, prompt_tokens=2000, completion_tokens=10_000)

    assert LLM_CALLS.labels("test-stage", "gpt-4o-mini", "ok")._value.get() >= 1
    assert LLM_TOKENS.labels("test-stage", "gpt-4o-mini", "completion")._value.get() >= 10_000
    assert LLM_COST_USD.labels("test-stage", "gpt-4o-mini", "default")._value.get() - before == pytest.approx(0.0063)


async def test_an_unpriced_model_costs_nothing_and_keeps_its_name() -> None:
    meter = LlmMeter("test-stage", {})
    assert meter.cost_usd("mystery-model", 10**6, 10**6) == 0.0
    await meter.record("mystery-model", "ok", 1.0, prompt_tokens=1, completion_tokens=1)
    assert LLM_CALLS.labels("test-stage", "mystery-model", "ok")._value.get() >= 1


def test_a_call_is_billed_at_the_tier_that_served_it_and_cached_input_at_the_cached_price() -> None:
    meter = LlmMeter("test-stage")  # OpenAI's list prices
    standard = meter.cost_usd("gpt-5-mini", 1_000_000, 1_000_000)
    assert standard == pytest.approx(0.25 + 2.00)
    assert meter.cost_usd("gpt-5-mini", 1_000_000, 1_000_000, tier="flex") == pytest.approx(standard / 2)
    assert meter.cost_usd("gpt-5-mini", 1_000_000, 0, cached_tokens=800_000) == pytest.approx(
        (200_000 * 0.25 + 800_000 * 0.025) / 1_000_000
    )
    # A tier the table does not price (gpt-4o-mini has no Flex) is billed at Standard.
    assert meter.cost_usd("gpt-4o-mini", 1_000_000, 0, tier="flex") == pytest.approx(0.15)
    # The legacy two-figure form prices cached input as input.
    legacy = LlmMeter("test-stage", {"m": (1.0, 2.0)})
    assert legacy.cost_usd("m", 1_000_000, 0, cached_tokens=500_000) == pytest.approx(1.0)
