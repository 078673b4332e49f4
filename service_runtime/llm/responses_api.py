"""The three requests ``responses.BackgroundResponses`` makes of OpenAI's Responses API: create a
background response, retrieve it, cancel it. Create and retrieve go as bytes through ``raw`` (what
``responses.create`` would send; the SDK's walk of the schema through its transform was a third of
the planner's CPU) and are read into the SDK's ``Response`` without its echo of the request; the
provider's rate-limit headers are heard on every answer; SDK errors become delivery outcomes
through ``errors.classify``. A poll that finds the response still being written answers
``Unfinished``, its status only: building the rest into a ``Response`` was a tenth of what a
waiting call cost the planner.
"""

import asyncio
import logging
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

import openai
from openai.types.responses import Response, ResponseFormatTextConfigParam, ResponseInputParam

from service_runtime.llm.errors import classify
from service_runtime.llm.metering import LlmMeter
from service_runtime.llm.raw import get_raw, model_of, post_json, read_model, read_object
from service_runtime.llm.terms import current_terms, heard_limits
from service_runtime.logs import reason
from service_runtime.outcomes import RetryLater

__all__ = ["ResponsesApi", "Unfinished", "outcome_of"]

log = logging.getLogger(__name__)

# What a response echoes of its request and we never read: its reply format, JSON schema and all.
_ECHOED = ("text",)


@dataclass(frozen=True)
class Unfinished:
    """A response still ``queued`` or ``in_progress``, as a poll found it."""

    status: Literal["queued", "in_progress"]


class ResponsesApi:
    """Background responses of one model at the provider ``client`` points to."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        *,
        model: str,
        store: bool,
        max_concurrent_polls: int,
        meter: LlmMeter | None,
    ) -> None:
        self._client = client
        self._model = model
        self._store = store
        self._meter = meter
        # Polls in flight at once. Replies that land together would otherwise all be read, parsed
        # and held at the same moment: a memory peak of one plan per waiting call.
        self._polls = asyncio.Semaphore(max_concurrent_polls)

    async def create(
        self,
        key: str,
        prompt: ResponseInputParam,
        text_format: ResponseFormatTextConfigParam,
        max_output_tokens: int | None,
        *,
        cache_key: str | None,
    ) -> Response:
        """A new background response to ``prompt``, tagged with the call's ``key``; a failure is
        metered and raised as its outcome."""
        body: dict[str, object] = {
            "model": self._model,
            "input": prompt,
            "text": {"format": text_format},
            "background": True,
            "store": self._store,
            "metadata": {"call": key},
        }
        if max_output_tokens is not None:
            body["max_output_tokens"] = max_output_tokens
        if cache_key is not None:
            body["prompt_cache_key"] = cache_key
        if (tier := current_terms().tier) != "default":
            body["service_tier"] = tier
        try:
            raw = await post_json(self._client, "/responses", body)
            heard_limits(raw.headers)
            return await read_model(raw, Response, unread=_ECHOED)
        except Exception as exc:
            if isinstance(exc, openai.APIStatusError):
                heard_limits(exc.response.headers)
            if self._meter is not None:
                self._meter.failed(self._model, exc, 0.0)
            raise outcome_of(exc) from exc

    async def retrieve(self, response_id: str) -> Response | Unfinished | None:
        """The response as it stands (``Unfinished`` while it is being written); None when the
        provider no longer knows it; ``RetryLater`` for a transient failure or a body that is
        not a response."""
        try:
            async with self._polls:
                reply = await get_raw(self._client, f"/responses/{quote(response_id, safe='')}")
                data = await read_object(reply)
                if (status := data.get("status")) == "queued" or status == "in_progress":
                    return Unfinished(status)
                return model_of(data, Response, unread=_ECHOED)
        except openai.NotFoundError:
            return None
        except ValueError as exc:
            # A body that is not JSON (cut short, a proxy's error page): the response itself is
            # whole at the provider, and the next retrieval reads it again.
            raise RetryLater("llm_unreadable_response") from exc
        except Exception as exc:
            raise outcome_of(exc) from exc

    async def cancel_quietly(self, response_id: str) -> None:
        """Best effort: a response left running costs money but breaks nothing."""
        try:
            await self._client.responses.cancel(response_id)
        except Exception as exc:
            log.warning("could not cancel response %s: %s", response_id, reason(exc))


def outcome_of(exc: Exception) -> Exception:
    """The delivery outcome of an SDK error, or the error itself when it is not one."""
    outcome = classify(exc).outcome
    return outcome if outcome is not None else exc
