"""The OpenAI client as every LLM-calling service builds it, and what a service checks before it starts.

One layer owns retries: the JetStream consumer (bounded by ``max_deliver``, with delays that
honour Retry-After). The SDK's own retries are off, so a message's attempts are the only paid
attempts: no 3 SDK tries x 5 deliveries = 15 calls.

The transport is aiohttp (the SDK's ``aiohttp`` extra), not httpx's own: with a few hundred calls
at once, httpx's pool probes every idle connection's socket each time a request starts or ends, and
that alone was ~14 % of the planner's CPU (docs/benchmarks.md).
"""

import logging
from collections.abc import Iterable

import openai
import pydantic
from pydantic import Field, SecretStr

from service_runtime.llm.prices import RawPrices, ServiceTier
from service_runtime.llm.terms import Lane
from service_runtime.model_limits import limits_of
from service_runtime.settings import ServiceSettings
from service_runtime.strict_schema import check_wire_schemas

__all__ = ["LlmSettings", "build_openai_client", "check_llm_setup", "warn_if_unknown_model"]

log = logging.getLogger(__name__)


class RateLimit(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    tokens_per_minute: int = Field(gt=0)
    requests_per_minute: int = Field(gt=0)


class LlmSettings(ServiceSettings):
    """Settings of a service that calls an OpenAI-compatible server."""

    openai_api_key: SecretStr = Field(validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(None, validation_alias="OPENAI_BASE_URL")
    # The SDK's timeout is per read (per streamed chunk), not a total; the total is ours.
    llm_read_timeout_seconds: float = Field(60.0, gt=0, validation_alias="LLM_READ_TIMEOUT_SECONDS")
    # A streamed call with no content by then is stopped (RetryLater llm_timeout): a provider that
    # accepted the request and went quiet costs this long, not the whole deadline.
    llm_first_token_seconds: float = Field(60.0, gt=0, validation_alias="LLM_FIRST_TOKEN_SECONDS")
    # USD per million tokens as JSON, {"model": [input, output]} or per tier {"model": {"default":
    # [input, cached input, output], "flex": [...]}}; unset = OpenAI's list prices for the common
    # models (service_runtime.llm.prices.DEFAULT_PRICES).
    llm_prices: RawPrices | None = Field(None, validation_alias="LLM_PRICES")
    # The account's per-minute limits per model, shared by every replica as JSON: {"gpt-4o-mini":
    # {"tokens_per_minute": 200000, "requests_per_minute": 500}}. Unset for a model: calls to it are
    # not metered before they go (the provider's 429s are retried).
    llm_rate_limits: dict[str, RateLimit] = Field(default_factory=dict, validation_alias="LLM_RATE_LIMITS")
    # The service tier each lane's calls ask for, where the model offers it: {"standard": "flex",
    # "priority": "priority"}; unset: Standard ("default") for both.
    llm_service_tiers: dict[Lane, ServiceTier] = Field(default_factory=dict, validation_alias="LLM_SERVICE_TIERS")
    # How long a Flex call may take before it is stopped and made again on Standard.
    llm_flex_seconds: float = Field(120.0, gt=0, validation_alias="LLM_FLEX_SECONDS")


def check_llm_setup(reply_types: Iterable[type[pydantic.BaseModel]]) -> None:
    """What a service checks before it starts: every schema it will send is one the provider
    accepts (else ``WireSchemaError``, naming the keyword and its path)."""
    check_wire_schemas(reply_types)


def warn_if_unknown_model(model: str, setting: str) -> None:
    """Warn (once logging is set up, at start) when ``model`` is not in our model table, which is the
    simulator's too (a test keeps them equal): most likely a typo, which the provider answers with
    404 ``model_not_found`` on every call, failing each request. Not fatal: a provider may serve
    models newer than the table; their calls then carry only their reply types' output caps."""
    if limits_of(model) is None:
        log.warning(
            "%s=%r is not a model we know (service_runtime/model_limits.py, the simulator's table): if it is "
            "a typo, every call will be refused with 404 model_not_found and each request end failed; "
            "else its output limit is unknown",
            setting,
            model,
        )


def build_openai_client(settings: LlmSettings) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url,
        max_retries=0,
        timeout=openai.Timeout(settings.llm_read_timeout_seconds, connect=10.0),
        http_client=openai.DefaultAioHttpClient(),
    )
