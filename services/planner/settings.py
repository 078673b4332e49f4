from pydantic import Field

from service_runtime.llm import LlmSettings


class PlannerSettings(LlmSettings):
    model: str = Field("gpt-4o-mini", validation_alias="PLANNER_MODEL")
    # One process holds this many concurrent LLM calls; they are network waits, not CPU.
    max_in_flight: int = Field(1000, ge=1, validation_alias="PLANNER_MAX_IN_FLIGHT")
    llm_deadline_seconds: float = Field(900.0, gt=0, validation_alias="PLANNER_LLM_DEADLINE_SECONDS")
    reply_attempts: int = Field(2, ge=1, validation_alias="PLANNER_REPLY_ATTEMPTS")
    stream: bool = Field(True, validation_alias="PLANNER_STREAM")
    max_system_prompt_chars: int = Field(4000, ge=0, validation_alias="PLANNER_MAX_SYSTEM_PROMPT_CHARS")
    # By default the client's systemPrompt adds guidance but cannot replace our instructions.
    allow_system_prompt_override: bool = Field(False, validation_alias="PLANNER_ALLOW_SYSTEM_PROMPT_OVERRIDE")
    health_port: int = Field(8081, validation_alias="HEALTH_PORT")
