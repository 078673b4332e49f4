from pydantic import Field, field_validator

from service_runtime.llm import LlmSettings


class ProfilerSettings(LlmSettings):
    model: str = Field("gpt-4o-mini", validation_alias="PROFILER_MODEL")
    # Made the same call when the model's provider is down or refuses it; unset: no fallback.
    fallback_model: str | None = Field(None, validation_alias="PROFILER_FALLBACK_MODEL")
    max_in_flight: int = Field(200, ge=1, validation_alias="PROFILER_MAX_IN_FLIGHT")
    llm_deadline_seconds: float = Field(120.0, gt=0, validation_alias="PROFILER_LLM_DEADLINE_SECONDS")
    reply_attempts: int = Field(2, ge=1, validation_alias="PROFILER_REPLY_ATTEMPTS")
    # The holder refreshes its claim every third of this; if it dies, the claim expires this long
    # after its last refresh and another replica takes the exercise over.
    claim_ttl_seconds: float = Field(30.0, gt=0, validation_alias="PROFILER_CLAIM_TTL_SECONDS")
    health_port: int = Field(8082, validation_alias="HEALTH_PORT")
    # ``prefill``: how often a submitted batch is looked at (it takes minutes to hours).
    batch_poll_seconds: float = Field(30.0, gt=0, validation_alias="PROFILER_BATCH_POLL_SECONDS")

    @field_validator("fallback_model")
    @classmethod
    def _fallback_model_set(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None
