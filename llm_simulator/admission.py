"""What the API refuses in a well-formed request: a model it does not serve, a service tier the
model does not offer (Flex), a strict schema outside the structured-outputs subset, chat
parameters a reasoning model does not take, an output cap above the model's, a prompt beyond its
context window. Checked after the body matched
OpenAI's schemas and before any fault or reply.

The strict-schema check is the product's own (``service_runtime.strict_schema``), which words
each problem as the API does; the simulator reports the first, as the API does.
"""

import functools
import json
from collections.abc import Mapping
from typing import Any

from llm_simulator import refusals
from llm_simulator.config import SimulatorConfig
from llm_simulator.model_table import ModelLimits, limits_of
from llm_simulator.pacing import prompt_tokens
from llm_simulator.protocol import ApiError, ChatCompletionRequest
from llm_simulator.responses_protocol import ResponseCreateRequest
from llm_simulator.tiers import refuses_flex
from service_runtime.strict_schema import strict_schema_problems


def chat_refusal(chat: ChatCompletionRequest, config: SimulatorConfig) -> ApiError | None:
    """Why the API would refuse this chat completion request, if it would."""
    model = _served(chat.model, config)
    if isinstance(model, ApiError):
        return model
    if refuses_flex(chat.service_tier, model):
        return refusals.service_tier_unsupported("flex")
    fmt = chat.response_format
    strict = fmt is not None and fmt.type == "json_schema" and fmt.json_schema is not None and fmt.json_schema.strict
    if strict and fmt and fmt.json_schema and (problem := _first_problem(fmt.json_schema.schema_)) is not None:
        return refusals.chat_invalid_schema(fmt.json_schema.name, problem)
    if chat.stream_options is not None and not chat.stream:
        return refusals.stream_options_without_stream()
    if model.reasoning and chat.max_tokens is not None:
        return refusals.max_tokens_unsupported()
    temperature = (chat.model_extra or {}).get("temperature")
    if model.reasoning and isinstance(temperature, int | float) and temperature != 1:
        return refusals.temperature_unsupported(temperature)
    # max_completion_tokens supersedes max_tokens; the API names the field the caller used.
    for field in ("max_completion_tokens", "max_tokens"):
        cap = getattr(chat, field)
        if cap is not None and cap > model.max_output_tokens:
            return refusals.output_cap_too_large(field, cap, model.max_output_tokens)
    prompt = prompt_tokens([m.text() for m in chat.messages])
    if prompt + (chat.token_limit or 0) > model.context_window:
        return refusals.chat_context_exceeded(model.context_window, prompt, chat.token_limit)
    return None


def response_refusal(create: ResponseCreateRequest, config: SimulatorConfig) -> ApiError | None:
    """Why the API would refuse this Responses API create request, if it would."""
    model = _served(create.model, config)
    if isinstance(model, ApiError):
        return model
    if refuses_flex(create.service_tier, model):
        return refusals.service_tier_unsupported("flex")
    fmt = create.text_format
    if fmt.type == "json_schema" and fmt.strict and (problem := _first_problem(fmt.schema_ or {})) is not None:
        return refusals.responses_invalid_schema(fmt.name or "", problem)
    cap = create.max_output_tokens
    if cap is not None and cap > model.max_output_tokens:
        return refusals.output_cap_too_large("max_output_tokens", cap, model.max_output_tokens)
    if prompt_tokens([m.text() for m in create.as_chat().messages]) > model.context_window:
        return refusals.responses_context_exceeded()
    return None


def _served(model: str, config: SimulatorConfig) -> ModelLimits | ApiError:
    limits = limits_of(model)
    if limits is None or model not in config.models:
        return refusals.model_not_found(model)
    return limits


def _first_problem(schema: Mapping[str, Any]) -> str | None:
    # A service sends the same few schemas with every call: checked once per schema, by content
    # (in its own key order, which decides which problem is reported first).
    return _first_problem_of(json.dumps(schema, separators=(",", ":")))


@functools.lru_cache(maxsize=256)
def _first_problem_of(schema: str) -> str | None:
    problems = strict_schema_problems(json.loads(schema))
    return problems[0].message if problems else None
