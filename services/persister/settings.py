from pydantic import Field

from service_runtime.settings import ServiceSettings


class PersisterSettings(ServiceSettings):
    database_url: str = Field(validation_alias="DATABASE_URL")
    db_pool_min: int = Field(2, ge=1, validation_alias="PERSISTER_DB_POOL_MIN")
    db_pool_max: int = Field(10, ge=1, validation_alias="PERSISTER_DB_POOL_MAX")
    # Persisting is short database work: in-flight beyond the pool size only queues.
    max_in_flight: int = Field(32, ge=1, validation_alias="PERSISTER_MAX_IN_FLIGHT")
    health_port: int = Field(8083, validation_alias="HEALTH_PORT")
