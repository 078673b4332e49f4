"""A model name the provider does not serve (a typo in PLANNER_MODEL): warned of at start, and each
call refused at once with the provider's reason, not retried. The end-to-end case, a request ending
``failed``, is tests/e2e/test_unknown_model.py."""

import logging

import httpx
import openai
import pydantic
import pytest

from llm_simulator.model_table import MODELS as SIMULATOR_MODELS
from service_runtime.llm import Prompt, warn_if_unknown_model
from service_runtime.llm.chat import ChatCompletions
from service_runtime.model_limits import MODEL_LIMITS, limits_of
from service_runtime.outcomes import GiveUp
from tests.simulator_server import reset_simulator


class Greeting(pydantic.BaseModel):
    text: str


@pytest.fixture(autouse=True)
async def fresh_simulator(admin: httpx.AsyncClient) -> None:
    await reset_simulator(admin, {"tokens_per_second": 0, "first_token_delay_seconds": 0})


def test_our_model_table_is_the_simulators() -> None:
    for model, simulated in SIMULATOR_MODELS.items():
        ours = limits_of(model)
        assert ours is not None, f"{model} is served by the simulator but unknown to service_runtime.model_limits"
        assert (ours.context_window, ours.max_output_tokens, ours.flex, ours.priority) == (
            simulated.context_window,
            simulated.max_output_tokens,
            simulated.flex,
            simulated.priority,
        )
    assert set(MODEL_LIMITS) <= set(SIMULATOR_MODELS)


def test_an_unknown_model_is_warned_of_at_start_and_a_known_one_is_not(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="service_runtime.llm.client"):
        warn_if_unknown_model("gpt-4o-mini-2024-07-18", "PLANNER_MODEL")
        assert caplog.records == []

        warn_if_unknown_model("gpt-4o-mni", "PLANNER_MODEL")

    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith("PLANNER_MODEL='gpt-4o-mni' is not a model we know")
    assert "404 model_not_found" in record.getMessage()


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "streamed-chat"])
async def test_a_call_to_an_unknown_model_gives_up_at_once_with_the_providers_reason(
    llm: openai.AsyncOpenAI, admin: httpx.AsyncClient, stream: bool
) -> None:
    calls = ChatCompletions(llm, model="gpt-4o-mni", deadline_seconds=10, stream=stream)

    with pytest.raises(GiveUp) as raised:
        await calls.call("greeting", Prompt((), "say hello"), Greeting)

    assert raised.value.reason == "llm_model_not_found"
    assert raised.value.detail == "HTTP 404: The model `gpt-4o-mni` does not exist or you do not have access to it."
    stats = (await admin.get("/_sim/stats")).json()
    assert sum(stats["billed_by_schema"].values()) == 0
