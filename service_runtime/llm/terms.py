"""The terms a call is made on: whom it is for, their lane, and the service tier asked for.

A consumer binds them for the message it handles (``calling_for``); the admission wrapper
(``service_runtime.llm.admission``) reads the user and lane to share the provider's budget fairly,
chooses the tier and binds it (``on_tier``) for the adapter, which sends it as ``service_tier``.
A context variable, like the request id the logs carry, since a call passes through use cases that
have no business knowing any of it.
"""

from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace

from contracts.events import Lane
from service_runtime.llm.prices import ServiceTier

__all__ = [
    "CallTerms",
    "Lane",
    "LimitsListener",
    "WaitListener",
    "calling_for",
    "current_terms",
    "heard_limits",
    "on_tier",
]


WaitListener = Callable[[int, float], Awaitable[None]]
# Given the provider's response headers (its ``x-ratelimit-*`` figures) by the adapter that got them.
LimitsListener = Callable[[Mapping[str, str]], None]


@dataclass(frozen=True)
class CallTerms:
    user: str = ""
    lane: Lane = "standard"
    tier: ServiceTier = "default"
    # Told the call's place in the provider's line (1 = next) and its expected wait while it waits.
    on_wait: WaitListener | None = None
    on_limits: LimitsListener | None = None


_NONE_BOUND = CallTerms()
_TERMS: ContextVar[CallTerms | None] = ContextVar("llm_call_terms", default=None)


def current_terms() -> CallTerms:
    return _TERMS.get() or _NONE_BOUND


@contextmanager
def calling_for(
    user: str,
    lane: Lane = "standard",
    *,
    on_wait: "WaitListener | None" = None,
) -> Iterator[None]:
    token = _TERMS.set(CallTerms(user=user, lane=lane, on_wait=on_wait))
    try:
        yield
    finally:
        _TERMS.reset(token)


@contextmanager
def on_tier(tier: ServiceTier, *, on_limits: LimitsListener | None = None) -> Iterator[None]:
    token = _TERMS.set(replace(current_terms(), tier=tier, on_limits=on_limits))
    try:
        yield
    finally:
        _TERMS.reset(token)


def heard_limits(headers: Mapping[str, str]) -> None:
    """An adapter got the provider's headers: whoever chose the call's terms may learn from them."""
    if (listener := current_terms().on_limits) is not None:
        listener(headers)
