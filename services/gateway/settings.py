"""The gateway's settings, read once by its composition root."""

from typing import Annotated, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from contracts.events import MAX_REVIEW_SECONDS
from service_runtime.settings import ServiceSettings
from services.gateway.intake import DEFAULT_MAX_SYSTEM_PROMPT_CHARS, DEFAULT_MAX_USER_PROFILE_CHARS

__all__ = ["GatewaySettings"]


class GatewaySettings(ServiceSettings):
    """Typed, frozen gateway settings; ``DATABASE_URL`` and one way to verify tokens are required."""

    # SecretStr: the URL usually carries the database password; keep it out of reprs and logs.
    database_url: SecretStr = Field(validation_alias="DATABASE_URL")
    supabase_jwt_secret: SecretStr | None = Field(None, validation_alias="SUPABASE_JWT_SECRET")
    supabase_jwks_url: str | None = Field(None, validation_alias="SUPABASE_JWKS_URL")
    jwt_audience: str = Field("authenticated", min_length=1, validation_alias="GATEWAY_JWT_AUDIENCE")
    # e.g. https://<project>.supabase.co/auth/v1; when set, tokens must carry this ``iss``.
    jwt_issuer: str | None = Field(None, validation_alias="GATEWAY_JWT_ISSUER")

    gateway_host: str = Field("0.0.0.0", validation_alias="GATEWAY_HOST")
    gateway_port: int = Field(8000, ge=1, le=65535, validation_alias="GATEWAY_PORT")

    # Slow and idle clients: a request's headers must arrive within this long of the connection
    # opening (or of the previous reply on it), its body within ``body_timeout_seconds`` of its
    # headers (a full-size body at 10 kB/s fits), else 408 and the connection is closed ...
    header_timeout_seconds: float = Field(10.0, gt=0, validation_alias="GATEWAY_HEADER_TIMEOUT_SECONDS")
    body_timeout_seconds: float = Field(30.0, gt=0, validation_alias="GATEWAY_BODY_TIMEOUT_SECONDS")
    # ... an idle keep-alive connection is closed after this many seconds ...
    keep_alive_seconds: int = Field(5, ge=1, validation_alias="GATEWAY_KEEP_ALIVE_SECONDS")
    # ... and past this many open connections (live-status streams included) a request gets 503.
    max_connections: int = Field(1000, ge=1, validation_alias="GATEWAY_MAX_CONNECTIONS")
    # Accepts served at once by this process; past it an accept gets 503 with Retry-After at once,
    # before any work, rather than queueing behind the CPU (at ~2.5 ms of CPU per accept, 64 in
    # flight is ~100 ms of work on a core).
    max_accepts_in_flight: int = Field(64, ge=1, validation_alias="GATEWAY_MAX_ACCEPTS_IN_FLIGHT")

    max_user_profile_chars: int = Field(
        DEFAULT_MAX_USER_PROFILE_CHARS, ge=1, validation_alias="GATEWAY_MAX_USER_PROFILE_CHARS"
    )
    max_system_prompt_chars: int = Field(
        DEFAULT_MAX_SYSTEM_PROMPT_CHARS, ge=0, validation_alias="GATEWAY_MAX_SYSTEM_PROMPT_CHARS"
    )

    # Unrestricted LLM spend is the risk: each user may have this many plans in flight at once ...
    max_active_requests_per_user: int = Field(3, ge=1, validation_alias="GATEWAY_MAX_ACTIVE_REQUESTS_PER_USER")
    # ... and start this many in any 24 hours (a rolling window, so there is no midnight rush).
    max_requests_per_day_per_user: int = Field(20, ge=1, validation_alias="GATEWAY_MAX_REQUESTS_PER_DAY_PER_USER")
    active_cap_retry_after_seconds: int = Field(60, ge=1, validation_alias="GATEWAY_ACTIVE_CAP_RETRY_AFTER_SECONDS")

    # Spend caps per rolling 24 hours, in USD at the ledger's prices: what the user's (or everyone's)
    # requests cost so far, plus a reservation of ``plan_cost_estimate_usd`` for each one still
    # processing, plus one more, must stay within the cap; otherwise 429. No global cap by default.
    user_daily_budget_usd: float | None = Field(1.0, gt=0, validation_alias="GATEWAY_USER_DAILY_BUDGET_USD")
    global_daily_budget_usd: float | None = Field(None, gt=0, validation_alias="GATEWAY_GLOBAL_DAILY_BUDGET_USD")
    plan_cost_estimate_usd: float = Field(0.02, ge=0, validation_alias="GATEWAY_PLAN_COST_ESTIMATE_USD")

    # Show each plan's skeleton to the user first and wait this long for them to confirm or adjust it
    # before the weeks are written (a request's ``reviewSkeletonSeconds`` overrides it); 0: don't wait.
    skeleton_review_seconds: int = Field(
        0, ge=0, le=MAX_REVIEW_SECONDS, validation_alias="GATEWAY_SKELETON_REVIEW_SECONDS"
    )

    # Origins allowed to call from a browser (comma-separated, e.g. "https://app.example.com",
    # or "*"); none by default, and then no CORS headers are sent at all. Their preflights may ask
    # for the headers Supabase's clients send (``app.CORS_ALLOWED_HEADERS``).
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field((), validation_alias="GATEWAY_CORS_ORIGINS")

    # A live status stream re-reads the request row this often while no notice arrives, so it
    # ends even when a notice was lost (notices are best effort; Postgres is the record of truth).
    stream_recheck_seconds: float = Field(15.0, gt=0, validation_alias="GATEWAY_STREAM_RECHECK_SECONDS")
    # Keep-alive comments on a quiet stream, so proxies do not close it.
    stream_ping_seconds: float = Field(15.0, gt=0, validation_alias="GATEWAY_STREAM_PING_SECONDS")

    db_pool_min_size: int = Field(1, ge=0, validation_alias="GATEWAY_DB_POOL_MIN_SIZE")
    db_pool_max_size: int = Field(10, ge=1, validation_alias="GATEWAY_DB_POOL_MAX_SIZE")
    # Bounds both waiting for a pooled connection and each statement, so a stuck database
    # turns into a prompt 503 instead of requests piling up.
    db_timeout_seconds: float = Field(5.0, gt=0, validation_alias="GATEWAY_DB_TIMEOUT_SECONDS")
    # Accepts that arrive while one is written share the next call (services/gateway/accepts.py):
    # at most this many calls at once, each of at most this many accepts.
    accept_writers: int = Field(2, ge=1, validation_alias="GATEWAY_ACCEPT_WRITERS")
    accepts_per_write: int = Field(64, ge=1, validation_alias="GATEWAY_ACCEPTS_PER_WRITE")
    # A small group's call waits this long for more accepts (a quarter of a full group goes at
    # once): at a few hundred accepts a second it cuts the CPU per accept by a quarter.
    accept_linger_seconds: float = Field(0.003, ge=0, le=0.1, validation_alias="GATEWAY_ACCEPT_LINGER_SECONDS")

    # How long a request waits for JetStream to acknowledge its event before leaving it to the relay.
    publish_wait_seconds: float = Field(1.0, gt=0, validation_alias="GATEWAY_PUBLISH_WAIT_SECONDS")
    # The relay publishes outbox rows the request path could not confirm (broker down, crash).
    outbox_relay_interval_seconds: float = Field(2.0, gt=0, validation_alias="GATEWAY_OUTBOX_RELAY_INTERVAL_SECONDS")
    outbox_relay_after_seconds: float = Field(5.0, ge=0, validation_alias="GATEWAY_OUTBOX_RELAY_AFTER_SECONDS")

    @field_validator("user_daily_budget_usd", "global_daily_budget_usd", mode="before")
    @classmethod
    def _off_means_no_cap(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in {"", "off", "none"}:
            return None
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(origin.strip() for origin in value.split(",") if origin.strip())
        return value

    @model_validator(mode="after")
    def _can_verify_tokens(self) -> Self:
        if self.supabase_jwt_secret is None and self.supabase_jwks_url is None:
            raise ValueError("set SUPABASE_JWKS_URL (signing keys) and/or SUPABASE_JWT_SECRET (legacy secret)")
        return self

    @model_validator(mode="after")
    def _pool_bounds_are_ordered(self) -> Self:
        if self.db_pool_min_size > self.db_pool_max_size:
            raise ValueError("GATEWAY_DB_POOL_MIN_SIZE must not exceed GATEWAY_DB_POOL_MAX_SIZE")
        return self
