"""``StructuredCalls`` that make a call again on a fallback model when the primary's provider fails it.

When the primary call fails for the provider's reasons (its servers fail, it cannot be reached,
it went quiet past a deadline, a background response was never picked up, it is rate-limited, or
it does not serve the model: ``FALLBACK_REASONS``), the same call (the same prompt, reply type and
so schema) is made on the fallback adapter, under the key suffixed ``.fallback``, so a background
response recorded for one model is never re-attached to as the other's. Each adapter meters its
own calls, so the ledger names the model that served each one.

If the fallback fails too, the primary's outcome is raised: the message is retried, or given up,
for the reason the primary gave, and the next delivery tries the primary first again.

Not fallback cases: a reply that is unusable (``InvalidReply``, from either model: billed, and the
retry ladder ``first_usable`` decides) or fails its checks (the model answered); an exhausted quota
(the account's, both models share it); Flex without capacity (``Admitted`` calls Standard); a
misconfiguration (the consumer halts).
"""

import logging
from typing import TypeVar

import pydantic

from service_runtime.llm.port import Prompt, StructuredCalls, StructuredReply
from service_runtime.metrics import LLM_FALLBACKS
from service_runtime.outcomes import GiveUp, Misconfigured, RetryLater

__all__ = ["FALLBACK_KEY_SUFFIX", "FALLBACK_REASONS", "WithFallback"]

log = logging.getLogger(__name__)

ReplyT = TypeVar("ReplyT", bound=pydantic.BaseModel)

FALLBACK_KEY_SUFFIX = ".fallback"
# The primary's outcomes that say its provider is down or refusing, not that the call is wrong.
_TRANSIENT_REASONS = frozenset(
    {"llm_server_error", "llm_unreachable", "llm_timeout", "llm_stuck_queued", "llm_rate_limited"}
)
_PERMANENT_REASONS = frozenset({"llm_model_not_found"})
FALLBACK_REASONS = _TRANSIENT_REASONS | _PERMANENT_REASONS


class WithFallback:
    """``primary``, and on its provider's failures the same call on ``fallback``."""

    def __init__(self, primary: StructuredCalls, fallback: StructuredCalls, *, stage: str) -> None:
        self._primary = primary
        self._fallback = fallback
        self._stage = stage
        self.model = primary.model
        for reason in FALLBACK_REASONS:  # every series there from the start, at zero
            LLM_FALLBACKS.labels(stage, primary.model, fallback.model, reason)

    async def call(self, key: str, prompt: Prompt, reply_type: type[ReplyT]) -> StructuredReply[ReplyT]:
        try:
            return await self._primary.call(key, prompt, reply_type)
        except (RetryLater, GiveUp) as exc:
            if exc.reason not in (_TRANSIENT_REASONS if isinstance(exc, RetryLater) else _PERMANENT_REASONS):
                raise
            primary_failure = exc
        reason = primary_failure.reason
        LLM_FALLBACKS.labels(self._stage, self._primary.model, self._fallback.model, reason).inc()
        log.warning("%s: %s failed (%s); calling %s", key, self._primary.model, reason, self._fallback.model)
        try:
            return await self._fallback.call(_fallback_key(key), prompt, reply_type)
        except (RetryLater, GiveUp, Misconfigured) as exc:
            log.warning(
                "%s: the fallback %s failed too (%s); %s", key, self._fallback.model, exc.reason, primary_failure
            )
            raise primary_failure from exc

    async def forget(self, key: str) -> None:
        """Forget the reply under ``key`` on both models: the next call asks anew."""
        try:
            await self._primary.forget(key)
        finally:
            await self._fallback.forget(_fallback_key(key))

    async def abandon(self, key: str) -> None:
        """Stop the call under ``key`` on both models, wherever it runs."""
        try:
            await self._primary.abandon(key)
        finally:
            await self._fallback.abandon(_fallback_key(key))


def _fallback_key(key: str) -> str:
    return f"{key}{FALLBACK_KEY_SUFFIX}"
