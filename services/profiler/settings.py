from pydantic import Field

from service_runtime.llm import LlmSettings


class ProfilerSettings(LlmSettings):
    model: str = Field("gpt-4o-mini", validation_alias="PROFILER_MODEL")
    max_in_flight: int = Field(200, ge=1, validation_alias="PROFILER_MAX_IN_FLIGHT")
    llm_deadline_seconds: float = Field(120.0, gt=0, validation_alias="PROFILER_LLM_DEADLINE_SECONDS")
    reply_attempts: int = Field(2, ge=1, validation_alias="PROFILER_REPLY_ATTEMPTS")
    # The holder refreshes its claim every third of this; if it dies, the claim expires this long
    # after its last refresh and another replica takes the exercise over.
    claim_ttl_seconds: float = Field(30.0, gt=0, validation_alias="PROFILER_CLAIM_TTL_SECONDS")
    health_port: int = Field(8082, validation_alias="HEALTH_PORT")
