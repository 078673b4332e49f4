from pydantic import Field

from service_runtime.llm import LlmSettings


class ProfilerSettings(LlmSettings):
    model: str = Field("gpt-4o-mini", validation_alias="PROFILER_MODEL")
    max_in_flight: int = Field(200, ge=1, validation_alias="PROFILER_MAX_IN_FLIGHT")
    llm_deadline_seconds: float = Field(120.0, gt=0, validation_alias="PROFILER_LLM_DEADLINE_SECONDS")
    reply_attempts: int = Field(2, ge=1, validation_alias="PROFILER_REPLY_ATTEMPTS")
    # A claim outlives the longest call it guards; if its holder dies, it expires and another takes over.
    claim_ttl_seconds: float = Field(300.0, gt=0, validation_alias="PROFILER_CLAIM_TTL_SECONDS")
    health_port: int = Field(8082, validation_alias="HEALTH_PORT")
