from typing import Literal

from pydantic import Field, field_validator

from service_runtime.llm import LlmSettings
from services.planner.experiment import Variant, parse_variants


class PlannerSettings(LlmSettings):
    model: str = Field("gpt-4o-mini", validation_alias="PLANNER_MODEL")
    # Made the same call when the model's provider is down or refuses it (5xx, unreachable, a
    # timeout, stuck in the queue, rate-limited, the model not served); unset: no fallback.
    fallback_model: str | None = Field(None, validation_alias="PLANNER_FALLBACK_MODEL")
    # Concurrent plans per process; unset = by mode (see ``in_flight_limit``).
    max_in_flight: int | None = Field(None, ge=1, validation_alias="PLANNER_MAX_IN_FLIGHT")
    llm_deadline_seconds: float = Field(900.0, gt=0, validation_alias="PLANNER_LLM_DEADLINE_SECONDS")
    reply_attempts: int = Field(2, ge=1, validation_alias="PLANNER_REPLY_ATTEMPTS")
    # chat_stream works with any OpenAI-compatible server; responses_background needs OpenAI's
    # Responses API and lets a redelivered request re-attach to the call it already paid for.
    llm_mode: Literal["chat_stream", "responses_background"] = Field("chat_stream", validation_alias="PLANNER_LLM_MODE")
    stream: bool = Field(True, validation_alias="PLANNER_STREAM")
    # parallel: a skeleton, then the eight weeks at once; progressive: a short outline, then every
    # week in parts of a few exercises, week 1 first and finest (services/planner/progressive.py);
    # single: the whole plan in one call. Each call is made in llm_mode.
    generation: Literal["parallel", "progressive", "single"] = Field("parallel", validation_alias="PLANNER_GENERATION")
    # A share of the traffic written another way: "<generation>[:<model>]=<weight>,..." (e.g.
    # "progressive=80,parallel:gpt-4.1-mini=20"); each request's variant fixed by its id. Unset: every
    # plan by PLANNER_GENERATION and PLANNER_MODEL (services/planner/experiment.py).
    experiment: str | None = Field(None, validation_alias="PLANNER_EXPERIMENT")
    # Progressive mode: most exercises of one training day written by one call, in week 1 and after.
    exercises_per_call: int = Field(6, ge=1, le=12, validation_alias="PLANNER_EXERCISES_PER_CALL")
    first_week_exercises_per_call: int = Field(2, ge=1, le=12, validation_alias="PLANNER_FIRST_WEEK_EXERCISES_PER_CALL")
    # Parallel mode: LLM calls one process makes at once, across all its plans; unset = by mode
    # (see ``concurrent_calls_limit``).
    max_concurrent_calls: int | None = Field(None, ge=1, validation_alias="PLANNER_MAX_CONCURRENT_CALLS")
    # Background mode: how often a waiting plan asks the provider whether its response is done.
    # Each poll costs a request and CPU; on a minutes-long call 5 s of extra latency is noise.
    # Week (or day-part) calls after the first wait this long, so the first has written the prefix
    # they share into the provider's prompt cache (about its time to first token); 0: all at once.
    prefix_warmup_seconds: float = Field(1.0, ge=0, le=30, validation_alias="PLANNER_PREFIX_WARMUP_SECONDS")
    poll_interval_seconds: float = Field(5.0, gt=0, validation_alias="PLANNER_POLL_INTERVAL_SECONDS")
    # Background mode: polls in flight at once per process. Replies landing together are then read
    # a few dozen at a time instead of all at once (memory peak), at a cost in detection latency
    # only when the provider answers polls slowly.
    max_concurrent_polls: int = Field(32, ge=1, validation_alias="PLANNER_MAX_CONCURRENT_POLLS")
    # Background mode: ``store`` on each response. True keeps responses under OpenAI's standard
    # retention (re-attach works for as long as the record lives); false keeps them only for the
    # polling window (~10 minutes), after which a redelivery finds them gone and buys anew.
    responses_store: bool = Field(True, validation_alias="PLANNER_RESPONSES_STORE")
    # Background mode: a response still queued (not picked up) this long after its creation is
    # cancelled and the next delivery starts a new one.
    queued_seconds: float = Field(300.0, gt=0, validation_alias="PLANNER_QUEUED_SECONDS")
    max_system_prompt_chars: int = Field(4000, ge=0, validation_alias="PLANNER_MAX_SYSTEM_PROMPT_CHARS")
    # By default the client's systemPrompt adds guidance but cannot replace our instructions.
    allow_system_prompt_override: bool = Field(False, validation_alias="PLANNER_ALLOW_SYSTEM_PROMPT_OVERRIDE")
    health_port: int = Field(8081, validation_alias="HEALTH_PORT")

    @field_validator("fallback_model")
    @classmethod
    def _fallback_model_set(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("experiment")
    @classmethod
    def _experiment_parses(cls, value: str | None) -> str | None:
        if value is not None and value.strip():
            parse_variants(value, default_model="model")  # raises with what is wrong
            return value
        return None

    @property
    def variants(self) -> tuple[Variant, ...]:
        """What writes the plans: the experiment's variants, or PLANNER_GENERATION with PLANNER_MODEL."""
        if self.experiment is None:
            return (Variant(self.generation, self.model, 1),)
        return parse_variants(self.experiment, default_model=self.model)

    @property
    def in_flight_limit(self) -> int:
        """A waiting background response costs a poll every few seconds, so one process holds
        thousands; a stream costs CPU for every chunk, and past a few hundred streams one core
        saturates, leases are renewed late and plans are redelivered (docs/reliability.md).
        Messages beyond the limit wait on the server, not in memory."""
        if self.max_in_flight is not None:
            return self.max_in_flight
        background = self.llm_mode == "responses_background"
        if self.generation == "parallel":
            # Nine calls each: nine short streams, or nine waiting responses (cheap, as above).
            return 300 if background else 100
        if self.generation == "progressive":
            # Two dozen or more calls each, most of them at once.
            return 300 if background else 32
        return 2000 if background else 200

    @property
    def concurrent_calls_limit(self) -> int:
        """Parallel and progressive modes' calls at once per process: streams cost CPU per chunk, waiting background
        responses a poll now and then (300 plans, 2,700 responses: 0 redeliveries, docs/reliability.md)."""
        if self.max_concurrent_calls is not None:
            return self.max_concurrent_calls
        return 3000 if self.llm_mode == "responses_background" else 256
