"""The settings every service process reads once, in its composition root."""

import dataclasses
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.streams import ConsumerSpec


class ServiceSettings(BaseSettings):
    """Base for each service's settings: typed, frozen, read from the environment once.

    Names other tools rely on (``NATS_URL``, ``DATABASE_URL``, ``OPENAI_*``) are exact aliases;
    the rest carry the service's own prefix.
    """

    # hide_input_in_errors: a bad setting must not print a password or secret in the error.
    model_config = SettingsConfigDict(frozen=True, extra="ignore", validate_by_name=True, hide_input_in_errors=True)

    nats_url: str = Field("nats://127.0.0.1:4222", validation_alias="NATS_URL")
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    # json: one object per line, for the platform's log collector; text: for people (`make run`).
    log_format: Literal["json", "text"] = Field("json", validation_alias="LOG_FORMAT")
    # The 0.5 s FastStream default is too tight for a replicated stream; see DESIGN.md.
    publish_timeout_seconds: float = Field(5.0, gt=0, validation_alias="NATS_PUBLISH_TIMEOUT_SECONDS")
    # Copies of every stream and key-value bucket across a NATS cluster (3 in production, so losing a
    # server loses nothing); applied to streams at every start, to buckets when they are created.
    stream_replicas: int = Field(1, ge=1, le=5, validation_alias="NATS_STREAM_REPLICAS")
    health_host: str = Field("0.0.0.0", validation_alias="HEALTH_HOST")
    health_port: int = Field(8081, validation_alias="HEALTH_PORT")
    shutdown_grace_seconds: float = Field(20.0, ge=0, validation_alias="SHUTDOWN_GRACE_SECONDS")
    # Operators (and tests) may tune the lease and the attempt budget without a code change;
    # the consumer is updated in place at start.
    consumer_ack_wait_seconds: float | None = Field(None, gt=0, validation_alias="CONSUMER_ACK_WAIT_SECONDS")
    consumer_max_deliver: int | None = Field(None, ge=1, validation_alias="CONSUMER_MAX_DELIVER")

    def consumer(self, spec: ConsumerSpec) -> ConsumerSpec:
        """``spec`` with this process's overrides applied."""
        return dataclasses.replace(
            spec,
            ack_wait_seconds=self.consumer_ack_wait_seconds or spec.ack_wait_seconds,
            max_deliver=self.consumer_max_deliver or spec.max_deliver,
        )
