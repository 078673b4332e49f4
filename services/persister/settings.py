from pydantic import Field

from service_runtime.settings import ServiceSettings


class PersisterSettings(ServiceSettings):
    database_url: str = Field(validation_alias="DATABASE_URL")
    db_pool_min: int = Field(2, ge=1, validation_alias="PERSISTER_DB_POOL_MIN")
    db_pool_max: int = Field(10, ge=1, validation_alias="PERSISTER_DB_POOL_MAX")
    # Persisting is short database work, written in groups: the messages in flight are what a
    # group is made of. 256 lets the next groups' messages be read and validated while two groups
    # are in Postgres: a backlog went 243-267 -> 288-301 plans/s over 128 (bench.persister_rate).
    max_in_flight: int = Field(256, ge=1, validation_alias="PERSISTER_MAX_IN_FLIGHT")
    # Plans arriving together are stored in one transaction (one COPY, one commit) per group: at
    # most this many groups written at once, each of at most this many plans.
    plan_writers: int = Field(2, ge=1, validation_alias="PERSISTER_PLAN_WRITERS")
    plans_per_write: int = Field(64, ge=1, validation_alias="PERSISTER_PLANS_PER_WRITE")
    # A small group waits this long for more plans first (``Grouped``'s linger): in the pipeline, plans
    # arriving a few at a time cost the persister and Postgres 0.25-0.6 ms less each; a backlog's
    # groups (a quarter full or more) go at once.
    plan_linger_seconds: float = Field(0.05, ge=0, le=1, validation_alias="PERSISTER_PLAN_LINGER_SECONDS")
    health_port: int = Field(8083, validation_alias="HEALTH_PORT")
    sweep_interval_seconds: float = Field(30.0, gt=0, validation_alias="PERSISTER_SWEEP_INTERVAL_SECONDS")
    # Longer than the planner's whole LLM deadline, so a plan still being written is not bought twice.
    stall_seconds: float = Field(1200.0, gt=0, validation_alias="REQUEST_STALL_SECONDS")
    deadline_seconds: float = Field(3600.0, gt=0, validation_alias="REQUEST_DEADLINE_SECONDS")
