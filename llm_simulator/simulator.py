"""The simulated model: decides each request's fault and reply, and keeps the books.

Free of HTTP: the app turns an :class:`Answer` into a completion or a stream, and an
:class:`ApiError` into an error response.
"""

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from llm_simulator import refusals
from llm_simulator.config import SimulatorConfig
from llm_simulator.faults import (
    REFUSAL_TEXT,
    Fault,
    UnknownFaultError,
    broken,
    drawn_fault,
    forced_fault,
    http_error,
    malformed,
    truncated,
)
from llm_simulator.model_table import ModelLimits, limits_of
from llm_simulator.pacing import CHARS_PER_TOKEN, Pace, estimate_tokens, prompt_tokens
from llm_simulator.prompt_cache import PromptCache
from llm_simulator.protocol import ApiError, ChatCompletionRequest, FinishReason, Usage
from llm_simulator.rate_limits import RateLimits
from llm_simulator.replies import compose
from llm_simulator.stats import SimulatorStats
from llm_simulator.tiers import pace_for, tier_used

log = logging.getLogger(__name__)

# Faults that answer 200 but with something other than the model's whole, unspoiled reply.
_SPOILING_FAULTS = (Fault.MALFORMED, Fault.TRUNCATE, Fault.SERVER_ERROR, Fault.REFUSAL, Fault.BROKEN)


@dataclass(frozen=True)
class Answer:
    """A 200 reply: its content, how it ends, and how it is to be delivered.

    For a refusal, ``content`` holds the refusal text, which goes out in the ``refusal`` field
    (chat) or a ``refusal`` content part (Responses) instead of as content.
    """

    content: str
    finish_reason: FinishReason
    kind: str
    exercise: str | None
    fault: Fault | None
    usage: Usage
    pace: Pace
    hang_seconds: float
    # Whether the content is something other than the model's whole, unspoiled reply.
    spoiled: bool = False
    # A background response whose reply is whole but whose first retrieval once finished is a
    # garbled body: a fault on the wire, not in the model's output.
    garble_delivery: bool = False
    # Whether a ``[[sim:fault=...]]`` directive chose the fault (rather than the random draw).
    forced: bool = False
    # The service tier that serves it, and the model's ``x-ratelimit-*`` headers once it was metered.
    service_tier: str = "default"
    rate_limit_headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def intact(self) -> bool:
        """Whether this is the model's whole, unspoiled reply."""
        return self.finish_reason == "stop" and not self.spoiled

    @property
    def refused(self) -> bool:
        """Whether the model declined: the content is a refusal, not an answer."""
        return self.fault is Fault.REFUSAL


