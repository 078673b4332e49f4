"""The simulator's knobs: pacing, fault probabilities, the provider's limits, tiers and caching, determinism."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llm_simulator.model_table import MODELS

Probability = Annotated[float, Field(ge=0.0, le=1.0)]

FAULT_PROBABILITY_FIELDS = (
    "p_rate_limit",
    "p_quota",
    "p_server_error",
    "p_malformed",
    "p_truncate",
    "p_hang",
    "p_refusal",
    "p_broken",
    "p_stuck_queued",
)


class SimulatorConfig(BaseModel):
    """Every knob the simulator has. Frozen: a runtime change (``PATCH /_sim/config``) builds a new one.

    The fault probabilities are exclusive (one draw per request decides at most one fault), so
    together they may not exceed 1.
    """

    # Unknown keys are an error, so a typo in a PATCH or a CLI flag fails loudly instead of being ignored.
    model_config = ConfigDict(frozen=True, extra="forbid")

    tokens_per_second: float = Field(400.0, description="Streaming rate; 0 or negative means no pacing.")
    first_token_delay_seconds: float = Field(0.3, ge=0, description="Wait before the first content token.")
    stream_chunk_tokens: int = Field(
        0,
        ge=0,
        description="At most this many tokens per streamed chunk, as a provider sends one or two; "
        "0: whatever has come due (unpaced: 512 tokens a chunk).",
    )
    p_rate_limit: Probability = Field(0.0, description="Chance of a 429 rate_limit_exceeded.")
    p_quota: Probability = Field(0.0, description="Chance of a 429 insufficient_quota.")
    p_server_error: Probability = Field(0.0, description="Chance of a 500 server_error.")
    p_malformed: Probability = Field(0.0, description="Chance of a 200 reply whose content is not valid JSON.")
    p_truncate: Probability = Field(0.0, description="Chance of a reply cut in half with finish_reason 'length'.")
    p_hang: Probability = Field(0.0, description="Chance of accepting the request and then sending nothing.")
    p_refusal: Probability = Field(
        0.0, description="Chance of a 200 reply in which the model declines: 'refusal' text, no content."
    )
    p_broken: Probability = Field(
        0.0,
        description="Chance of a schema-valid plan or week that fails quality checks (a week missing a training day).",
    )
    p_stuck_queued: Probability = Field(
        0.0,
        description=(
            "Chance that a background response stays 'queued' for hang_seconds before it is generated"
            " (elsewhere: a hang)."
        ),
    )
    plan_note_sentences: int = Field(
        0, ge=0, le=6, description="Extra coaching sentences per prescribed exercise: longer plans (~2.4k tokens each)."
    )
    retry_after_seconds: float = Field(1.0, ge=0, description="Retry-After sent with rate-limit faults.")
    requests_per_minute: int = Field(
        0, ge=0, description="Each model's request budget per minute, replenished continuously; 0 = not limited."
    )
    tokens_per_minute: int = Field(
        0, ge=0, description="Each model's token budget per minute, replenished continuously; 0 = not limited."
    )
    flex_speed_factor: float = Field(
        0.5, gt=0, description="Flex requests generate at this multiple of tokens_per_second (first token: divided)."
    )
    priority_speed_factor: float = Field(
        1.5,
        gt=0,
        description="Priority requests generate at this multiple of tokens_per_second (first token: divided).",
    )
    p_flex_unavailable: Probability = Field(
        0.0, description="Chance that a flex request gets a 429 resource_unavailable (drawn apart from the faults)."
    )
    prompt_cache_seconds: float = Field(
        300.0, ge=0, description="How long an unused cached prompt prefix lives (OpenAI: 5-10 min); 0 disables caching."
    )
    hang_seconds: float = Field(3600.0, ge=0, description="How long a hang fault stays silent.")
    unstored_background_seconds: float = Field(
        600.0,
        ge=0,
        description="How long a background response created with store=false stays retrievable (OpenAI: ~10 min).",
    )
    responses_kept: int = Field(
        10000, ge=0, description="Finished Responses API responses kept for retrieval; the oldest go first."
    )
    batch_seconds: float = Field(
        2.0,
        ge=0,
        description=(
            "How long a batch takes from create to completed: a quarter validating, half in progress,"
            " a quarter finalizing (OpenAI: up to the 24h completion window)."
        ),
    )
    batches_kept: int = Field(1000, ge=0, description="Finished batches kept for retrieval; the oldest go first.")
    files_kept_bytes: int = Field(
        512 * 1024 * 1024,
        ge=0,
        description="Bytes of uploaded and batch output files kept in memory; the oldest files go first.",
    )
    seed: int | None = Field(None, description="Seed for reproducible content and fault draws; unset = random.")
    models: list[str] = Field(
        default_factory=lambda: list(MODELS),
        description=(
            "Model ids this simulated account may use, listed by GET /v1/models; any other is a 404 "
            "model_not_found. Each must be in the simulator's model table."
        ),
    )

    @field_validator("models")
    @classmethod
    def _models_are_known(cls, models: list[str]) -> list[str]:
        unknown = [m for m in models if m not in MODELS]
        if unknown:
            raise ValueError(f"unknown model ids {unknown}; the simulator knows {sorted(MODELS)}")
        return models

    @model_validator(mode="after")
    def _fault_probabilities_fit_one_draw(self) -> "SimulatorConfig":
        total = sum(getattr(self, name) for name in FAULT_PROBABILITY_FIELDS)
        if total > 1.0 + 1e-9:
            raise ValueError(f"fault probabilities add up to {total:.3f}; they share one draw, so at most 1")
        return self
