"""The simulated model: decides each request's fault and reply, and keeps the books.

Free of HTTP: the app turns an :class:`Answer` into a completion or a stream, and an
:class:`ApiError` into an error response.
"""

import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
from llm_simulator.model_table import limits_of
from llm_simulator.pacing import CHARS_PER_TOKEN, Pace, estimate_tokens, prompt_tokens
from llm_simulator.protocol import ApiError, ChatCompletionRequest, FinishReason, Usage
from llm_simulator.replies import compose
from llm_simulator.stats import SimulatorStats

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

    def __init__(self, config: SimulatorConfig) -> None:
        self._config = config
        self._rng = random.Random(config.seed)
        self.stats = SimulatorStats()

    @property
    def config(self) -> SimulatorConfig:
        return self._config

    def configure(self, changes: Mapping[str, Any]) -> SimulatorConfig:
        """Apply a partial update; raises ``pydantic.ValidationError`` and changes nothing if invalid."""
        updated = SimulatorConfig.model_validate({**self._config.model_dump(), **changes})
        if updated.seed != self._config.seed:
            self._rng = random.Random(updated.seed)
        self._config = updated
        return updated

    def reset(self) -> None:
        """Zero the stats; with a seed configured, also restart the random sequence (reproducible runs)."""
        self.stats = SimulatorStats()
        if self._config.seed is not None:
            self._rng = random.Random(self._config.seed)

    def answer(self, request: ChatCompletionRequest, *, background: bool = False) -> Answer | ApiError:
        """Decide the outcome of one request to the model.

        For a ``background`` response (accepted first, fetched later) a server fault is not an
        HTTP 500 but an :class:`Answer` carrying ``Fault.SERVER_ERROR`` (the response fails later),
        and a ``malformed`` fault is on the wire: the reply stays whole, but the first retrieval
        that finds it finished gets a body that is not valid JSON. With chat, the body *is* the
        reply, so there the content itself is broken (either way the client cannot read it).
        """
        self.stats.requests_total += 1
        config = self._config
        texts = [m.text() for m in request.messages]
        try:
            fault = forced = forced_fault(texts)
        except UnknownFaultError as exc:
            return ApiError(status=400, message=str(exc), type="invalid_request_error", param="messages")
        fault = fault or drawn_fault(config, self._rng)
        if fault is not None:
            self.stats.faults_by_kind[fault.value] += 1
            log.info(
                "injecting fault %s into a %s request%s",
                fault.value,
                request.schema_name or "text",
                " (forced)" if forced else "",
            )
            in_band = background and fault is Fault.SERVER_ERROR
            if not in_band and (error := http_error(fault, config, request.model)) is not None:
                return error
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
        model = limits_of(request.model)
        limit = request.token_limit or (model.max_output_tokens if model else None)
        if model is not None and limit is not None:
            limit = max(1, min(limit, model.context_window - prompt_tokens(texts)))
        if limit is not None and estimate_tokens(content) > limit:
            content, finish_reason = content[: limit * CHARS_PER_TOKEN], "length"
        return Answer(
            content=content,
            finish_reason=finish_reason,
            kind=reply.kind,
            exercise=reply.exercise,
            fault=fault,
            usage=Usage(prompt_tokens=prompt_tokens(texts), completion_tokens=estimate_tokens(content)),
            pace=Pace(config.tokens_per_second, config.first_token_delay_seconds),
            hang_seconds=config.hang_seconds if fault is Fault.HANG else 0.0,
            spoiled=fault in _SPOILING_FAULTS and not garble_delivery,
            garble_delivery=garble_delivery,
            forced=forced is not None,
        )

    def delivered(self, answer: Answer) -> None:
        """Count a reply generated to its end (and so billed), spoiled or not."""
        self._billed(answer)
        self.stats.prompt_tokens_total += answer.usage.prompt_tokens
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

    def response_cancelled(self, answer: Answer) -> None:
        """Count a background response cancelled before it finished: not a completion, but billed
        as a whole call (the provider charges what it had generated)."""
        self._billed(answer)
        self.stats.responses_cancelled_total += 1

    def _billed(self, answer: Answer) -> None:
        self.stats.billed_by_schema[answer.kind] += 1
        if answer.forced:
            self.stats.billed_forced_by_schema[answer.kind] += 1