class Simulator:
    """The state one simulator process shares across requests: config, randomness and stats."""

    def __init__(self, config: SimulatorConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._rng = random.Random(config.seed)
        self._clock = clock
        self.stats = SimulatorStats()
        self.rate_limits = RateLimits(config.requests_per_minute, config.tokens_per_minute)
        self.prompt_cache = PromptCache()

    @property
    def config(self) -> SimulatorConfig:
        return self._config

    def configure(self, changes: Mapping[str, Any]) -> SimulatorConfig:
        """Apply a partial update; raises ``pydantic.ValidationError`` and changes nothing if invalid."""
        updated = SimulatorConfig.model_validate({**self._config.model_dump(), **changes})
        if updated.seed != self._config.seed:
            self._rng = random.Random(updated.seed)
        limits = (updated.requests_per_minute, updated.tokens_per_minute)
        if limits != (self._config.requests_per_minute, self._config.tokens_per_minute):
            # New limits start every model's budget afresh.
            self.rate_limits = RateLimits(*limits)
        if updated.prompt_cache_seconds <= 0:
            self.prompt_cache.clear()
        self._config = updated
        return updated

    def reset(self) -> None:
        """Zero the stats, refill every rate-limit budget and empty the prompt cache; with a seed
        configured, also restart the random sequence (reproducible runs)."""
        self.stats = SimulatorStats()
        self.rate_limits = RateLimits(self._config.requests_per_minute, self._config.tokens_per_minute)
        self.prompt_cache.clear()
        if self._config.seed is not None:
            self._rng = random.Random(self._config.seed)

    def answer(
        self, request: ChatCompletionRequest, *, background: bool = False, batch: bool = False
    ) -> Answer | ApiError:
        """Decide the outcome of one request to the model (one the admission checks let through).

        In order: the model's rate limits (a 429 that takes nothing from the budget), Flex capacity
        for a flex request (a 429, not billed, not metered), the fault, then the request is metered
        and generated. Every outcome carries the model's ``x-ratelimit-*`` headers.

        For a ``background`` response (accepted first, fetched later) a server fault is not an
        HTTP 500 but an :class:`Answer` carrying ``Fault.SERVER_ERROR`` (the response fails later),
        and a ``malformed`` fault is on the wire: the reply stays whole, but the first retrieval
        that finds it finished gets a body that is not valid JSON. With chat, the body *is* the
        reply, so there the content itself is broken (either way the client cannot read it).

        A ``batch`` request (one line of a batch) meets neither the model's per-minute limits nor
        Flex capacity: "Batch API rate limits are separate from existing per-model rate limits"
        (the batch guide).
        """
        self.stats.requests_total += 1
        config = self._config
        now = self._clock()
        texts = [m.text() for m in request.messages]
        try:
            forced = forced_fault(texts)
        except UnknownFaultError as exc:
            unknown = ApiError(status=400, message=str(exc), type="invalid_request_error", param="messages")
            return self._with_limits(unknown, request.model, now)
        model = limits_of(request.model)
        assert model is not None, "admission lets only the table's models through"
        # A structured output's schema is input the model reads (billed, and cached as a prefix of
        # the system message, per OpenAI's prompt-caching guide): it is counted first.
        messages = [(m.role, text) for m, text in zip(request.messages, texts, strict=True)]
        if (schema := request.schema_text()) is not None:
            messages.insert(0, ("schema", schema))
        prompt = prompt_tokens([text for _, text in messages])
        # The rate limits count the larger of the prompt's estimate and the output cap.
        metered = max(prompt, request.token_limit or 0)
        if not batch and (limited := self.rate_limits.refusal(request.model, metered, now)) is not None:
            self.stats.rate_limited_by_type[limited.type] += 1
            return limited
        tier = tier_used(request.service_tier, model, prompt)
        flex_draw = tier == "flex" and not batch and config.p_flex_unavailable > 0
        if flex_draw and self._rng.random() < config.p_flex_unavailable:
            self.stats.flex_unavailable_total += 1
            return self._with_limits(refusals.flex_unavailable(), request.model, now)
        fault = forced or drawn_fault(config, self._rng)
        error = None
        if fault is not None:
            self.stats.faults_by_kind[fault.value] += 1
            log.info(
                "injecting fault %s into a %s request%s",
                fault.value,
                request.schema_name or "text",
                " (forced)" if forced else "",
            )
            in_band = background and fault is Fault.SERVER_ERROR
            error = None if in_band else http_error(fault, config, request.model)
            if error is not None and fault is not Fault.SERVER_ERROR:
                # A refusal (rate limit, quota) takes nothing from the budget.
                return self._with_limits(error, request.model, now)
        # Admitted: metered, even if the server then fails it.
        if not batch:
            self.rate_limits.take(request.model, metered, now)
        if error is not None:
            return self._with_limits(error, request.model, now)
        self.stats.served_by_service_tier[tier] += 1
        pace = pace_for(tier, config)
        cached = self.prompt_cache.cached_tokens(
            request.model,
            request.prompt_cache_key,
            messages,
            now,
            config.prompt_cache_seconds,
            ready_after=pace.first_token_delay_seconds,
        )
        answer = self._generate(request, model, prompt, fault, background=background)
        return replace(
            answer,
            usage=Usage(prompt, answer.usage.completion_tokens, cached),
            pace=pace,
            service_tier=tier,
            forced=forced is not None,
            rate_limit_headers=self.rate_limits.headers(request.model, now),
        )

    def limit_headers(self, model: str | None) -> dict[str, str]:
        """The ``x-ratelimit-*`` headers for an answer refused before the meter: ``model``'s budget
        if it is one this account serves, else a fresh budget's."""
        served = model is not None and model in self._config.models and limits_of(model) is not None
        return self.rate_limits.headers(model if served else None, self._clock())

    def _with_limits(self, error: ApiError, model: str, now: float) -> ApiError:
        return replace(error, headers={**error.headers, **self.rate_limits.headers(model, now)})

    def _generate(
        self, request: ChatCompletionRequest, model: ModelLimits, prompt: int, fault: Fault | None, *, background: bool
    ) -> Answer:
        """The reply itself: content by schema, spoiled as the fault says, cut at the cap."""
        config = self._config
        # Each request gets its own generator, so concurrent requests cannot interleave draws.
        rng = random.Random(self._rng.getrandbits(64))
        reply = compose(request, rng, note_sentences=config.plan_note_sentences)
        content = reply.content
        finish_reason: FinishReason = "stop"
        garble_delivery = background and fault is Fault.MALFORMED
        if fault is Fault.MALFORMED and not garble_delivery:
            content = malformed(content, rng)
        elif fault is Fault.TRUNCATE:
            content, finish_reason = truncated(content), "length"
        elif fault is Fault.REFUSAL:
            content = REFUSAL_TEXT
        elif fault is Fault.BROKEN:
            content = broken(content)
        # Cut at the call's cap or, without one, at the most the model can write in one reply
        # (and never past the context window: the prompt and the reply share it).
        limit = max(1, min(request.token_limit or model.max_output_tokens, model.context_window - prompt))
        if estimate_tokens(content) > limit:
            content, finish_reason = content[: limit * CHARS_PER_TOKEN], "length"
        return Answer(
            content=content,
            finish_reason=finish_reason,
            kind=reply.kind,
            exercise=reply.exercise,
            fault=fault,
            usage=Usage(prompt_tokens=prompt, completion_tokens=estimate_tokens(content)),
            pace=Pace(config.tokens_per_second, config.first_token_delay_seconds, config.stream_chunk_tokens),
            # A request no worker picks up: silence on chat, ``queued`` on a background response.
            hang_seconds=config.hang_seconds if fault in (Fault.HANG, Fault.STUCK_QUEUED) else 0.0,
            spoiled=fault in _SPOILING_FAULTS and not garble_delivery,
            garble_delivery=garble_delivery,
        )

    def delivered(self, answer: Answer) -> None:
        """Count a reply generated to its end (and so billed), spoiled or not."""
        self._billed(answer)
        self.stats.prompt_tokens_total += answer.usage.prompt_tokens
        self.stats.cached_tokens_total += answer.usage.cached_tokens
        self.stats.completion_tokens_total += answer.usage.completion_tokens
        if answer.intact:
            self.stats.completions_total += 1
            self.stats.completions_by_schema[answer.kind] += 1
            if answer.exercise is not None:
                self.stats.profiles_by_exercise[answer.exercise] += 1

    def abandoned(self, answer: Answer) -> None:
        """Count a reply the client walked away from (its generation was stopped).

        Billed as a whole call: a provider charges the input and whatever it had generated."""
        self._billed(answer)
        self.stats.abandoned_total += 1

    def response_created(self) -> None:
        """Count a Responses API response accepted for generation (background or not)."""
        self.stats.responses_created_total += 1

    def response_cancelled(self, answer: Answer, *, started: bool = True) -> None:
        """Count a background response cancelled before it finished: not a completion, but billed
        as a whole call (the provider charges what it had generated) if its generation had
        ``started``; one cancelled while still queued generated nothing and is free."""
        if started:
            self._billed(answer)
        self.stats.responses_cancelled_total += 1

    def _billed(self, answer: Answer) -> None:
        self.stats.billed_by_schema[answer.kind] += 1
        if answer.forced:
            self.stats.billed_forced_by_schema[answer.kind] += 1
