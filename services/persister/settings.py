from pydantic import Field

from service_runtime.settings import ServiceSettings


class PersisterSettings(ServiceSettings):
    database_url: str = Field(validation_alias="DATABASE_URL")
    db_pool_min: int = Field(2, ge=1, validation_alias="PERSISTER_DB_POOL_MIN")
    db_pool_max: int = Field(10, ge=1, validation_alias="PERSISTER_DB_POOL_MAX")
    # Persisting is short database work: in-flight beyond the pool size only queues.
    max_in_flight: int = Field(32, ge=1, validation_alias="PERSISTER_MAX_IN_FLIGHT")
    health_port: int = Field(8083, validation_alias="HEALTH_PORT")
    sweep_interval_seconds: float = Field(30.0, gt=0, validation_alias="PERSISTER_SWEEP_INTERVAL_SECONDS")
    # Longer than the planner's whole LLM deadline, so a plan still being written is not bought twice.
    stall_seconds: float = Field(1200.0, gt=0, validation_alias="REQUEST_STALL_SECONDS")
    deadline_seconds: float = Field(3600.0, gt=0, validation_alias="REQUEST_DEADLINE_SECONDS")
